"""A billed call is never sent twice, and when its usage never arrives its cost is the worst case.

A real `bastion serve` with four attempts per request, in front of a raw-socket upstream that
answers 200 and then breaks (reset mid-body, a short Content-Length, a hang after the head, a
stream reset after a few deltas), or refuses with `x-should-retry: false` or a spend limit.
Each request must reach the upstream exactly once; a broken 2xx must be stored at its worst case
(`cost_status: estimated`, what its budgets held for it), never 0 or the partial usage's price.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anthropic
import httpx2
import pytest

from tests.e2e.harness import Gateway, start_gateway, wait_for_record
from tests.e2e.socket_server import SocketServer

pytestmark = pytest.mark.e2e

Script = Callable[[socket.socket], None]
EXTRA = """
routes:
  default:
    retries: {attempts: 4, base_s: 0.05, cap_s: 0.1}
    timeouts: {first_byte_s: 5, idle_s: 1}
breaker: {min_requests: 1000000}
"""
START = {
    "type": "message_start",
    "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 1200, "output_tokens": 1},
    },
}  # fmt: skip


def read_request(conn: socket.socket) -> bytes:
    """One request off the connection; its body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return body


def reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def json_head(length: int, status: str = "200 OK", extra: bytes = b"") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\nrequest-id: req_x\r\n".encode()
        + extra
        + f"content-length: {length}\r\n\r\n".encode()
    )


def reset_mid_body(conn: socket.socket) -> None:
    conn.sendall(json_head(500) + b'{"id":"msg_1","type":"message","usage":')
    time.sleep(0.1)
    reset(conn)


def short_body(conn: socket.socket) -> None:
    conn.sendall(json_head(500) + b'{"id":"msg_1","type":"message"}')
    conn.close()  # a clean close 470 bytes early


def hang_after_head(conn: socket.socket) -> None:
    conn.sendall(json_head(500) + b'{"id":')
    time.sleep(4)  # past idle_s; the gateway gives up and closes
    conn.close()


def stream_reset_after_deltas(conn: socket.socket) -> None:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    block = {"type": "content_block_start", "index": 0,
             "content_block": {"type": "text", "text": ""}}  # fmt: skip
    delta = {"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": "word "}}  # fmt: skip
    events = [("message_start", START), ("content_block_start", block)]
    events += [("content_block_delta", delta)] * 3
    conn.sendall(head)
    for name, data in events:
        frame = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
        conn.sendall(b"%x\r\n%s\r\n" % (len(frame), frame))
        time.sleep(0.02)
    reset(conn)


def error_body(kind: str, code: str | None = None) -> bytes:
    error: dict[str, object] = {"type": kind, "message": "no"}
    if code is not None:
        error["details"] = {"error_code": code}
    return json.dumps({"type": "error", "error": error}).encode()


def final_500(conn: socket.socket) -> None:
    body = error_body("api_error")
    conn.sendall(json_head(len(body), "500 Internal Server Error", b"x-should-retry: false\r\n"))
    conn.sendall(body)
    conn.close()


def spend_limit_429(conn: socket.socket) -> None:
    body = error_body("rate_limit_error", "enforced_spend_limit_reached")
    conn.sendall(json_head(len(body), "429 Too Many Requests") + body)
    conn.close()


