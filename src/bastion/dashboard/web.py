"""/dashboard over HTTP: the login form, the session cookie, the JSON API and the static page.

The admin key is posted once in a form body and exchanged for a signed session cookie (HttpOnly,
SameSite=Strict, Path=/dashboard, Secure over https); no key ever travels in a URL. Every
/dashboard/api/*.json answer needs a valid session, else 401. A session is bound to the credential
that opened it: each request re-reads that credential (in a worker thread, like the login), so a
rotated, removed or re-roled credential ends its sessions at once. The page is plain files from the
package (no CDN, no build step) under a `default-src 'self'` content security policy.
"""

from __future__ import annotations

import asyncio
import html
import re
import sqlite3
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import orjson

from bastion.asgi import JSON, Exchange, Headers
from bastion.dashboard import queries
from bastion.dashboard.session import (
    COOKIE,
    Role,
    claims,
    clear_cookie,
    cookies,
    issue,
    session_key,
    set_cookie,
    verify,
)
from bastion.errors import (
    AuthenticationFailed,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
)
from bastion.events import emit
from bastion.gateway import Gateway
from bastion.policies.admin_auth import AdminKeyUnavailable, admin_credential, admin_identity
from bastion.policies.login_throttle import LoginThrottle
from bastion.policies.retirement import Retirement
from bastion.secrets import SecretError
from bastion.stores.rollups import open_rollups

