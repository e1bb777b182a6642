"""Samples as stored: the row a capture becomes, the table's queries, and retention."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bastion.config import ConfigError, RedactConfig, SamplingConfig, parse_config
from bastion.sampling.capture import SampleCapture
from bastion.sampling.decide import Reason
from bastion.sampling.redact import Redactor
from bastion.sampling.sink import SampleSink, sample_row
from bastion.stores.samples import SampleFilter, get_sample, query_samples
from bastion.stores.sqlite import SQLiteStore
from bastion.types import RequestRecord

REDACTOR = Redactor.from_config(RedactConfig())
REQUEST = orjson.dumps(
    {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "I am ana@example.com"}],
    }
)
STREAM = [
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
    b'"role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,'
    b'"usage":{"input_tokens":5,"output_tokens":1}}}\n\n',
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n',
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"Hi ana@example.com"}}\n\n',
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":4}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n',
]


def record(
    request_id: str = "r1", *, at: float = 1000.0, status: int = 200, outcome: str = "ok",
    reason: Reason | None = "rate", stream: bool = False, model: str = "claude-sonnet-4-5",
    route: str = "default", user: str | None = "u1", max_bytes: int = 1 << 20,
) -> RequestRecord:  # fmt: skip
    r = RequestRecord(request_id, at, "POST", "/v1/messages", status=status, outcome=outcome)
    r.stream, r.model_served, r.route, r.end_user, r.environment = stream, model, route, user, "dev"
    r.sample = SampleCapture(0.0, REQUEST, max_bytes, reason=reason)
    return r


def test_a_stream_is_stored_reassembled_and_redacted() -> None:
    r = record(stream=True)
    assert r.sample is not None
    for chunk in STREAM:
        r.sample.chunk(chunk)
    row = sample_row(r, REDACTOR, 1 << 20)
    assert row is not None and row.stream and not row.truncated
    response = orjson.loads(row.response or "null")
    assert response["content"] == [{"type": "text", "text": "Hi [REDACTED:email]"}]
    assert response["usage"] == {"input_tokens": 5, "output_tokens": 4}
    request = orjson.loads(row.request)
    assert request["messages"][0]["content"] == "I am [REDACTED:email]"
    assert (row.model, row.route, row.end_user, row.reason) == (
        "claude-sonnet-4-5", "default", "u1", "rate",
    )  # fmt: skip


def test_bodies_past_max_bytes_are_cut_and_marked() -> None:
    r = record(status=500, outcome="upstream_error", reason="failure")
    assert r.sample is not None
    r.sample.respond(
        b'{"type":"error","error":{"type":"api_error","message":"' + b"x" * 50 + b'"}}'
    )
    row = sample_row(r, REDACTOR, 40)
    assert row is not None and row.truncated
    assert orjson.loads(row.request) == REQUEST[:40].decode()  # a cut body is kept as text
    assert orjson.loads(row.response or "null") == row_text(r.sample.body, 40)


@pytest.mark.parametrize(
    ("secret", "kept"),
    [
        (b"Bearer abcdefghijklmnopqrstuvwxyz0123", b"abcdefghijklmno"),
        (b"write to ana.lopez@example.com", b"ana.lopez@exa"),
    ],
)
def test_a_cut_never_keeps_the_start_of_a_secret(secret: bytes, kept: bytes) -> None:
    body = b'{"messages":[{"role":"user","content":"' + secret + b'"}]}'
    cut = body.index(kept) + len(kept)  # max_bytes ends inside the secret
    r = record()
    assert r.sample is not None
    r.sample.request = body
    row = sample_row(r, REDACTOR, cut)
    assert row is not None and row.truncated
    assert kept.decode() not in row.request
    assert "[REDACTED:" in orjson.loads(row.request)


def row_text(body: bytes | None, size: int) -> str:
    assert body is not None
    return body[:size].decode()


def test_only_kept_captures_become_rows() -> None:
    assert sample_row(record(reason=None), REDACTOR, 100) is None
    bare = record()
    bare.sample = None
    assert sample_row(bare, REDACTOR, 100) is None


def test_a_request_without_an_answer_has_no_response() -> None:
    row = sample_row(
        record(status=499, outcome="client_disconnected", reason="failure"), REDACTOR, 100
    )
    assert row is not None and row.response is None


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(str(tmp_path / "b.db"))


def test_queries_filter_and_order(store: SQLiteStore) -> None:
    now = [5000.0]
    sink = SampleSink(store, SamplingConfig(), lambda: now[0])
    batch = [
        record("a", at=1000, model="m1", route="chat", user="ana"),
        record("b", at=2000, model="m2", route="chat", user="bob", status=500,
               outcome="upstream_error", reason="failure"),
        record("c", at=3000, model="m1", route="code", user="ana", stream=True),
        record("d", at=4000, model="m1", route="chat", user=None, reason=None),  # not kept
    ]  # fmt: skip
    sink(batch)
    assert all(r.sample is None for r in batch)  # the bytes are let go once written
    sink([record("a", at=9999, model="other")])  # a reused request id keeps its first row
    conn = store.connect()

    def ids(**where: object) -> list[str]:
        return [row.request_id for row in query_samples(conn, SampleFilter(**where))]  # type: ignore[arg-type]

    assert ids() == ["c", "b", "a"]
    assert ids(model="m1") == ["c", "a"]
    assert ids(route="chat") == ["b", "a"]
    assert ids(user="ana") == ["c", "a"]
    assert ids(outcome="upstream_error") == ["b"]
    assert ids(reason="rate") == ["c", "a"]
    assert ids(since=2000.0, until=3000.0) == ["b"]
    assert ids(limit=1) == ["c"]
    assert ids(model="m1", route="code", user="ana") == ["c"]
    found = get_sample(conn, "b")
    assert found is not None and found.status == 500 and found.reason == "failure"
    assert get_sample(conn, "nope") is None
    (text,) = conn.execute(
        "SELECT json_extract(request, '$.messages[0].content') FROM samples WHERE request_id='a'"
    ).fetchone()
    assert text == "I am [REDACTED:email]"  # SQL can reach into the stored JSON


def test_retention_is_enforced_by_the_sink_on_a_schedule(store: SQLiteStore) -> None:
    day = 86_400.0
    start = 100 * day
    now = [start]
    sink = SampleSink(store, SamplingConfig(retention_days=30), lambda: now[0], prune_every_s=600)
    conn = store.connect()

    def stored() -> list[str]:
        return [row.request_id for row in query_samples(conn, SampleFilter())]

    sink([record("old", at=start - 31 * day), record("new", at=start - 29 * day)])
    assert stored() == ["new"]  # the first batch prunes at once
    now[0] = start + 599
    sink([record("late", at=start - 31 * day)])  # an expired row arrives; pruning is not due
    assert stored() == ["new", "late"]
    now[0] = start + 600
    sink([])
    assert stored() == ["new"]
    now[0] = start + day + 600  # "new" is now past 30 days
    sink([])
    assert stored() == []


def test_config_validation_names_the_field() -> None:
    base = "environments: {dev: {upstream: {api_key: 'env:K'}}}\n"
    with pytest.raises(ConfigError, match=r"sampling\.rate"):
        parse_config(base + "sampling: {rate: 1.5}", {})
    with pytest.raises(
        ConfigError, match=r"sampling\.redact\.patterns.*'\(unclosed' is not a regular expression"
    ):
        parse_config(base + "sampling: {redact: {patterns: ['ok\\d+', '(unclosed']}}", {})
    with pytest.raises(ConfigError, match=r"sampling\.max_bytes"):
        parse_config(base + "sampling: {max_bytes: 0}", {})
    config = parse_config(base + "sampling: {rate: 0.25, redact: {emails: false}}", {})
    assert config.sampling.rate == 0.25 and not config.sampling.redact.emails
    assert parse_config(base, {}).sampling == SamplingConfig(rate=0.01, retention_days=30)
