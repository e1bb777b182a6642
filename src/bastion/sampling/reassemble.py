"""A streamed Messages answer put back together as the Message the same call would have returned.

Pure, over the SSE bytes the client received. Events are applied as the SDK's accumulator
applies them: blocks by index, text/thinking appended, tool input JSON concatenated and parsed
at the block's stop, signatures and citations attached, `message_delta` fields and usage laid
over the `message_start` snapshot. Unknown events and pings are skipped; an `error` event ends
the answer as an error envelope that carries the partial Message.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from typing import Any

import orjson

from bastion.streaming.sse import SSEDecoder

JSON = dict[str, Any]


def reassemble(chunks: Iterable[bytes]) -> JSON | None:
    """The Message (or error envelope) a stream amounts to; None when it holds no event at all."""
    decoder = SSEDecoder()
    state = _Message()
    for chunk in chain(chunks, [b"\n\n"]):  # the blank line ends a last event left open
        for frame in decoder.feed(chunk):
            try:
                event = orjson.loads(frame.data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(event, dict):
                state.apply(event)
    return state.result()


class _Message:
    __slots__ = ("blocks", "error", "message", "partial_json")

    def __init__(self) -> None:
        self.message: JSON | None = None
        self.blocks: dict[int, JSON] = {}
        self.partial_json: dict[int, list[str]] = {}
        self.error: JSON | None = None

    def apply(self, event: JSON) -> None:
        kind = event.get("type")
        if kind == "message_start" and isinstance(event.get("message"), dict):
            self.message = dict(event["message"])
        elif kind == "content_block_start" and isinstance(event.get("content_block"), dict):
            self.blocks[_index(event)] = dict(event["content_block"])
        elif kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            self.delta(_index(event), event["delta"])
        elif kind == "content_block_stop":
            self.stop(_index(event))
        elif kind == "message_delta":
            self.message_delta(event)
        elif kind == "error" and self.error is None:
            self.error = event

    def delta(self, index: int, delta: JSON) -> None:
        block = self.blocks.setdefault(index, {})
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"] = block.get("text", "") + str(delta.get("text", ""))
        elif kind == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + str(delta.get("thinking", ""))
        elif kind == "signature_delta":
            block["signature"] = delta.get("signature")
        elif kind == "input_json_delta":
            self.partial_json.setdefault(index, []).append(str(delta.get("partial_json", "")))
        elif kind == "citations_delta":
            block.setdefault("citations", []).append(delta.get("citation"))

    def stop(self, index: int) -> None:
        pieces = self.partial_json.pop(index, None)
        if not pieces or index not in self.blocks:
            return
        text = "".join(pieces)
        try:
            self.blocks[index]["input"] = orjson.loads(text) if text.strip() else {}
        except orjson.JSONDecodeError:
            self.blocks[index]["input"] = text  # kept as sent: a broken tool call is evidence

    def message_delta(self, event: JSON) -> None:
        if self.message is None:
            return
        delta = event.get("delta")
        if isinstance(delta, dict):
            self.message.update(delta)
        usage = event.get("usage")
        if isinstance(usage, dict):
            merged = dict(self.message.get("usage") or {})
            merged.update({k: v for k, v in usage.items() if v is not None})
            self.message["usage"] = merged

    def result(self) -> JSON | None:
        for index in list(self.partial_json):  # blocks the stream never stopped
            self.stop(index)
        message = self.message
        if message is not None:
            message = {**message, "content": [self.blocks[i] for i in sorted(self.blocks)]}
        if self.error is not None:
            return {**self.error, "partial_message": message}
        return message


def _index(event: JSON) -> int:
    index = event.get("index")
    return index if isinstance(index, int) else 0
