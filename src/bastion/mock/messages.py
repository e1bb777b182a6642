"""`POST /v1/messages` and `/v1/messages/count_tokens`: answer like the API, or fail as told.

Error scenarios (429, 529, 500) and `hang` act before validation, as an overloaded API would;
the others answer a validated request and misbehave while sending it. Stream-only faults on a
non-streamed request: `reset_mid_stream` cuts the JSON body, `malformed_body` truncates it,
`error_event_mid_stream` becomes a 529, `slow_stream` is answered normally.
"""

from __future__ import annotations

import asyncio
import dataclasses

import orjson

from bastion.errors import error_body
from bastion.mock.asgi import (
    Request,
    Send,
    StreamReset,
    read_body,
    send_response,
    wait_for_disconnect,
)
from bastion.mock.cache import PromptCache, breakpoints
from bastion.mock.headers import HeaderFactory
from bastion.mock.ids import Ids
from bastion.mock.models import ModelDirectory
from bastion.mock.reply import Reply, compose_reply
from bastion.mock.responses import (
    BROKEN_FRAME,
    StreamFrames,
    error_frame,
    message_json,
    stream_frames,
)
from bastion.mock.scenarios import ERROR_SCENARIOS, Fault, ScenarioControl, choose_fault
from bastion.mock.settings import MockSettings
from bastion.mock.stats import RequestStats
from bastion.mock.tokens import prompt_blocks, prompt_tokens
from bastion.mock.usage_ledger import UsageLedger, credential
from bastion.mock.validate import parse_count, parse_messages
from bastion.types import Usage

DEFAULT_VERSION = b"2023-06-01"
STREAM_FAULTS = frozenset({"reset_mid_stream", "error_event_mid_stream", "malformed_body"})


class MessagesEndpoint:
    def __init__(
        self,
        settings: MockSettings,
        directory: ModelDirectory,
        cache: PromptCache,
        control: ScenarioControl,
        stats: RequestStats,
        headers: HeaderFactory,
        ids: Ids,
        billing: UsageLedger,
    ) -> None:
        self._settings = settings
        self._directory = directory
        self._cache = cache
        self._control = control
        self._stats = stats
        self._headers = headers
        self._ids = ids
        self._billing = billing

    async def create(self, request: Request, send: Send) -> None:
        fault = choose_fault(request.headers, self._control)
        self._stats.count_scenario(fault.scenario)
        raw = await read_body(request.receive, self._settings.max_body_bytes)
        if fault.scenario in ERROR_SCENARIOS:
            await self._fail(request, send, fault)
            return
        if fault.scenario == "hang":
            await wait_for_disconnect(request.receive)
            return
        version = request.headers.get(b"anthropic-version", DEFAULT_VERSION).decode("latin-1")
        parsed = parse_messages(raw, version, self._directory.max_output)
        blocks = prompt_blocks(parsed.body)
        points = breakpoints(blocks, parsed.automatic_cache_ttl)
        minimum = self._directory.cache_min_tokens(parsed.model)
        usage = self._cache.apply(parsed.model, blocks, points, minimum)
        reply = compose_reply(parsed.body["messages"], parsed.max_tokens, parsed.stop_sequences)
        if fault.scenario == "slow_first_byte":
            await self._settings.sleep(fault.delay)
        if fault.scenario != "error_event_mid_stream" or parsed.stream:
            # Billed once the answer starts, whatever happens to it on the way (as the API does).
            billed = dataclasses.replace(usage, output_tokens=reply.output_tokens)
            self._billing.record(credential(request.headers), parsed.model, billed)
        if parsed.stream:
            await self._stream(request, send, fault, parsed.model, reply, usage)
        else:
            await self._answer(request, send, fault, parsed.model, reply, usage)

    async def count_tokens(self, request: Request, send: Send) -> None:
        body, _ = parse_count(await read_body(request.receive, self._settings.max_body_bytes))
        answer = orjson.dumps({"input_tokens": prompt_tokens(prompt_blocks(body))})
        headers = self._headers.json(request.request_id, len(answer))
        await send_response(send, 200, headers, answer)

    async def _fail(self, request: Request, send: Send, fault: Fault) -> None:
        status, error_type, message = ERROR_SCENARIOS[fault.scenario]
        body = error_body(error_type, message, request.request_id)
        if status == 429:
            headers = self._headers.rate_limited(request.request_id, len(body), fault.retry_after)
        else:
            headers = self._headers.error(request.request_id, len(body))
        await send_response(send, status, headers, body)

    async def _answer(
        self, request: Request, send: Send, fault: Fault, model: str, reply: Reply, usage: Usage
    ) -> None:
        if fault.scenario == "error_event_mid_stream":
            await self._fail(request, send, Fault("overloaded", fault.delay, fault.retry_after))
            return
        body = message_json(self._ids.message(), model, reply, usage)
        if fault.scenario == "malformed_body":
            body = body[: len(body) // 2]
        headers = self._headers.json(request.request_id, len(body))
        if fault.scenario == "reset_mid_stream":
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            half = body[: len(body) // 2]
            await send({"type": "http.response.body", "body": half, "more_body": True})
            raise StreamReset("reset_mid_stream: connection dropped mid-body")
        await send_response(send, 200, headers, body)

    async def _stream(
        self, request: Request, send: Send, fault: Fault, model: str, reply: Reply, usage: Usage
    ) -> None:
        settings = self._settings
        frames = stream_frames(self._ids.message(), model, reply, usage, settings.words_per_delta)
        events = _stream_events(frames, fault, request.request_id, settings.deltas_before_fault)
        gap = fault.delay if fault.scenario == "slow_stream" else 0.0
        headers = self._headers.sse(request.request_id)
        self._stats.count_stream("started")
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        # A slow stream watches for the client leaving, so stats can show it was closed.
        gone = asyncio.ensure_future(wait_for_disconnect(request.receive)) if gap else None
        try:
            for index, event in enumerate(events):
                if gap and index:
                    await settings.sleep(gap)
                if gone is not None and gone.done():
                    self._stats.count_stream("abandoned")
                    return
                await send({"type": "http.response.body", "body": event, "more_body": True})
        finally:
            if gone is not None:
                gone.cancel()
        if fault.scenario == "reset_mid_stream":
            raise StreamReset("reset_mid_stream: connection dropped mid-stream")
        self._stats.count_stream("completed")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _stream_events(frames: StreamFrames, fault: Fault, request_id: str, keep: int) -> list[bytes]:
    """The frames a stream sends: all of them, or the first `keep` deltas and then the fault."""
    if fault.scenario not in STREAM_FAULTS:
        return frames.all()
    events = [*frames.head, *frames.deltas[:keep]]
    if fault.scenario == "error_event_mid_stream":
        events.append(error_frame("overloaded_error", "Overloaded", request_id))
    elif fault.scenario == "malformed_body":
        events.append(BROKEN_FRAME)
    return events
