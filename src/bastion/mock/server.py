"""Serving the mock with uvicorn (httptools, uvloop when installed), quiet and fast.

`run_mock` is what `bastion mock` calls. `mock_config` is shared with tests so they serve the
mock exactly as the command does.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from bastion.mock.asgi import ASGIApp, StreamReset
from bastion.mock.settings import MockSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8788
# Longer than client pools keep idle connections (aiohttp: 15 s), so the mock never closes one
# a client is about to reuse; the real API's edge is similarly patient.
KEEP_ALIVE_SECONDS = 75


# Hung requests (the `hang` scenario) get this long to end once the server is asked to stop.
SHUTDOWN_GRACE_SECONDS = 1


class DropDeliberateResets(logging.Filter):
    """Hide uvicorn's tracebacks for connections the mock drops on purpose or at shutdown."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, StreamReset | asyncio.CancelledError)


def mock_config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    log_config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    log_config["filters"] = {"deliberate_resets": {"()": DropDeliberateResets}}
    log_config["loggers"]["uvicorn.error"]["filters"] = ["deliberate_resets"]
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http="httptools",
        loop="auto",
        lifespan="on",
        log_level="warning",
        log_config=log_config,
        access_log=False,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )


def run_mock(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    scenario: str = "ok",
    *,
    delay: float = 1.0,
    retry_after: float = 1.0,
) -> None:
    """Serve a mock Anthropic API until interrupted; ValueError names a bad setting."""
    from bastion.mock.app import build_mock_app  # deferred: app re-exports run_mock

    settings = MockSettings(scenario=scenario, delay=delay, retry_after=retry_after)
    uvicorn.Server(mock_config(build_mock_app(settings), host, port)).run()
