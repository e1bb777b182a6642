"""The operational endpoints: health, readiness, metrics, the admin API and the dashboard.

Not API traffic, so not in the request log. The client's address and scheme are settled here
first, from the peer or from a trusted proxy's forwarded headers (`server.trusted_proxies`),
because the admin API and the dashboard throttle failed credentials by address.
"""

from __future__ import annotations

from typing import Any

import orjson

from bastion.admin import AdminAPI
from bastion.asgi import JSON, Exchange
from bastion.dashboard.web import Dashboard
from bastion.errors import NotFound
from bastion.gateway import Gateway
from bastion.operations import safe_path
from bastion.policies.client_address import TrustedProxies
from bastion.policies.login_throttle import LoginThrottle


class OperationalEndpoints:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.proxies = TrustedProxies(gw.config.server.trusted_proxies)
        throttle = LoginThrottle(gw.clock.monotonic)  # one count for every admin credential
        self.admin = AdminAPI(gw, throttle)
        self.dashboard = Dashboard(gw, throttle)

    async def handle(self, ex: Exchange) -> None:
        peer = ex.client
        ex.client = self.proxies.client(peer, ex.text(b"x-forwarded-for"))
        ex.scheme = self.proxies.scheme(peer, ex.scheme, ex.text(b"x-forwarded-proto"))
        if ex.path == "/healthz":
            await ex.respond(200, [JSON], b'{"status":"ok"}')
        elif ex.path == "/metrics":
            headers = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]
            budgets = await self.gw.ledger.snapshot(self.gw.clock.wall())
            await ex.respond(200, headers, self.gw.metrics.render(budgets))
        elif ex.path.startswith("/admin/"):
            await self.admin.handle(ex)
        elif ex.path == "/dashboard" or ex.path.startswith("/dashboard/"):
            await self.dashboard.handle(ex)
        elif ex.path == "/readyz":
            problems = await self.gw.readiness()
            body: dict[str, Any] = {"status": "not_ready" if problems else "ready"}
            if problems:
                body["problems"] = problems
            if self.gw.retirements:  # a warning, not a reason to take traffic away
                body["warnings"] = {f"model.{r.model}": r.message for r in self.gw.retirements}
            await ex.respond(503 if problems else 200, [JSON], orjson.dumps(body))
        else:
            raise NotFound(f"{ex.method} {safe_path(ex.path)} not found")

    def close(self) -> None:
        self.dashboard.close()