MAX_LOGIN_BODY = 4096
SESSION_TTL_S = 8 * 3600
SECURITY_HEADERS: Headers = [
    (
        b"content-security-policy",
        b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
STATIC_TYPES = {
    "app.js": b"text/javascript; charset=utf-8",
    "charts.js": b"text/javascript; charset=utf-8",
    "app.css": b"text/css; charset=utf-8",
    "favicon.svg": b"image/svg+xml",
}
HTML = (b"content-type", b"text/html; charset=utf-8")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


class StoreReader:
    """One read connection to the store, used by one thread at a time (queries are short)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def run(self, query: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._lock:
            if self._conn is None:
                self._conn = open_rollups(self._path)
            return query(self._conn)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class Dashboard:
    """The /dashboard routes of one gateway; `failure_delay_s` slows every failed login.

    `throttle` counts failed admin credentials; the admin API shares it."""

    def __init__(self, gw: Gateway, throttle: LoginThrottle, failure_delay_s: float = 0.5) -> None:
        self.gw = gw
        self._key = session_key(gw.keyring.server_secret)  # fetched once, at build
        self._throttle = throttle
        self._failure_delay_s = failure_delay_s
        self._reader = StoreReader(gw.store.path)
        static = resources.files("bastion.dashboard") / "static"
        self._pages = {name: (static / name).read_bytes() for name in ("index.html", "login.html")}
        self._static = {name: (static / name).read_bytes() for name in STATIC_TYPES}

    async def handle(self, ex: Exchange) -> None:
        ex.extra_headers.extend(SECURITY_HEADERS)
        if not self.gw.config.admin.enabled:
            raise NotFound("the dashboard is off: set admin.key or admin.keys in the config")
        path, method = ex.path, ex.method
        if path in ("/dashboard", "/dashboard/"):
            _require(method, "GET")
            if await self.session(ex) is None:
                await self.login_form(ex, 200, "")
            else:
                await ex.respond(200, [HTML], self._pages["index.html"])
        elif path == "/dashboard/login":
            _require(method, "POST")
            await self.login(ex)
        elif path == "/dashboard/logout":
            _require(method, "POST")
            headers = [(b"location", b"/dashboard"), (b"set-cookie", clear_cookie(self.secure(ex)))]
            await ex.respond(303, headers, b"")
        elif path.removeprefix("/dashboard/static/") in self._static:
            _require(method, "GET")
            name = path.removeprefix("/dashboard/static/")
            await ex.respond(200, [(b"content-type", STATIC_TYPES[name])], self._static[name])
        elif path.startswith("/dashboard/api/"):
            _require(method, "GET")
            if await self.session(ex) is None:
                raise AuthenticationFailed("no valid dashboard session: log in at /dashboard")
            body = await self.api(path.removeprefix("/dashboard/api/"), _params(ex))
            await ex.respond(200, [JSON], orjson.dumps(body))
        else:
            raise NotFound(f"{method} {path} not found")

    async def session(self, ex: Exchange) -> Role | None:
        """The role of the request's session, checked against its credential as configured now.

        The credential is read on every request (no cache), so a rotation takes effect at once,
        as it does for the admin API; the read runs in a worker thread because a secret manager's
        fetch blocks. Malformed or expired cookies are refused before any read."""
        token = cookies(ex.text(b"cookie")).get(COOKIE)
        now = self.gw.clock.wall()
        found = claims(token, now) if token else None
        if token is None or found is None:
            return None
        try:
            current = await asyncio.to_thread(
                admin_credential, self.gw.config.admin, self.gw.environ, found.credential
            )
        except SecretError as exc:
            emit("dashboard_session_unavailable", credential=found.credential, error=str(exc))
            return None
        if current is None:
            return None
        role, secret = current
        return verify(self._key, token, now, role, secret.reveal())

    def secure(self, ex: Exchange) -> bool:
        return ex.scheme == "https"

    async def login(self, ex: Exchange) -> None:
        if cross_site(ex):  # a form on another site posting here: refused before anything else
            emit("dashboard_login_cross_site", client=ex.client)
            raise PermissionDenied("the login form only accepts posts from the dashboard itself")
        form = parse_qs((await ex.read_body(MAX_LOGIN_BODY)).decode("utf-8", "replace"))
        presented = (form.get("admin_key") or [""])[0].strip()
        if self._throttle.locked(ex.client):
            await self.login_form(ex, 429, "Too many failed logins. Try again in a few minutes.")
            return
        self._throttle.failed(ex.client)  # counted before the check: tries in parallel count too
        try:  # a secret manager's fetch blocks: never on the event loop
            identity = await asyncio.to_thread(
                admin_identity, self.gw.config.admin, self.gw.environ, presented
            )
        except AdminKeyUnavailable as exc:  # names and references stay in the log, not the page
            emit("dashboard_login_unavailable", client=ex.client, error=str(exc))
            await self.login_form(ex, 503, "The admin key cannot be checked now: see the log.")
            return
        if identity is None:
            emit("dashboard_login_failed", client=ex.client)
            await asyncio.sleep(self._failure_delay_s)
            await self.login_form(ex, 401, "That is not an admin key.")
            return
        self._throttle.succeeded(ex.client)
        emit("dashboard_login", client=ex.client, role=identity.role, credential=identity.name)
        token = issue(
            self._key, identity.name, presented, identity.role, self.gw.clock.wall(), SESSION_TTL_S
        )
        cookie = set_cookie(token, SESSION_TTL_S, self.secure(ex))
        await ex.respond(303, [(b"location", b"/dashboard"), (b"set-cookie", cookie)], b"")

    async def login_form(self, ex: Exchange, status: int, error: str) -> None:
        note = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
        page = self._pages["login.html"].replace(b"<!--error-->", note.encode())
        await ex.respond(status, [HTML], page)

    async def api(self, name: str, params: dict[str, str]) -> Any:
        gw, now = self.gw, self.gw.clock.wall()
        environments, budgets = gw.config.environments, gw.config.budgets
        if name == "breakers.json":
            return {"breakers": [snap.as_row() for snap in gw.breakers.snapshots()]}
        if name == "models.json":
            return {"retirements": [retirement_row(notice) for notice in gw.retirements]}
        readers: dict[str, Callable[[sqlite3.Connection], Any]] = {
            "latency.json": lambda c: queries.latency(c, now),
            "spend.json": lambda c: queries.spend(c, now, environments, budgets),
            "top.json": lambda c: queries.top_spenders(c, now),
            "rates.json": lambda c: queries.rates(c, now),
            "cache.json": lambda c: queries.cache(c, now),
        }
        if name in readers:
            return await asyncio.to_thread(self._reader.run, readers[name])
        if name == "requests.json":
            search = params.get("q", "")
            if search and not _REQUEST_ID.fullmatch(search):
                raise InvalidRequest("q: a correlation id or its start (A-Z, a-z, 0-9, . _ : -)")
            found = await asyncio.to_thread(self._reader.run, lambda c: queries.recent(c, search))
            return {"requests": found}
        if name == "sample.json":
            request_id = params.get("id", "")
            if not _REQUEST_ID.fullmatch(request_id):
                raise InvalidRequest("id: a correlation id")
            found = await asyncio.to_thread(
                self._reader.run, lambda c: queries.sample(c, request_id)
            )
            if found is None:
                raise NotFound(f"no sample for request {request_id}")
            return found
        raise NotFound(f"/dashboard/api/{name} is not a dashboard endpoint")

    def close(self) -> None:
        self._reader.close()


def cross_site(ex: Exchange) -> bool:
    """Whether a browser says this request comes from another site.

    `Sec-Fetch-Site` decides when present (every current browser sends it): only `same-origin`
    and `none` (typed or bookmarked) pass. Without it, an `Origin` must be the dashboard's own;
    `null` is refused. The dashboard's `no-referrer` policy makes Chromium send `Origin: null`
    on its own form, so the `Origin` alone cannot decide. Clients that are not browsers send
    neither header and pass."""
    site = ex.text(b"sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = ex.text(b"origin")
    return origin is not None and origin != f"{ex.scheme}://{ex.text(b'host') or ''}"


def _params(ex: Exchange) -> dict[str, str]:
    parsed = parse_qs(ex.query.decode("latin-1"))
    return {name: values[0] for name, values in parsed.items()}


def _require(method: str, allowed: str) -> None:
    if method != allowed:
        raise MethodNotAllowed(f"method {method} is not allowed here; use {allowed}")


def retirement_row(notice: Retirement) -> dict[str, Any]:
    return {
        "model": notice.model,
        "status": notice.status,
        "retires_at": None if notice.retires_at is None else notice.retires_at.isoformat(),
        "days_left": notice.days_left,
        "message": notice.message,
    }
