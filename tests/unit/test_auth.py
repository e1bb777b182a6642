from __future__ import annotations

from pathlib import Path

import pytest

from bastion.errors import AuthenticationFailed
from bastion.policies.auth import Authenticator
from bastion.policies.keys import generate_key, hash_key
from bastion.stores.base import KeyRow
from bastion.stores.sqlite import SQLiteStore

SECRET = b"test-server-secret"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(str(tmp_path / "keys.db"))


def add(store: SQLiteStore, expires_at: float | None = None) -> tuple[str, str]:
    key_id, key = generate_key()
    row = KeyRow(key_id, hash_key(key, SECRET), "dev", "a@example.com", "svc", 1.0, expires_at)
    store.add_key(row)
    return key_id, key


async def test_valid_key_gives_its_principal(store: SQLiteStore) -> None:
    key_id, key = add(store)
    principal = await Authenticator(store, SECRET, FakeClock()).authenticate(key)
    assert (principal.key_id, principal.environment, principal.owner) == (
        key_id,
        "dev",
        "a@example.com",
    )


@pytest.mark.parametrize(
    ("presented", "message"),
    [
        (None, "missing API key"),
        ("", "missing API key"),
        ("sk-ant-api03-xyz", "not a Bastion key"),
        ("bst_aaaaaaaaaa_" + "b" * 43, "invalid API key"),
    ],
)
async def test_bad_keys_are_refused(
    store: SQLiteStore, presented: str | None, message: str
) -> None:
    add(store)
    with pytest.raises(AuthenticationFailed, match=message):
        await Authenticator(store, SECRET, FakeClock()).authenticate(presented)


async def test_right_id_wrong_secret_is_refused(store: SQLiteStore) -> None:
    _, key = add(store)
    forged = key[:15] + ("x" if key[15] != "x" else "y") + key[16:]
    with pytest.raises(AuthenticationFailed, match="invalid API key"):
        await Authenticator(store, SECRET, FakeClock()).authenticate(forged)


async def test_expired_key_is_refused(store: SQLiteStore) -> None:
    clock = FakeClock()
    _, key = add(store, expires_at=clock.now + 60)
    auth = Authenticator(store, SECRET, clock)
    await auth.authenticate(key)
    clock.now += 60
    with pytest.raises(AuthenticationFailed, match="expired"):
        await auth.authenticate(key)


async def test_revocation_from_another_connection_lands_on_refresh(tmp_path: Path) -> None:
    path = str(tmp_path / "keys.db")
    gateway_store, cli_store = SQLiteStore(path), SQLiteStore(path)
    key_id, key = add(cli_store)
    auth = Authenticator(gateway_store, SECRET, FakeClock())
    auth.refresh()
    await auth.authenticate(key)  # now cached
    assert cli_store.revoke_key(key_id, 5.0)
    await auth.authenticate(key)  # still the cached row until the poll sees the change
    assert auth.refresh() is True
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await auth.authenticate(key)
    assert auth.refresh() is False


async def test_unknown_key_becomes_valid_once_created(tmp_path: Path) -> None:
    path = str(tmp_path / "keys.db")
    gateway_store, cli_store = SQLiteStore(path), SQLiteStore(path)
    key_id, key = generate_key()
    auth = Authenticator(gateway_store, SECRET, FakeClock())
    auth.refresh()
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(key)  # remembered as missing
    cli_store.add_key(KeyRow(key_id, hash_key(key, SECRET), "dev", "b@example.com", "", 1.0))
    auth.refresh()
    assert (await auth.authenticate(key)).owner == "b@example.com"


async def test_cache_is_bounded(store: SQLiteStore) -> None:
    auth = Authenticator(store, SECRET, FakeClock(), cache_size=3)
    for _ in range(10):
        with pytest.raises(AuthenticationFailed):
            await auth.authenticate(generate_key()[1])
    assert len(auth._cache) <= 3


def test_revoke_twice_reports_false(store: SQLiteStore) -> None:
    key_id, _ = add(store)
    assert store.revoke_key(key_id, 1.0)
    assert not store.revoke_key(key_id, 2.0)
    assert not store.revoke_key("nosuchkey0", 2.0)
