"""Identifiers a client controls are bounded, validated and normalised before they are used.

An end user named two ways would get two rate limits and two budgets; an over-long route name
would be echoed into an error; a model id is the one identifier that reaches a URL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import BASE_CONFIG, ENVIRON, in_process

BODY = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 5,
    "messages": [{"role": "user", "content": "hi"}],
}


async def post(env, body: dict[str, object], **headers: str):  # type: ignore[no-untyped-def]
    return await env.http.post("/v1/messages", json=body, headers={"x-api-key": env.key, **headers})


async def test_one_end_user_in_two_spellings_is_one_user(tmp_path: Path) -> None:
    async with in_process(BASE_CONFIG % {"dir": tmp_path}, ENVIRON) as env:
        spellings = [
            ({}, {"user_id": "Eve"}),
            ({"x-bastion-user": " Eve "}, None),
            ({}, {"user_id": "\uff25\uff56\uff45"}),  # fullwidth Ｅｖｅ, NFKC → Eve
        ]
        for headers, metadata in spellings:
            body = {**BODY, "metadata": metadata} if metadata else BODY
            assert (await post(env, body, **headers)).status_code == 200
        # The header is UTF-8, as the body is: the same id arrives the same either way.
        response = await env.http.post(
            "/v1/messages", json=BODY,
            headers=[("x-api-key", env.key), ("x-bastion-user", "Zoë".encode())],
        )  # fmt: skip
        assert response.status_code == 200
        users = [row["end_user"] for row in env.records()]
        assert users == ["Eve", "Eve", "Eve", "Zoë"]


@pytest.mark.parametrize(
    ("headers", "metadata", "field"),
    [
        ({"x-bastion-user": "u" * 257}, None, "x-bastion-user"),
        ({}, {"user_id": "u" * 300}, "metadata.user_id"),
        ({}, {"user_id": "a\u200bb"}, "metadata.user_id"),  # an invisible format character
        ({}, {"user_id": "a\x00b"}, "metadata.user_id"),
        ({}, {"user_id": "   "}, "metadata.user_id"),
        ({"x-bastion-route": "r" * 60}, None, "x-bastion-route"),
        ({"x-bastion-route": "Chat"}, None, "x-bastion-route"),
        ({"x-bastion-run": "r" * 129}, None, "x-bastion-run"),
        ({"idempotency-key": "k" * 300}, None, "idempotency-key"),
    ],
)
async def test_bad_identifiers_are_refused_by_name(
    tmp_path: Path, headers: dict[str, str], metadata: dict[str, str] | None, field: str
) -> None:
    async with in_process(BASE_CONFIG % {"dir": tmp_path}, ENVIRON) as env:
        body = {**BODY, "metadata": metadata} if metadata else BODY
        response = await post(env, body, **headers)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert field in error["message"]
        assert "r" * 40 not in error["message"] and "u" * 40 not in error["message"]
        stats = (await env.mock.get("http://upstream/mock/stats")).json()
        assert stats["total"] == 0  # refused before anything left


@pytest.mark.parametrize(
    "model", ["claude\nsonnet", "../files", "m" * 129, "claude sonnet", "claude-é"]
)
async def test_a_malformed_model_id_never_leaves(tmp_path: Path, model: str) -> None:
    async with in_process(BASE_CONFIG % {"dir": tmp_path}, ENVIRON) as env:
        response = await post(env, {**BODY, "model": model})
        assert response.status_code == 400
        assert "model" in response.json()["error"]["message"]
