"""aws-sm: references against moto's server mode on 127.0.0.1 (a real HTTP Secrets Manager API)."""

from __future__ import annotations

import json
import uuid

import pytest

from bastion.secrets import SecretCache, SecretError, SecretValue, open_secret, resolve_secret
from bastion.secrets.cache import RefreshPolicy
from tests.secrets_servers import (
    MotoServer,
    free_port,
    moto_server_fixture,  # noqa: F401 -- registers moto_server
)


def _name(prefix: str) -> str:
    return f"bastion/{prefix}-{uuid.uuid4().hex[:8]}"


def test_plain_secret_string(moto_server: MotoServer) -> None:
    name = _name("plain")
    moto_server.client().create_secret(Name=name, SecretString="sk-ant-plain-1\n")
    assert resolve_secret(f"aws-sm:{name}", moto_server.environ) == SecretValue("sk-ant-plain-1")


def test_json_field_by_name_and_by_arn(moto_server: MotoServer) -> None:
    name = _name("json")
    body = {"api_key": "sk-ant-json-1", "nested": {"key": "sk-ant-nested-1"}}
    arn = moto_server.client().create_secret(Name=name, SecretString=json.dumps(body))["ARN"]
    env = moto_server.environ
    assert resolve_secret(f"aws-sm:{name}#api_key", env).reveal() == "sk-ant-json-1"
    assert resolve_secret(f"aws-sm:{name}#nested.key", env).reveal() == "sk-ant-nested-1"
    assert resolve_secret(f"aws-sm:{arn}#api_key", env).reveal() == "sk-ant-json-1"


def test_binary_secret_is_read_as_text(moto_server: MotoServer) -> None:
    name = _name("binary")
    moto_server.client().create_secret(Name=name, SecretBinary=b"sk-ant-binary-1")
    assert resolve_secret(f"aws-sm:{name}", moto_server.environ).reveal() == "sk-ant-binary-1"


def test_general_endpoint_variable_is_honoured(moto_server: MotoServer) -> None:
    name = _name("endpoint")
    moto_server.client().create_secret(Name=name, SecretString="sk-ant-endpoint")
    env = {**moto_server.environ, "AWS_ENDPOINT_URL": moto_server.url}
    del env["AWS_ENDPOINT_URL_SECRETS_MANAGER"]
    assert resolve_secret(f"aws-sm:{name}", env).reveal() == "sk-ant-endpoint"


@pytest.mark.parametrize(
    ("setup", "suffix", "cause"),
    [
        ("none", "", "not found"),
        ("plain", "#api_key", "not JSON"),
        ("json", "#missing", "field 'missing' is missing"),
        ("json", "#count", "field 'count' is not a string"),
    ],
)
def test_failures_name_the_reference_and_cause(
    moto_server: MotoServer,
    setup: str,
    suffix: str,
    cause: str,
) -> None:
    name = _name("fail")
    if setup == "plain":
        moto_server.client().create_secret(Name=name, SecretString="sk-ant-secret-fail")
    if setup == "json":
        body = json.dumps({"api_key": "sk-ant-secret-fail", "count": 3})
        moto_server.client().create_secret(Name=name, SecretString=body)
    ref = f"aws-sm:{name}{suffix}"
    with pytest.raises(SecretError) as caught:
        resolve_secret(ref, moto_server.environ)
    assert str(caught.value).startswith(f"{ref}: ")
    assert cause in str(caught.value)
    assert "sk-ant-secret-fail" not in str(caught.value)


def test_unreachable_endpoint() -> None:
    env = {
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": f"http://127.0.0.1:{free_port()}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    with pytest.raises(SecretError, match=r"^aws-sm:anything: Secrets Manager unreachable"):
        resolve_secret("aws-sm:anything", env)


async def test_rotation_is_picked_up_by_refresh_now(moto_server: MotoServer) -> None:
    name = _name("rotate")
    admin = moto_server.client()
    admin.create_secret(Name=name, SecretString=json.dumps({"api_key": "sk-ant-old"}))
    cache = SecretCache(
        open_secret(f"aws-sm:{name}#api_key", moto_server.environ),
        policy=RefreshPolicy(min_forced_interval_s=0.0),
    )
    old = await cache.get()
    assert old.reveal() == "sk-ant-old"
    admin.put_secret_value(SecretId=name, SecretString=json.dumps({"api_key": "sk-ant-new"}))
    assert (await cache.get()) == old  # within the TTL nothing is fetched
    assert (await cache.refresh_now(seen=old)).reveal() == "sk-ant-new"
    assert (await cache.get()).reveal() == "sk-ant-new"
    assert cache.fetches == 2
