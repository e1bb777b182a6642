"""`bastion keys rotate`, `revoke --owner` and `list --stale` through click's runner, and the
audit entries they leave under `user@host`."""

from __future__ import annotations

import getpass
import socket
import time
from pathlib import Path

import orjson
import pytest

from bastion.policies.keys import parse_key_id
from bastion.stores.sqlite import SQLiteStore
from tests.integration.conftest import run_cli, write_config


@pytest.fixture
def config(tmp_path: Path) -> str:
    (tmp_path / "secret").write_text("cli-keys-secret")
    rest = f"""keys: {{hash_secret: "file:{tmp_path}/secret", max_age: 90d, max_idle: 30d}}
environments:
  dev: {{upstream: {{api_key: "env:UPSTREAM"}}}}
"""
    return str(write_config(tmp_path, rest))


def create(config: str, owner: str, *extra: str) -> str:
    code, out, err = run_cli("keys", "create", "--config", config, "--env", "dev", "--owner",
                             owner, "--name", "svc", *extra)  # fmt: skip
    assert code == 0, err
    return out.strip()


def listed(config: str, *flags: str) -> list[dict[str, object]]:
    _, out, _ = run_cli("keys", "list", "--config", config, "--json", *flags)
    return [orjson.loads(line) for line in out.splitlines()]


def test_rotate_prints_the_successor_once_and_keeps_the_old_key_for_the_grace(
    config: str, tmp_path: Path
) -> None:
    old = create(config, "ana@x.io", "--team", "fin")
    old_id = parse_key_id(old)
    code, out, err = run_cli("keys", "rotate", "--config", config, old_id or "", "--grace", "2h")
    assert code == 0, err
    new = out.strip()
    new_id = parse_key_id(new)
    assert new_id is not None and f"replaces {old_id}" in err and "only this once" in err
    keys = {k["key_id"]: k for k in listed(config)}
    assert keys[old_id]["state"] == "rotating" and keys[old_id]["rotated_to"] == new_id
    assert keys[old_id]["expires_at"] == pytest.approx(time.time() + 7200, abs=5)
    assert (keys[new_id]["owner"], keys[new_id]["team"], keys[new_id]["name"]) == (
        "ana@x.io", "fin", "svc"
    )  # fmt: skip
    code, _, err = run_cli("keys", "rotate", "--config", config, old)  # the key itself works too
    assert code == 1 and "already rotated" in err
    code, _, err = run_cli("keys", "rotate", "--config", config, new_id, "--grace", "soon")
    assert code == 2 and "--grace" in err


def test_revoke_owner_revokes_every_key_at_once_and_counts(config: str) -> None:
    for _ in range(3):
        create(config, "leaver@x.io")
    stays = create(config, "stays@x.io")
    code, out, _ = run_cli("keys", "revoke", "--config", config, "--owner", "leaver@x.io")
    assert code == 0 and out.startswith("revoked 3 key(s) of leaver@x.io")
    states = {(k["owner"], k["state"]) for k in listed(config)}
    assert states == {("leaver@x.io", "revoked"), ("stays@x.io", "active")}
    _, out, _ = run_cli("keys", "revoke", "--config", config, "--owner", "leaver@x.io")
    assert "revoked 0 key(s)" in out
    code, _, err = run_cli("keys", "revoke", "--config", config)
    assert code == 2 and "either KEY_ID or --owner" in err
    code, _, err = run_cli("keys", "revoke", "--config", config, stays, "--owner", "stays@x.io")
    assert code == 2


def test_list_stale_shows_keys_past_age_or_idle(config: str, tmp_path: Path) -> None:
    fresh = parse_key_id(create(config, "a@x.io"))
    aged = parse_key_id(create(config, "b@x.io"))
    idle = parse_key_id(create(config, "c@x.io"))
    now = time.time()
    store = SQLiteStore(str(tmp_path / "b.db"))
    with store.transaction() as conn:
        conn.execute(
            "UPDATE api_keys SET created_at = ?, last_used_at = ? WHERE key_id = ?",
            (now - 100 * 86400, now, aged),
        )
        conn.execute("UPDATE api_keys SET created_at = ?, last_used_at = ? WHERE key_id = ?",
                     (now - 60 * 86400, now - 45 * 86400, idle))  # fmt: skip
    stale = {k["key_id"]: k["stale"] for k in listed(config, "--stale")}
    assert stale == {aged: "age 100d > 90d", idle: "unused 45d > 30d"}
    _, out, _ = run_cli("keys", "list", "--config", config, "--stale")
    assert aged in out and idle in out and fresh not in out and "never" not in out
    assert "used never" in run_cli("keys", "list", "--config", config)[1]


def test_every_cli_change_is_audited_as_user_at_host(config: str, tmp_path: Path) -> None:
    key = create(config, "ana@x.io")
    run_cli("keys", "rotate", "--config", config, key)
    run_cli("keys", "revoke", "--config", config, "--owner", "ana@x.io")
    run_cli("rollback", "disable", "--config", config, "--by", "oncall@x.io")
    entries = SQLiteStore(str(tmp_path / "b.db")).audit_entries()
    me = f"{getpass.getuser()}@{socket.gethostname()}"
    assert [(e.actor, e.action) for e in entries] == [
        (me, "rollback.disable"), (me, "key.revoke_owner"), (me, "key.rotate"), (me, "key.create")
    ]  # fmt: skip
    assert entries[0].detail["on_behalf_of"] == "oncall@x.io"
    raw = (tmp_path / "b.db").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("b.db-wal")
    )
    assert key.encode() not in raw and key.split("_", 2)[2].encode() not in raw


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--name", "sk-ant-api03-pasted-by-mistake"),
        ("--team", "bst_abcdefghij_rest"),
        ("--owner", "a@x.io " + "ab" * 32),
    ],
)
def test_key_material_in_an_option_is_a_usage_error_and_changes_nothing(
    config: str, option: str, value: str
) -> None:
    args = {"--owner": "a@x.io", "--name": "svc", "--team": ""} | {option: value}
    code, _, err = run_cli(
        "keys", "create", "--config", config, "--env", "dev",
        *(part for pair in args.items() for part in pair),
    )  # fmt: skip
    assert code == 2 and option in err and "must not hold a key" in err
    assert "Traceback" not in err
    assert listed(config) == []


def test_revoke_owner_refuses_key_material(config: str) -> None:
    code, _, err = run_cli("keys", "revoke", "--config", config, "--owner", "sk-ant-api03-x")
    assert code == 2 and "--owner" in err
