"""The command line, through click's runner: keys, init, and config errors at start."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bastion.policies.keys import parse_key_id
from bastion.stores.sqlite import SQLiteStore
from tests.integration.conftest import run_cli, write_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    rest = f"""keys: {{hash_secret: "file:{tmp_path}/secret/key"}}
environments:
  dev: {{upstream: {{api_key: "env:UPSTREAM"}}}}
  prod: {{upstream: {{api_key: "env:UPSTREAM_PROD"}}, allow_dev_references: true}}
"""
    return write_config(tmp_path, rest)


def test_keys_lifecycle(config: Path, tmp_path: Path) -> None:
    create = ("keys", "create", "--config", str(config), "--env", "dev", "--owner", "a@x.io")
    assert run_cli(*create)[0] == 1  # no key secret yet
    code, out, _ = run_cli("init", "--config", str(config))
    assert code == 0 and "created" in out
    assert (tmp_path / "secret" / "key").stat().st_mode & 0o777 == 0o600
    assert "nothing to do" in run_cli("init", "--config", str(config))[1]
    assert not (tmp_path / "secret" / "admin").exists()  # no admin key in this config

    code, out, err = run_cli(
        "keys", "create", "--config", str(config), "--env", "prod", "--owner", "ana@x.io",
        "--name", "billing", "--expires", "30d",
    )  # fmt: skip
    assert code == 0, err
    key = out.strip()
    key_id = parse_key_id(key)
    assert key_id is not None and "shown only this once" in err

    code, out, _ = run_cli("keys", "list", "--config", str(config), "--json")
    (listed,) = [orjson.loads(line) for line in out.splitlines()]
    assert listed["key_id"] == key_id and listed["state"] == "active"
    assert listed["environment"] == "prod" and listed["owner"] == "ana@x.io"
    assert listed["expires_at"] - listed["created_at"] == pytest.approx(30 * 86400)
    assert key not in out and key.split("_", 2)[2] not in out

    stored = SQLiteStore(str(tmp_path / "b.db")).get_key(key_id)
    assert stored is not None and key.split("_", 2)[2] not in stored.key_hash

    assert run_cli("keys", "revoke", "--config", str(config), key)[0] == 0  # the key works too
    assert "revoked" in run_cli("keys", "list", "--config", str(config))[1]
    code, _, err = run_cli("keys", "revoke", "--config", str(config), key_id)
    assert code == 1 and "no active key" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "staging", "--owner", "a@x.io"], "'staging' is not in the config"),
        (["--env", "dev", "--owner", "nobody"], "email"),
        (["--env", "dev", "--owner", "a@x.io", "--expires", "soon"], "not a duration"),
        (["--env", "dev", "--owner", "a@x.io", "--routes", "chat"], "unknown route 'chat'"),
    ],
)
def test_keys_create_refuses_bad_input(config: Path, args: list[str], message: str) -> None:
    run_cli("init", "--config", str(config))
    code, _, err = run_cli("keys", "create", "--config", str(config), *args)
    assert code == 2 and message in err


def test_serve_refuses_an_invalid_config_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("environments:\n  dev:\n    upstream:\n      api_key: sk-ant-api03-literal\n")
    code, _, err = run_cli("serve", "--config", str(bad))
    assert code == 1
    assert "environments.dev.upstream.api_key" in err and "secret reference" in err


def test_serve_without_a_config_file_says_so(tmp_path: Path) -> None:
    code, _, err = run_cli("serve", "--config", str(tmp_path / "missing.yaml"))
    assert code == 1 and "cannot read config" in err


def test_mock_refuses_an_unknown_scenario() -> None:
    code, _, err = run_cli("mock", "--scenario", "sometimes")
    assert code == 2 and "overloaded" in err


def test_init_creates_the_admin_key_file_too(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f"""keys: {{hash_secret: "file:{tmp_path}/s/key"}}
admin: {{key: "file:{tmp_path}/s/admin"}}
environments:
  dev: {{upstream: {{api_key: "env:UPSTREAM"}}}}
""",
    )
    code, out, _ = run_cli("init", "--config", str(config))
    assert code == 0 and out.count("created") == 2
    admin = tmp_path / "s" / "admin"
    assert admin.stat().st_mode & 0o777 == 0o600
    first = admin.read_text()
    assert len(first.strip()) >= 40 and first != (tmp_path / "s" / "key").read_text()
    assert run_cli("init", "--config", str(config))[1].count("nothing to do") == 2
    assert admin.read_text() == first  # never replaced


def test_keys_create_binds_a_key_to_routes(config: Path, tmp_path: Path) -> None:
    text = config.read_text() + "routes: {chat: {}, code: {}}\n"
    config.write_text(text)
    run_cli("init", "--config", str(config))
    code, out, err = run_cli(
        "keys", "create", "--config", str(config), "--env", "dev", "--owner", "a@x.io",
        "--routes", "code, chat",
    )  # fmt: skip
    assert code == 0, err
    key_id = parse_key_id(out.strip())
    assert key_id is not None
    code, out, _ = run_cli("keys", "list", "--config", str(config), "--json")
    (listed,) = [orjson.loads(line) for line in out.splitlines()]
    assert listed["routes"] == ["code", "chat"]
    stored = SQLiteStore(str(tmp_path / "b.db")).get_key(key_id)
    assert stored is not None and stored.allowed_routes == ("code", "chat")
