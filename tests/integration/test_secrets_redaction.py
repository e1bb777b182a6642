"""No secret value leaks: known secrets go through every provider's success and failure paths on
the real servers, and every repr, str, error message, traceback and alert text is searched."""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from collections.abc import Callable

import pytest

from bastion.clock import Clock
from bastion.secrets import SecretCache, SecretError, SecretValue, open_secret, resolve_secret
from bastion.secrets.cache import RefreshPolicy
from tests.secrets_servers import (
    GcpFake,
    MotoServer,
    OpenBaoServer,
    gcp_fake_fixture,  # noqa: F401 -- registers gcp_fake
    moto_server_fixture,  # noqa: F401 -- registers moto_server
    openbao_server_fixture,  # noqa: F401 -- registers openbao_server
)

KEY = "sk-ant-api03-" + "R3DACT" * 15 + "xyzAA"
OTHER = "sk-ant-admin01-" + "N0TME" * 18 + "AA"
DOC = json.dumps({"api_key": KEY, "admin": OTHER, "n": 7})
Refs = dict[str, tuple[dict[str, str], str, list[str]]]


def _texts(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc))]


def _assert_clean(texts: list[str]) -> None:
    for text in texts:
        assert KEY not in text and OTHER not in text, text


@pytest.fixture
def refs(moto_server: MotoServer, openbao_server: OpenBaoServer, gcp_fake: GcpFake) -> Refs:
    """For each provider: its environment, a good reference and references that fail."""
    tag = uuid.uuid4().hex[:8]
    moto_server.client().create_secret(Name=f"red/{tag}", SecretString=DOC)
    moto_server.client().create_secret(Name=f"red/plain-{tag}", SecretString=KEY)
    openbao_server.client().secrets.kv.v2.create_or_update_secret(
        path=f"red/{tag}", secret=json.loads(DOC)
    )
    gcp = f"projects/p/secrets/red-{tag}"
    gcp_fake.add_version(gcp, DOC.encode())
    gcp_fake.add_version(f"{gcp}-plain", KEY.encode())
    gcp_fake.add_version(f"{gcp}-corrupt", KEY.encode(), crc="corrupt")
    return {
        "aws": (
            moto_server.environ,
            f"aws-sm:red/{tag}#api_key",
            [f"aws-sm:red/{tag}#missing", f"aws-sm:red/{tag}#n", f"aws-sm:red/plain-{tag}#k"],
        ),
        "vault": (
            openbao_server.environ,
            f"vault:secret/red/{tag}#api_key",
            [f"vault:secret/red/{tag}#missing", f"vault:secret/red/{tag}#n"],
        ),
        "gcp": (
            gcp_fake.environ,
            f"gcp-sm:{gcp}#api_key",
            [f"gcp-sm:{gcp}#missing", f"gcp-sm:{gcp}-plain#k", f"gcp-sm:{gcp}-corrupt"],
        ),
    }


@pytest.mark.parametrize("provider", ["aws", "vault", "gcp"])
async def test_no_path_reveals_the_secret(
    refs: Refs, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    environ, good, failing = refs[provider]
    caplog.set_level(logging.DEBUG)
    value = resolve_secret(good, environ)
    assert value.reveal() == KEY
    _assert_clean([repr(value), str(value), f"{value}", repr([value]), repr({"k": value})])
    for ref in failing:
        with pytest.raises(SecretError) as caught:
            resolve_secret(ref, environ)
        assert str(caught.value).startswith(f"{ref}: ")
        _assert_clean(_texts(caught.value))

    alerts: list[str] = []
    source = open_secret(good, environ)
    now = [0.0]
    cache = SecretCache(
        source,
        policy=RefreshPolicy(min_forced_interval_s=0),
        clock=Clock(monotonic=lambda: now[0]),
        on_error=lambda ref, exc, n: alerts.append(f"{ref} {exc!r} {n}"),
    )
    assert (await cache.get()).reveal() == KEY
    broken: Callable[[], SecretValue] = open_secret(failing[0], environ).fetch
    source.fetch = broken  # type: ignore[method-assign]  # the manager starts answering badly
    assert (await cache.refresh_now()).reveal() == KEY
    assert alerts and cache.last_error is not None
    _assert_clean([*alerts, *_texts(cache.last_error), repr(cache.current)])
    _assert_clean([record.getMessage() for record in caplog.records])
