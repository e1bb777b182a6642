"""Sampling through the real request path: the official SDK → GatewayApp → the mock upstream.

The 10,000-request test draws from a seeded generator, so it is deterministic; its bounds are
still the binomial ones at 5 standard deviations, so any seed would pass all but once in
about 1.7 million runs.
"""

from __future__ import annotations

import asyncio
import math
import random
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest
from click.testing import CliRunner

from bastion.cli.main import cli
from bastion.clock import Clock
from bastion.mock.app import build_mock_app
from bastion.mock.settings import MockSettings
from tests.integration.conftest import BASE_CONFIG, ENVIRON, InProcess, in_process

CONFIG = BASE_CONFIG + """
routes:
  default: {retries: {attempts: 1}}
  chat: {retries: {attempts: 1}}
  canned: {retries: {attempts: 1}, fallbacks: [{static: {text: "Try again later."}}]}
breaker: {min_requests: 1000000}
sampling:
  rate: %(rate)s
  redact: {patterns: ['ACME-\\d{6}']}
"""  # fmt: skip
MODEL = "claude-opus-5-5"


@dataclass
class Sampled:
    run: InProcess
    config_path: Path

    def rows(self, where: str = "1", *params: object) -> list[dict[str, Any]]:
        query = f"SELECT * FROM samples WHERE {where} ORDER BY started_at"
        return self.run.select(query, *params)


@pytest.fixture
async def sampled(tmp_path: Path) -> AsyncIterator[Callable[[float], Any]]:
    """Builds a gateway with sampling at a rate, draws from a seeded generator."""
    async with AsyncExitStack() as stack:

        async def build(rate: float) -> Sampled:
            text = CONFIG % {"dir": tmp_path, "rate": rate}
            config_path = tmp_path / "bastion.yaml"
            config_path.write_text(text)
            run = await stack.enter_async_context(
                in_process(
                    text, ENVIRON, clock=Clock(random=random.Random(20261126).random),
                    upstream=build_mock_app(MockSettings(rng=random.Random(1))),
                )
            )  # fmt: skip
            return Sampled(run, config_path)

        yield build


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


FAILURES = {
    "server_error": anthropic.InternalServerError,
    "overloaded": anthropic.APIStatusError,
    "rate_limited": anthropic.RateLimitError,
}


