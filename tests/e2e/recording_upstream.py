"""A raw-socket fake Anthropic upstream that records every byte it receives.

It answers each request it can frame (a head, then a Content-Length body) with a small valid
answer for the path, so the gateway has something to relay; whatever else arrives is recorded
as it came. Tests read `received()` to see exactly what Bastion sent upstream.
"""

from __future__ import annotations

import json
import re
import socket
import threading

from tests.e2e.socket_server import SocketServer

MESSAGE = {
    "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
    "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
    "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1},
}  # fmt: skip
MODEL = {"type": "model", "id": "claude-sonnet-5-5", "display_name": "Sonnet", "created_at": "2026"}
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def answer_for(head: bytes) -> bytes:
    target = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
    path = target.split(b"?", 1)[0]
    if path == b"/v1/messages":
        body = MESSAGE
    elif path == b"/v1/messages/count_tokens":
        body = {"input_tokens": 3}
    elif path == b"/v1/models":
        body = {"data": [MODEL], "has_more": False, "first_id": None, "last_id": None}
    else:
        body = MODEL
    data = json.dumps(body).encode()
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nrequest-id: req_fake\r\n"
        b"anthropic-organization-id: org-secret\r\nx-internal: leak\r\n"
        + b"content-length: %d\r\n\r\n" % len(data)
        + data
    )


class RecordingUpstream:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.lock = threading.Lock()
        self.server = SocketServer(self._serve)

    @property
    def url(self) -> str:
        return self.server.url

    def received(self) -> bytes:
        with self.lock:
            return b"".join(self.chunks)

    def clear(self) -> None:
        with self.lock:
            self.chunks.clear()

    def stop(self) -> None:
        self.server.stop()

    def _serve(self, conn: socket.socket) -> None:
        pending = b""
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                with self.lock:
                    self.chunks.append(data)
                pending += data
                while b"\r\n\r\n" in pending:
                    head, _, rest = pending.partition(b"\r\n\r\n")
                    match = _LENGTH.search(head)
                    length = int(match.group(1)) if match else 0
                    if len(rest) < length:
                        break
                    pending = rest[length:]
                    conn.sendall(answer_for(head))
