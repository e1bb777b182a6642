"""A record reaches the journal, with its final cost, before the client holds the answer's end:
the last byte of a JSON body, the `message_stop` event of a stream.

The gateway app is driven over raw ASGI; each time it sends body bytes, the test reads the
journal file, so the order is observed, not assumed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from bastion.app import GatewayApp
from bastion.stores.journal import journal_parts, read_rows
from tests.integration.conftest import BASE_CONFIG, ENVIRON, in_process

COST_COLUMN = 18
"""`cost_micros` in `record_row` order (the requests table's columns)."""


def journal_rows(path: str) -> dict[str, list[object]]:
    return {str(row[0]): row for part in journal_parts(path) for row in read_rows(part)}


async def drive(app: GatewayApp, key: str, body: dict[str, Any], journal: str) -> list[Any]:
    """Send one Messages request; for every body chunk sent back: its bytes and whether the
    request's journal line was on disk at that moment (and its cost)."""
    request_id = "req-journal-order-" + ("s" if body.get("stream") else "j")
    raw = orjson.dumps(body)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/messages", "raw_path": b"/v1/messages", "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8787),
        "headers": [
            (b"host", b"gateway"), (b"x-api-key", key.encode()),
            (b"content-type", b"application/json"), (b"anthropic-version", b"2023-06-01"),
            (b"content-length", str(len(raw)).encode()), (b"x-request-id", request_id.encode()),
        ],
    }  # fmt: skip
    chunks: list[Any] = []
    messages = [{"type": "http.request", "body": raw, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client stays until the answer ends
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            row = journal_rows(journal).get(request_id)
            chunks.append((message.get("body", b""), row))

    await app(scope, receive, send)
    return chunks


@pytest.mark.parametrize("stream", [False, True])
async def test_the_journal_holds_the_record_before_the_answer_ends(
    tmp_path: Path, stream: bool
) -> None:
    async with in_process(BASE_CONFIG % {"dir": tmp_path}, ENVIRON) as env:
        journal = env.gateway.store.path + ".journal"
        body = {
            "model": "claude-sonnet-5-5", "max_tokens": 30, "stream": stream,
            "messages": [{"role": "user", "content": "is the record there yet"}],
        }  # fmt: skip
        chunks = await drive(GatewayApp(env.gateway), env.key, body, journal)
        sent = b"".join(data for data, _ in chunks)
        if stream:
            [(end, row)] = [(d, r) for d, r in chunks if b"event: message_stop" in d]
            assert row is not None, "message_stop went out before the record was journaled"
            assert any(r is None for d, r in chunks if d and b"message_start" in d)
        else:
            *_, (end, row) = [(d, r) for d, r in chunks if d]
            assert len(end) == 1 and row is not None
            assert sent.endswith(b"}")
        [stored] = env.records()
        assert row[COST_COLUMN] == stored["cost_micros"] > 0
        assert row[0] == stored["request_id"]