class ScriptedUpstream:
    """Answers every connection with `script` after reading one request; counts requests."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests = 0
        self.bodies: list[bytes] = []
        self.server = SocketServer(self._serve)

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.bodies.append(read_request(conn))
            self.requests += 1
            self.script(conn)
        except OSError:
            pass
        finally:
            conn.close()


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[Callable[[Script], tuple[ScriptedUpstream, Gateway]]]:
    started: list[tuple[ScriptedUpstream, Gateway]] = []

    def start(script: Script) -> tuple[ScriptedUpstream, Gateway]:
        upstream = ScriptedUpstream(script)
        gateway = start_gateway(tmp_path, upstream.server.url, extra=EXTRA)
        started.append((upstream, gateway))
        return upstream, gateway

    yield start
    for upstream, gateway in started:
        gateway.process.stop()
        upstream.server.stop()


def worst_case(upstream: ScriptedUpstream) -> int:
    """Sonnet 5.5's worst case for the one body the upstream got, by hand: every prompt token
    at the dearest input-side price (1-hour cache write, $4/Mtok = 4 µ$), the body's bytes plus
    4,096 hidden tokens as the token bound, and max_tokens 50 at the output price (10 µ$)."""
    (body,) = upstream.bodies
    return (len(body) + 4_096) * 4 + 50 * 10


def client(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=gateway.create_key(), max_retries=0)


ARGS = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": "hi"}],
}


@pytest.mark.parametrize(
    ("script", "status"),
    [(reset_mid_body, 502), (short_body, 502), (hang_after_head, 504)],
    ids=["reset-mid-body", "short-content-length", "hang-after-head"],
)
def test_a_broken_2xx_body_is_sent_once_and_costs_its_worst_case(
    scripted: Callable[[Script], tuple[ScriptedUpstream, Gateway]], script: Script, status: int
) -> None:
    upstream, gateway = scripted(script)
    with pytest.raises(anthropic.APIStatusError) as info:
        client(gateway).messages.create(**ARGS)  # type: ignore[call-overload]
    response = info.value.response
    assert response.status_code == status
    assert response.headers["x-bastion-upstream-attempts"] == "1"
    assert response.headers["x-should-retry"] == "false"
    time.sleep(0.3)
    assert upstream.requests == 1
    record = wait_for_record(gateway.db, response.headers["x-request-id"])
    assert record["attempts"] == 1
    assert (record["cost_micros"], record["cost_status"]) == (worst_case(upstream), "estimated")


def test_a_stream_reset_after_deltas_is_sent_once_and_costs_its_worst_case(
    scripted: Callable[[Script], tuple[ScriptedUpstream, Gateway]],
) -> None:
    upstream, gateway = scripted(stream_reset_after_deltas)
    with (
        pytest.raises(anthropic.APIStatusError),
        client(gateway).messages.stream(**ARGS) as stream,  # type: ignore[call-overload]
    ):
        for _ in stream:
            pass
    request_id = stream.response.headers["x-request-id"]
    time.sleep(0.3)
    assert upstream.requests == 1
    record = wait_for_record(gateway.db, request_id)
    assert record["input_tokens"] == 1200  # what was seen is kept
    # but not priced as if output_tokens were 1 (that would be 1200 x 2 + 1 x 10 = 2,410 µ$)
    assert (record["cost_micros"], record["cost_status"]) == (worst_case(upstream), "estimated")
    metrics = httpx2.get(gateway.url + "/metrics", timeout=10).text
    estimated = 'bastion_estimated_cost_micros_total{model="claude-sonnet-5-5",route="default"}'
    assert f"{estimated} {float(worst_case(upstream))}" in metrics


@pytest.mark.parametrize(
    ("script", "status"), [(final_500, 500), (spend_limit_429, 429)], ids=["500-final", "spend"]
)
def test_a_final_refusal_gets_one_attempt(
    scripted: Callable[[Script], tuple[ScriptedUpstream, Gateway]], script: Script, status: int
) -> None:
    upstream, gateway = scripted(script)
    with pytest.raises(anthropic.APIStatusError) as info:
        client(gateway).messages.create(**ARGS)  # type: ignore[call-overload]
    response = info.value.response
    assert response.status_code == status
    assert response.headers["x-bastion-upstream-attempts"] == "1"
    assert response.headers["x-should-retry"] == "false"
    assert upstream.requests == 1


def dripping_body(conn: socket.socket) -> None:
    """A whole, valid answer sent in ten pieces 0.3 s apart: 3 s in all, never 1 s idle."""
    body = json.dumps({**START["message"], "content": [{"type": "text", "text": "ok"}],
                       "stop_reason": "end_turn"}).encode()  # fmt: skip
    conn.sendall(json_head(len(body)))
    step = len(body) // 10 + 1
    for start in range(0, len(body), step):
        conn.sendall(body[start : start + step])
        time.sleep(0.3)


def test_a_json_body_that_keeps_coming_is_not_idle(
    scripted: Callable[[Script], tuple[ScriptedUpstream, Gateway]],
) -> None:
    upstream, gateway = scripted(dripping_body)
    started = time.monotonic()
    message = client(gateway).messages.create(**ARGS)  # type: ignore[call-overload]
    assert time.monotonic() - started > 2.5  # longer than idle_s (1 s), and still answered
    assert message.content[0].text == "ok"
    assert upstream.requests == 1


def test_an_estimated_cost_counts_in_the_budget_across_a_restart(tmp_path: Path) -> None:
    upstream = ScriptedUpstream(reset_mid_body)
    budget = "budgets:\n  - {scope: environment, name: dev, limit_usd: '1', period: month}\n"
    gateway = start_gateway(tmp_path, upstream.server.url, extra=EXTRA + budget)
    try:
        with pytest.raises(anthropic.APIStatusError):
            client(gateway).messages.create(**ARGS)  # type: ignore[call-overload]
        gateway.process.stop()  # a restart: the ledger is rebuilt from the request log
        gateway = start_gateway(tmp_path, upstream.server.url, extra=EXTRA + budget)
        metrics = httpx2.get(gateway.url + "/metrics", timeout=10).text
        line = next(
            line for line in metrics.splitlines()
            if line.startswith("bastion_budget_utilization_ratio{")
        )  # fmt: skip
        assert float(line.rsplit(" ", 1)[1]) == pytest.approx(worst_case(upstream) / 1_000_000)
    finally:
        gateway.process.stop()
        upstream.server.stop()
