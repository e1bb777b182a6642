"""The `server:` section: listening, limits on what clients send, proxies and the upstream
client; and the upstream client's settings derived from it and the environment."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, field_validator

from bastion.config_base import Section
from bastion.policies.forward_headers import extra_header_problem
from bastion.upstream import ClientSettings, ProxySettings


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=1, le=65535)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    """Request bodies above this are refused with 413 before they are read whole (API: 32 MB)."""
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    """Request header blocks above this (names and values together) are refused with 431."""
    max_headers: int = Field(default=100, ge=10)
    """Requests with more header lines than this are refused with 431."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses or networks (CIDR) of the reverse proxies in front of Bastion. Only a request
    from one of them may name its client in X-Forwarded-For (and scheme in X-Forwarded-Proto);
    from anyone else those headers are ignored. Empty: the peer address is the client."""
    forward_headers: list[str] = Field(default_factory=list)
    """Request headers to pass upstream besides the Messages API's own (e.g. x-mock-scenario for
    `bastion mock`, or one your egress proxy needs); checked like them. Credentials, cookies,
    hop-by-hop, forwarding and x-bastion-* headers cannot be named."""
    upstream_client: Literal["aiohttp", "pyreqwest"] = "aiohttp"
    """The upstream HTTP client: aiohttp, or pyreqwest (Rust reqwest/hyper: cheaper per request,
    see bench/README.md, but a request cancelled before its answer starts runs on until the
    upstream answers; `bastion.transport_reqwest` says why that keeps it from the default)."""
    upstream_proxy: str | None = None
    """A proxy for every upstream call (http://[user:password@]host:port). Unset: the
    environment's HTTPS_PROXY or HTTP_PROXY, by the upstream URL's scheme."""
    upstream_no_proxy: str | None = None
    """Upstream hosts that bypass the proxy (NO_PROXY syntax). Unset: the environment's NO_PROXY."""
    proxy_from_environment: bool = True
    """Read HTTPS_PROXY, HTTP_PROXY and NO_PROXY (either case) when the two above are unset."""
    upstream_ca_file: str | None = None
    """A PEM file of CAs to trust besides the system's (a private CA, a TLS-inspecting proxy)."""
    max_response_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """An upstream response past this is cut off: 502 before the answer starts, SSE error after."""

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address or CIDR network") from None
        return values

    @field_validator("forward_headers")
    @classmethod
    def _forwardable(cls, names: list[str]) -> list[str]:
        for name in names:
            problem = extra_header_problem(name)
            if problem is not None:
                raise ValueError(f"{name!r}: {problem}")
        return names

    @field_validator("upstream_proxy")
    @classmethod
    def _proxy_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url


def proxy_settings(server: ServerConfig, environ: Mapping[str, str]) -> ProxySettings:
    """The upstream proxies: the config's, else (when allowed) the environment's, as curl
    reads them (lower case first)."""

    def env(name: str) -> str | None:
        if not server.proxy_from_environment:
            return None
        return environ.get(name.lower()) or environ.get(name.upper()) or None

    no_proxy = server.upstream_no_proxy or env("NO_PROXY")
    if server.upstream_proxy is not None:
        return ProxySettings(server.upstream_proxy, server.upstream_proxy, no_proxy)
    return ProxySettings(env("HTTP_PROXY"), env("HTTPS_PROXY"), no_proxy)


def client_settings(server: ServerConfig, environ: Mapping[str, str]) -> ClientSettings:
    """What the upstream transport takes from `server:` and the environment."""
    return ClientSettings(
        max_response_bytes=server.max_response_bytes,
        ca_file=server.upstream_ca_file,
        proxy=proxy_settings(server, environ),
    )
