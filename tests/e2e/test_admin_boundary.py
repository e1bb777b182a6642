"""The admin boundary of a real `bastion serve`: forwarded headers, throttles, cross-site posts.

X-Forwarded-For is believed only from `server.trusted_proxies`; failed admin credentials are
counted per address and overall, for the dashboard login and the admin API alike; the login
form refuses posts from other sites.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest

from tests.e2e.harness import DEFAULT_EXTRA, Gateway, Process, start_gateway

pytestmark = pytest.mark.e2e


def admin_gateway(
    workdir: Path, upstream: Process, trusted: list[str] | None = None
) -> tuple[Gateway, str]:
    admin_key = secrets.token_urlsafe(24)
    (workdir / "admin_key").write_text(admin_key)
    extra = DEFAULT_EXTRA + f"admin: {{key: 'file:{workdir / 'admin_key'}'}}\n"
    server = {"trusted_proxies": str(trusted)} if trusted is not None else {}
    return start_gateway(workdir, upstream.url, extra=extra, **server), admin_key


@pytest.fixture
def untrusted(tmp_path: Path, upstream: Process) -> Iterator[tuple[Gateway, str]]:
    gateway, admin_key = admin_gateway(tmp_path, upstream)
    yield gateway, admin_key
    gateway.process.stop()


@pytest.fixture
def behind_proxy(tmp_path: Path, upstream: Process) -> Iterator[tuple[Gateway, str]]:
    gateway, admin_key = admin_gateway(tmp_path, upstream, ["127.0.0.1"])
    yield gateway, admin_key
    gateway.process.stop()


def login(gateway: Gateway, key: str, **headers: str) -> int:
    response = httpx2.post(
        gateway.url + "/dashboard/login", data={"admin_key": key},
        headers={k.replace("_", "-"): v for k, v in headers.items()}, timeout=30,
    )  # fmt: skip
    return response.status_code


def test_parallel_wrong_logins_with_rotating_forwarded_headers_get_429(
    untrusted: tuple[Gateway, str],
) -> None:
    gateway, admin_key = untrusted
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(
            pool.map(
                lambda n: login(gateway, "wrong", x_forwarded_for=f"10.{n // 250}.{n % 250}.1"),
                range(100),
            )
        )
    assert statuses.count(401) == 10  # the peer's ten tries; the header changed nothing
    assert statuses.count(429) == 90
    assert login(gateway, admin_key, x_forwarded_for="10.99.99.99") == 429  # still the peer


def test_behind_a_trusted_proxy_each_client_address_has_its_own_count(
    behind_proxy: tuple[Gateway, str],
) -> None:
    gateway, admin_key = behind_proxy
    for _ in range(10):
        assert login(gateway, "wrong", x_forwarded_for="203.0.113.9") == 401
    assert login(gateway, "wrong", x_forwarded_for="203.0.113.9") == 429
    assert login(gateway, admin_key, x_forwarded_for="203.0.113.9") == 429
    # Another client behind the same proxy is not locked out by the first one.
    assert login(gateway, admin_key, x_forwarded_for="198.51.100.7") == 303
    # A client that writes its own X-Forwarded-For gets the address the proxy appended.
    assert login(gateway, admin_key, x_forwarded_for="198.51.100.7, 203.0.113.9") == 429


def test_rotating_addresses_behind_a_trusted_proxy_meet_the_overall_ceiling(
    behind_proxy: tuple[Gateway, str],
) -> None:
    gateway, admin_key = behind_proxy
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(
            pool.map(
                lambda n: login(gateway, "wrong", x_forwarded_for=f"10.{n // 250}.{n % 250}.1"),
                range(150),
            )
        )
    assert statuses.count(401) == 100  # one try per address, 100 in all
    assert statuses.count(429) == 50
    # Until the window ends, no address logs in over HTTP (the CLI needs no admin key).
    assert login(gateway, admin_key, x_forwarded_for="192.0.2.200") == 429


def test_a_cross_site_login_post_is_refused(untrusted: tuple[Gateway, str]) -> None:
    gateway, admin_key = untrusted
    evil = "https://evil.example"
    assert login(gateway, admin_key, origin=evil, sec_fetch_site="cross-site") == 403
    assert login(gateway, admin_key, origin="null", sec_fetch_site="cross-site") == 403
    assert login(gateway, admin_key, origin=evil, sec_fetch_site="same-site") == 403
    assert login(gateway, admin_key, origin=evil) == 403  # a browser without Sec-Fetch-*
    assert login(gateway, admin_key, origin="null") == 403
    # The dashboard's own form, as Chromium posts it under `Referrer-Policy: no-referrer`.
    assert login(gateway, admin_key, origin="null", sec_fetch_site="same-origin") == 303
    assert login(gateway, admin_key, origin=gateway.url) == 303
    assert login(gateway, admin_key) == 303  # not a browser: no Origin, no Sec-Fetch-Site


def test_the_admin_api_is_throttled_like_the_login(untrusted: tuple[Gateway, str]) -> None:
    gateway, admin_key = untrusted

    def keys(credential: str) -> httpx2.Response:
        return httpx2.get(
            gateway.url + "/admin/keys", headers={"authorization": f"Bearer {credential}"},
            timeout=30,
        )  # fmt: skip

    assert keys(admin_key).status_code == 200
    statuses = [keys(f"wrong-{n}").status_code for n in range(12)]
    assert statuses == [401] * 10 + [429] * 2
    refused = keys(admin_key)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    # The dashboard login shares the count: this address is locked out there too.
    assert login(gateway, admin_key) == 429
