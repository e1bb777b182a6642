"""gcp-sm: references through the official client's REST transport, against a local fake of the
Secret Manager REST API on 127.0.0.1 (there is no official emulator)."""

from __future__ import annotations

import json
import uuid
from urllib.parse import unquote

import pytest

from bastion.secrets import SecretCache, SecretError, open_secret, resolve_secret
from bastion.secrets.cache import RefreshPolicy
from tests.secrets_servers import (
    GcpFake,
    free_port,
    gcp_fake_fixture,  # noqa: F401 -- registers gcp_fake
)


def _secret(fake: GcpFake, *payloads: bytes) -> str:
    name = f"projects/bastion-test/secrets/s-{uuid.uuid4().hex[:8]}"
    for payload in payloads:
        fake.add_version(name, payload)
    return name


def test_latest_version_and_the_exact_request(gcp_fake: GcpFake) -> None:
    name = _secret(gcp_fake, b"sk-ant-gcp-1", b"sk-ant-gcp-2")
    before = len(gcp_fake.requests)
    assert resolve_secret(f"gcp-sm:{name}", gcp_fake.environ).reveal() == "sk-ant-gcp-2"
    [(method, url, headers)] = gcp_fake.requests[before:]
    path, _, query = url.partition("?")
    assert (method, path) == ("GET", f"/v1/{name}/versions/latest:access")
    assert unquote(query) == "$alt=json;enum-encoding=int"  # what the REST transport adds
    assert "authorization" not in {key.lower() for key in headers}  # anonymous on loopback


def test_pinned_version_and_json_field(gcp_fake: GcpFake) -> None:
    name = _secret(gcp_fake, b"sk-ant-gcp-v1", json.dumps({"api_key": "sk-ant-gcp-json"}).encode())
    env = gcp_fake.environ
    assert resolve_secret(f"gcp-sm:{name}/versions/1", env).reveal() == "sk-ant-gcp-v1"
    assert resolve_secret(f"gcp-sm:{name}/versions/2#api_key", env).reveal() == "sk-ant-gcp-json"


def test_payload_without_checksum_is_accepted(gcp_fake: GcpFake) -> None:
    name = _secret(gcp_fake)
    gcp_fake.add_version(name, b"sk-ant-no-crc", crc=None)
    assert resolve_secret(f"gcp-sm:{name}", gcp_fake.environ).reveal() == "sk-ant-no-crc"


@pytest.mark.parametrize(
    ("case", "cause"),
    [
        ("missing", "not found"),
        ("no-such-version", "not found"),
        ("corrupt", "the payload failed its CRC32C check"),
        ("denied", "access denied"),
    ],
)
def test_failures_name_the_reference_and_cause(gcp_fake: GcpFake, case: str, cause: str) -> None:
    name = _secret(gcp_fake)
    ref = f"gcp-sm:{name}"
    if case == "no-such-version":
        gcp_fake.add_version(name, b"sk-ant-gcp-secret")
        ref += "/versions/7"
    if case == "corrupt":
        gcp_fake.add_version(name, b"sk-ant-gcp-secret", crc="corrupt")
    if case == "denied":
        gcp_fake.add_version(name, b"sk-ant-gcp-secret")
        gcp_fake.denied.add(name)
    with pytest.raises(SecretError) as caught:
        resolve_secret(ref, gcp_fake.environ)
    assert str(caught.value).startswith(f"{ref}: {cause}")
    assert "sk-ant-gcp-secret" not in str(caught.value)


def test_unreachable_endpoint() -> None:
    env = {"GCP_SECRET_MANAGER_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    ref = "gcp-sm:projects/p/secrets/s"
    with pytest.raises(SecretError, match=f"^{ref}: Secret Manager unreachable"):
        resolve_secret(ref, env)


async def test_rotation_is_picked_up_by_refresh_now(gcp_fake: GcpFake) -> None:
    name = _secret(gcp_fake, b"sk-ant-gcp-old")
    cache = SecretCache(
        open_secret(f"gcp-sm:{name}", gcp_fake.environ),
        policy=RefreshPolicy(min_forced_interval_s=0.0),
    )
    old = await cache.get()
    gcp_fake.add_version(name, b"sk-ant-gcp-new")
    assert (await cache.get()) == old
    assert (await cache.refresh_now(seen=old)).reveal() == "sk-ant-gcp-new"
    assert cache.fetches == 2
