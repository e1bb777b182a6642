"""The mock's ASGI application: routing, authentication and the error envelope.

`build_mock_app(settings)` wires the parts; each request is routed by path, authenticated
(any non-empty `x-api-key` or `Authorization: Bearer`; the Admin API's reports want a key that
starts with `sk-ant-admin`, as the API does), handled, and any refusal rendered in Anthropic's
envelope with a `request-id` header.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bastion.errors import (
    AuthenticationFailed,
    BastionError,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
)
from bastion.mock.asgi import ASGIApp, Receive, Request, Scope, Send, lifespan, send_response
from bastion.mock.cache import PromptCache
from bastion.mock.control import ControlEndpoint
from bastion.mock.headers import HeaderFactory
from bastion.mock.ids import Ids
from bastion.mock.messages import MessagesEndpoint
from bastion.mock.models import ModelDirectory
from bastion.mock.reports import Reports
from bastion.mock.scenarios import SCENARIOS, ScenarioControl
from bastion.mock.server import run_mock
from bastion.mock.settings import Catalog, MockSettings
from bastion.mock.stats import RequestStats
from bastion.mock.usage_ledger import UsageLedger

__all__ = ["SCENARIOS", "MockApp", "authenticate", "build_mock_app", "run_mock"]

Handler = Callable[[Request, Send], Awaitable[None]]
MODELS_PREFIX = "/v1/models/"
ADMIN_KEY_PREFIX = b"sk-ant-admin"


def build_mock_app(settings: MockSettings | None = None) -> ASGIApp:
    """A fresh mock Anthropic API; all its state (cache, scenario, stats) lives in it."""
    return MockApp(settings or MockSettings())


class MockApp:
    def __init__(self, settings: MockSettings) -> None:
        catalog = settings.catalog if settings.catalog is not None else _bastion_catalog()
        self.directory = ModelDirectory(catalog, settings.default_cache_min_tokens)
        self.cache = PromptCache(settings.cache_capacity, settings.clock)
        self.control = ScenarioControl(settings.scenario, settings.delay, settings.retry_after)
        self.stats = RequestStats()
        self.headers = HeaderFactory(settings.organization_id, settings.wall_clock)
        self.ids = Ids(settings.rng)
        self.billing = UsageLedger(settings.wall_clock, self.directory.entry)
        messages = MessagesEndpoint(
            settings,
            self.directory,
            self.cache,
            self.control,
            self.stats,
            self.headers,
            self.ids,
            self.billing,
        )
        reports = Reports(self.billing, self.directory.entry)
        self.control_api = ControlEndpoint(settings, self.control, self.stats, self.cache)
        self.routes: dict[str, tuple[str, Handler]] = {
            "/v1/messages": ("POST", messages.create),
            "/v1/messages/count_tokens": ("POST", messages.count_tokens),
            "/v1/models": ("GET", self.list_models),
        }
        self.admin_routes: dict[str, Callable[[bytes], bytes]] = {
            "/v1/organizations/usage_report/messages": reports.messages_usage,
            "/v1/organizations/cost_report": reports.cost,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await lifespan(receive, send)
            return
        request = Request(scope, receive, self.ids.request())
        if scope["path"].startswith("/mock/"):
            await self.control_api(request, send)
            return
        self.stats.count_path(scope["path"])
        try:
            await self.route(request, send)
        except BastionError as error:
            body = error.body(request.request_id)
            headers = self.headers.error(request.request_id, len(body))
            await send_response(send, error.status, headers, body)

    async def route(self, request: Request, send: Send) -> None:
        path: str = request.scope["path"]
        report = self.admin_routes.get(path)
        if report is not None:
            await self.admin_report(request, send, report)
            return
        route = self.routes.get(path)
        if route is None and path.startswith(MODELS_PREFIX):
            route = ("GET", self.retrieve_model)
        if route is None:
            raise NotFound(f"Not found: {request.scope['method']} {path}")
        method, handler = route
        if request.scope["method"] != method:
            raise MethodNotAllowed(f"Method {request.scope['method']} not allowed for {path}")
        authenticate(request.headers)
        await handler(request, send)

    async def admin_report(
        self, request: Request, send: Send, report: Callable[[bytes], bytes]
    ) -> None:
        if request.scope["method"] != "GET":
            raise MethodNotAllowed(f"Method {request.scope['method']} not allowed")
        authenticate(request.headers)
        if not request.headers.get(b"x-api-key", b"").startswith(ADMIN_KEY_PREFIX):
            raise PermissionDenied("This endpoint needs an Admin API key (sk-ant-admin...)")
        body = report(request.scope["query_string"])
        await send_response(send, 200, self.headers.json(request.request_id, len(body)), body)

    async def list_models(self, request: Request, send: Send) -> None:
        body = self.directory.page(request.scope["query_string"])
        await send_response(send, 200, self.headers.json(request.request_id, len(body)), body)

    async def retrieve_model(self, request: Request, send: Send) -> None:
        body = self.directory.retrieve(request.scope["path"][len(MODELS_PREFIX) :])
        await send_response(send, 200, self.headers.json(request.request_id, len(body)), body)


def authenticate(headers: dict[bytes, bytes]) -> None:
    """Any non-empty `x-api-key`, or `Authorization: Bearer <non-empty>`."""
    if headers.get(b"x-api-key", b"").strip():
        return
    authorization = headers.get(b"authorization", b"")
    if authorization[:7].lower() == b"bearer " and authorization[7:].strip():
        return
    raise AuthenticationFailed("x-api-key header is required")


def _bastion_catalog() -> Catalog:
    from bastion.pricing.catalog import load_catalog

    return load_catalog()
