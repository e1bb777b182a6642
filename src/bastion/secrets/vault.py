"""HashiCorp Vault (or OpenBao) KV v2 through hvac: one field of the latest version of a secret.

The environment mapping gives VAULT_ADDR, optional VAULT_NAMESPACE and VAULT_CACERT, and either
AppRole credentials (VAULT_ROLE_ID + VAULT_SECRET_ID, preferred when both are set) or VAULT_TOKEN.
An AppRole token that expired is replaced by logging in again, once per fetch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bastion.secrets.references import VaultRef
from bastion.secrets.value import SecretError, SecretValue, extract_secret

if TYPE_CHECKING:
    import hvac


class VaultSecret:
    """One KV v2 secret; the hvac client (and its AppRole token) is kept between fetches."""

    def __init__(self, ref: VaultRef, environ: Mapping[str, str]) -> None:
        self.ref = ref.ref
        self._parsed = ref
        self._environ = dict(environ)
        self._client: hvac.Client | None = None

    @property
    def uses_approle(self) -> bool:
        return bool(self._environ.get("VAULT_ROLE_ID") and self._environ.get("VAULT_SECRET_ID"))

    def fetch(self) -> SecretValue:
        """Blocking: call it from a thread when on the event loop."""
        try:
            import hvac.exceptions as vault_errors
            import requests
        except ImportError:
            raise SecretError(
                f"{self.ref}: hvac is not installed (pip install 'bastion[vault]')"
            ) from None
        try:
            data = self._read(vault_errors)
        except vault_errors.InvalidPath:
            raise SecretError(f"{self.ref}: not found (no such mount, path or version)") from None
        except (vault_errors.Forbidden, vault_errors.Unauthorized):
            raise SecretError(f"{self.ref}: access denied (token lacks read on the path)") from None
        except (vault_errors.VaultDown, vault_errors.InternalServerError):
            raise SecretError(f"{self.ref}: Vault is sealed or failing") from None
        except vault_errors.VaultError as exc:
            raise SecretError(f"{self.ref}: Vault error ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise SecretError(f"{self.ref}: Vault unreachable ({type(exc).__name__})") from None
        return extract_secret(self.ref, json.dumps(data), self._parsed.field)

    def _read(self, vault_errors: Any) -> Any:
        if self._client is None:
            self._client = self._connect()
        try:
            return self._read_with(self._client)
        except vault_errors.Forbidden:
            if not self.uses_approle:
                raise
        self._client = self._connect()
        return self._read_with(self._client)

    def _read_with(self, client: hvac.Client) -> Any:
        reply = client.secrets.kv.v2.read_secret_version(
            path=self._parsed.path, mount_point=self._parsed.mount, raise_on_deleted_version=True
        )
        return reply["data"]["data"]

    def _connect(self) -> hvac.Client:
        import hvac
        import hvac.exceptions as vault_errors

        env = self._environ
        if not env.get("VAULT_ADDR"):
            raise SecretError(f"{self.ref}: VAULT_ADDR is not set")
        if not (self.uses_approle or env.get("VAULT_TOKEN")):
            raise SecretError(
                f"{self.ref}: no Vault credentials (set VAULT_TOKEN, or VAULT_ROLE_ID and "
                "VAULT_SECRET_ID)"
            )
        client = hvac.Client(
            url=env["VAULT_ADDR"],
            token=None if self.uses_approle else env["VAULT_TOKEN"],
            namespace=env.get("VAULT_NAMESPACE") or None,
            verify=env.get("VAULT_CACERT") or True,
            timeout=10,
        )
        if self.uses_approle:
            try:
                client.auth.approle.login(
                    role_id=env["VAULT_ROLE_ID"], secret_id=env["VAULT_SECRET_ID"]
                )
            except (vault_errors.InvalidRequest, vault_errors.Forbidden):
                raise SecretError(f"{self.ref}: access denied (AppRole login refused)") from None
        return client
