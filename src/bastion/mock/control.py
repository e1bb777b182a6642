"""The control API under `/mock/`, for tests driving a running mock (no auth needed).

- `GET  /mock/scenario`  the runtime default: {scenario, remaining, delay, retry_after}
- `POST /mock/scenario`  {"scenario": NAME, "count"?: N, "delay"?: s, "retry_after"?: s} sets it,
                         for N requests to /v1/messages and then back to `ok` when count is given
- `GET  /mock/stats`     {total, paths: {path: n}, scenarios: {name: n}} (`/mock/*` not counted)
- `POST /mock/reset`     clears stats and the prompt cache, restores the startup scenario
                         (what the mock billed stays: its reports are a bill)
"""

from __future__ import annotations

from typing import Any

import orjson

from bastion.errors import BastionError, InvalidRequest, MethodNotAllowed, NotFound
from bastion.mock.asgi import Request, Send, read_body, send_response
from bastion.mock.cache import PromptCache
from bastion.mock.headers import JSON_TYPE
from bastion.mock.scenarios import ScenarioControl
from bastion.mock.settings import MockSettings
from bastion.mock.stats import RequestStats
from bastion.mock.validate import parse_json


class ControlEndpoint:
    def __init__(
        self,
        settings: MockSettings,
        control: ScenarioControl,
        stats: RequestStats,
        cache: PromptCache,
    ) -> None:
        self._settings = settings
        self._control = control
        self._stats = stats
        self._cache = cache

    async def __call__(self, request: Request, send: Send) -> None:
        try:
            answer = await self._dispatch(request)
        except BastionError as error:
            await _send_json(send, error.status, error.body(request.request_id), request)
            return
        await _send_json(send, 200, orjson.dumps(answer), request)

    async def _dispatch(self, request: Request) -> dict[str, Any]:
        method, path = request.scope["method"], request.scope["path"]
        if path == "/mock/scenario" and method == "POST":
            self._set_scenario(parse_json(await read_body(request.receive, 1 << 16)))
            return self._control.snapshot()
        if path == "/mock/scenario" and method == "GET":
            return self._control.snapshot()
        if path == "/mock/stats" and method == "GET":
            return self._stats.snapshot()
        if path == "/mock/reset" and method == "POST":
            self._reset()
            return {"scenario": self._control.snapshot(), "stats": self._stats.snapshot()}
        if path in ("/mock/scenario", "/mock/stats", "/mock/reset"):
            raise MethodNotAllowed(f"Method {method} not allowed for {path}")
        raise NotFound(f"Not found: {path}")

    def _set_scenario(self, body: dict[str, Any]) -> None:
        scenario = body.get("scenario")
        if not isinstance(scenario, str):
            raise InvalidRequest("scenario: Field required (a scenario name)")
        count = body.get("count")
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise InvalidRequest("count: Input should be an integer >= 1 or null")
        self._control.set(
            scenario,
            count=count,
            delay=_seconds(body, "delay"),
            retry_after=_seconds(body, "retry_after"),
        )

    def _reset(self) -> None:
        settings = self._settings
        self._stats.reset()
        self._cache.clear()
        self._control.set(settings.scenario, delay=settings.delay, retry_after=settings.retry_after)


def _seconds(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidRequest(f"{name}: Input should be a number of seconds >= 0")
    return float(value)


async def _send_json(send: Send, status: int, body: bytes, request: Request) -> None:
    headers = [
        JSON_TYPE,
        (b"content-length", b"%d" % len(body)),
        (b"request-id", request.request_id.encode()),
    ]
    await send_response(send, status, headers, body)