async def one(s: Sampled, index: int) -> str | None:
    """Request number `index`: every 97th fails upstream, every 89th streams into an error
    event, every 83rd names an unknown route (Bastion refuses it). The failure's name, or None."""
    messages = ask(f"request {index}")
    if index % 97 == 0:
        scenario = list(FAILURES)[index // 97 % 3]
        with pytest.raises(FAILURES[scenario]):
            await s.run.client.messages.create(
                model=MODEL, max_tokens=16, messages=messages,
                extra_headers={"x-mock-scenario": scenario, "x-request-id": f"fail-{index}"},
            )  # fmt: skip
        return scenario
    if index % 89 == 0:
        with pytest.raises(anthropic.APIStatusError):
            async with s.run.client.messages.stream(
                model=MODEL, max_tokens=16, messages=messages,
                extra_headers={"x-mock-scenario": "error_event_mid_stream",
                               "x-request-id": f"fail-{index}"},
            ) as stream:  # fmt: skip
                await stream.get_final_message()
        return "error_event_mid_stream"
    if index % 83 == 0:
        with pytest.raises(anthropic.BadRequestError):
            await s.run.client.messages.create(
                model=MODEL, max_tokens=16, messages=messages,
                extra_headers={"x-bastion-route": "nope", "x-request-id": f"fail-{index}"},
            )  # fmt: skip
        return "unknown_route"
    reply = await s.run.client.messages.create(model=MODEL, max_tokens=16, messages=messages)
    assert reply.content[0].type == "text"
    return None


async def test_one_percent_of_10000_within_binomial_bounds_and_every_failure(
    sampled: Callable[[float], Any],
) -> None:
    s: Sampled = await sampled(0.01)
    total, failed = 10_000, []
    for start in range(0, total, 50):
        results = await asyncio.gather(*(one(s, i) for i in range(start, start + 50)))
        failed += [f"fail-{start + k}" for k, r in enumerate(results) if r is not None]
    rows = s.rows()
    by_reason = {"rate": [r for r in rows if r["reason"] == "rate"],
                 "failure": [r for r in rows if r["reason"] == "failure"]}  # fmt: skip
    assert len(rows) == len(by_reason["rate"]) + len(by_reason["failure"])
    assert sorted(r["request_id"] for r in by_reason["failure"]) == sorted(failed)
    assert len(failed) == len({i for n in (97, 89, 83) for i in range(0, total, n)}) == 333
    successes = total - len(failed)
    mean = successes * 0.01
    sigma = math.sqrt(successes * 0.01 * 0.99)
    kept = len(by_reason["rate"])
    assert mean - 5 * sigma <= kept <= mean + 5 * sigma, (kept, mean, sigma)
    assert all(r["status"] == 200 and r["outcome"] == "ok" for r in by_reason["rate"])
    for row in by_reason["rate"]:
        request, response = orjson.loads(row["request"]), orjson.loads(row["response"])
        assert response["type"] == "message" and response["content"][0]["text"].endswith(
            request["messages"][0]["content"]
        )  # each row pairs its own request with its own answer
    outcomes = {r["request_id"]: (r["status"], r["outcome"]) for r in by_reason["failure"]}
    assert outcomes["fail-97"] == (529, "upstream_error")  # 97 // 97 % 3 == 1: overloaded
    assert outcomes["fail-89"] == (200, "upstream_stream_error")
    assert outcomes["fail-83"] == (400, "validation")
    refusal = next(r for r in by_reason["failure"] if r["request_id"] == "fail-83")
    assert "unknown route 'nope'" in orjson.loads(refusal["response"])["error"]["message"]
    streamed = next(r for r in by_reason["failure"] if r["request_id"] == "fail-89")
    body = orjson.loads(streamed["response"])
    assert body["error"]["type"] == "overloaded_error"
    assert body["partial_message"]["content"][0]["text"].startswith("Hello from the Bastion mock!")


async def test_a_sampled_stream_is_stored_as_the_whole_message(
    sampled: Callable[[float], Any],
) -> None:
    s: Sampled = await sampled(1.0)
    prompt = ask("Describe the printing press of Gutenberg in a few short words please")
    whole = await s.run.client.messages.create(
        model=MODEL, max_tokens=300, messages=prompt, extra_headers={"x-request-id": "whole"}
    )
    async with s.run.client.messages.stream(
        model=MODEL, max_tokens=300, messages=prompt, extra_headers={"x-request-id": "streamed"}
    ) as stream:
        final = await stream.get_final_message()
    rows = {r["request_id"]: r for r in s.rows()}
    stored_whole = orjson.loads(rows["whole"]["response"])
    stored_stream = orjson.loads(rows["streamed"]["response"])
    assert rows["streamed"]["stream"] == 1 and rows["whole"]["stream"] == 0
    assert {**stored_stream, "id": None} == {**stored_whole, "id": None}
    assert stored_stream["id"] == final.id
    assert stored_stream["content"][0]["text"] == final.content[0].text == whole.content[0].text  # type: ignore[union-attr]
    assert stored_stream["usage"]["output_tokens"] == final.usage.output_tokens
    assert orjson.loads(rows["streamed"]["request"])["stream"] is True


async def test_secrets_in_the_prompt_are_redacted_in_the_stored_row(
    sampled: Callable[[float], Any],
) -> None:
    s: Sampled = await sampled(1.0)
    key = "sk-ant-api03-" + "k" * 40
    prompt = f"mail ana@example.com call +44 20 7946 0958 key {key} ACME-123456"
    await s.run.client.messages.create(
        model=MODEL, max_tokens=100, messages=ask(prompt), metadata={"user_id": "bob@example.org"},
        extra_headers={"x-request-id": "secret"},
    )  # fmt: skip
    (row,) = s.rows("request_id = ?", "secret")
    request, response = orjson.loads(row["request"]), orjson.loads(row["response"])
    expected = "mail [REDACTED:email] call [REDACTED:phone] key [REDACTED:anthropic_key] [REDACTED]"
    assert request["messages"][0]["content"] == expected
    assert request["metadata"] == {"user_id": "[REDACTED:email]"}
    assert response["content"][0]["text"] == "Hello from the Bastion mock! You said: " + expected
    stored = row["request"] + row["response"]
    for secret in ("ana@example.com", "7946", key, "ACME-123456", "bob@example.org"):
        assert secret not in stored
    assert row["end_user"] == "bob@example.org"  # the request log's own column, as logged


@pytest.mark.parametrize("stream", [False, True])
async def test_rate_zero_keeps_only_failures_the_static_answer_included(
    sampled: Callable[[float], Any], stream: bool
) -> None:
    s: Sampled = await sampled(0.0)
    for index in range(20):
        await s.run.client.messages.create(
            model=MODEL, max_tokens=16, messages=ask(f"fine {index}")
        )
    headers = {"x-bastion-route": "canned", "x-mock-scenario": "server_error",
               "x-request-id": "canned"}  # fmt: skip
    if stream:
        async with s.run.client.messages.stream(
            model=MODEL, max_tokens=16, messages=ask("hello"), extra_headers=headers
        ) as answer:
            text = (await answer.get_final_message()).content[0].text  # type: ignore[union-attr]
    else:
        reply = await s.run.client.messages.create(
            model=MODEL, max_tokens=16, messages=ask("hello"), extra_headers=headers
        )
        text = reply.content[0].text  # type: ignore[union-attr]
    assert text == "Try again later."
    (row,) = s.rows()
    assert (row["request_id"], row["status"], row["outcome"]) == ("canned", 200, "ok")
    assert row["reason"] == "failure" and row["stream"] == int(stream)
    assert orjson.loads(row["response"])["content"] == [{"type": "text", "text": text}]


def cli_run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


async def test_cli_lists_filters_shows_exports_and_prunes(
    sampled: Callable[[float], Any], tmp_path: Path
) -> None:
    s: Sampled = await sampled(1.0)
    for index, (route, user) in enumerate([("chat", "ana"), ("default", "bob"), ("chat", "bob")]):
        await s.run.client.messages.create(
            model=MODEL, max_tokens=16, messages=ask(f"hello {index}"),
            extra_headers={"x-bastion-route": route, "x-bastion-user": user,
                           "x-request-id": f"cli-{index}"},
        )  # fmt: skip
    with pytest.raises(anthropic.InternalServerError):
        await s.run.client.messages.create(
            model=MODEL, max_tokens=16, messages=ask("boom"),
            extra_headers={"x-mock-scenario": "server_error", "x-request-id": "cli-fail"},
        )  # fmt: skip
    s.run.gateway.writer.flush()
    config = str(s.config_path)

    def listed(*filters: str) -> list[str]:
        code, out = cli_run("samples", "list", "--config", config, "--format", "json", *filters)
        assert code == 0, out
        return [orjson.loads(line)["id"] for line in out.splitlines()]

    assert listed() == ["cli-fail", "cli-2", "cli-1", "cli-0"]
    assert listed("--route", "chat") == ["cli-2", "cli-0"]
    assert listed("--user", "bob", "--route", "chat") == ["cli-2"]
    assert listed("--outcome", "upstream_error") == ["cli-fail"]
    assert listed("--model", MODEL, "--limit", "2") == ["cli-fail", "cli-2"]
    assert listed("--since", "1h") == listed()
    assert listed("--since", "2999-01-01") == []  # the filter is applied, not just parsed
    assert listed("--until", "2000-01-01") == []
    assert listed("--since", "2000-01-01T00:00:00+00:00", "--reason", "failure") == ["cli-fail"]

    code, out = cli_run("samples", "list", "--config", config)
    assert code == 0 and "cli-fail" in out and "upstream_error" in out and "failure" in out
    code, out = cli_run("samples", "show", "--config", config, "cli-1")
    shown = orjson.loads(out)
    assert code == 0 and shown["request"]["messages"] == ask("hello 1")
    assert shown["response"]["type"] == "message" and shown["end_user"] == "bob"
    assert cli_run("samples", "show", "--config", config, "nope") == (
        1, "Error: no sample with id 'nope'\n"
    )  # fmt: skip

    for bad in (("--since", "yesterday"), ("--limit", "0"), ("--reason", "whim")):
        code, out = cli_run("samples", "list", "--config", config, *bad)
        assert code == 2 and bad[0] in out, out
    code, out = cli_run("samples", "list", "--config", config, "--since", "soon")
    assert "neither a duration like 1h or 7d nor an ISO time" in out

    target = tmp_path / "dataset.jsonl"
    code, out = cli_run("samples", "export", "--config", config, "--route", "chat",
                        "--out", str(target))  # fmt: skip
    assert code == 0 and "exported 2 samples" in out
    lines = [orjson.loads(line) for line in target.read_bytes().splitlines()]
    assert [line["id"] for line in lines] == ["cli-2", "cli-0"]
    for line in lines:
        assert {"id", "started_at", "model", "route", "end_user", "outcome", "request",
                "response"} <= set(line)  # fmt: skip
        assert line["request"]["model"] == MODEL and line["response"]["role"] == "assistant"
    assert lines[0]["request"]["messages"] == ask("hello 2")

    assert_documented_queries_run(s.run.gateway.store.path)
    code, out = cli_run("samples", "prune", "--config", config)
    assert code == 0 and "pruned 0 samples" in out  # all are younger than 30 days
    conn = sqlite3.connect(s.run.gateway.store.path)
    with conn:
        conn.execute("UPDATE samples SET started_at = started_at - 3 * 86400 "
                     "WHERE request_id IN ('cli-0', 'cli-1')")  # fmt: skip
    conn.close()
    code, out = cli_run("samples", "prune", "--config", config, "--older-than", "2d")
    assert code == 0 and "pruned 2 samples" in out
    assert listed() == ["cli-fail", "cli-2"]
    assert cli_run("samples", "prune", "--config", config, "--older-than", "soon")[0] == 2


def assert_documented_queries_run(path: str) -> None:
    """The example SQL of docs/sampling.md, verbatim, against a real samples table."""
    docs = Path(__file__).parents[2] / "docs" / "sampling.md"
    block = docs.read_text().split("Example queries")[1].split("```sql")[1].split("```")[0]
    queries = [q.strip() for q in block.split(";") if q.strip()]
    conn = sqlite3.connect(path)
    try:
        results = [conn.execute(query).fetchall() for query in queries]
    finally:
        conn.close()
    failures, code_route, joined = results
    assert failures == [("cli-fail", MODEL, 500, "upstream_error", "Internal server error")]
    assert code_route == []
    assert sorted(row[0] for row in joined) == ["cli-0", "cli-1", "cli-2", "cli-fail"]
