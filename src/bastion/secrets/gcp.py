"""GCP Secret Manager through the official client over its REST transport.

The payload's CRC32C is checked when the service sends one, so a corrupted key is refused rather
than sent upstream. GCP_SECRET_MANAGER_ENDPOINT overrides the endpoint (a URL or host); a loopback
endpoint is called without credentials, any other with Application Default Credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bastion.secrets.references import GcpRef
from bastion.secrets.sdk_logs import GCP_PAYLOAD_LOGGER, drop_payload_logs
from bastion.secrets.value import SecretError, SecretValue, extract_secret

if TYPE_CHECKING:
    from google.cloud.secretmanager_v1 import SecretManagerServiceClient, SecretPayload

ENDPOINT_VARIABLE = "GCP_SECRET_MANAGER_ENDPOINT"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for index in range(256):
        crc = index
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum Secret Manager sends as data_crc32c."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def is_loopback(endpoint: str) -> bool:
    host = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}").hostname
    return host in _LOOPBACK


class GcpSecret:
    """One Secret Manager secret version; the client is built on first fetch and then kept."""

    def __init__(self, ref: GcpRef, environ: Mapping[str, str]) -> None:
        self.ref = ref.ref
        self._parsed = ref
        self._endpoint = environ.get(ENDPOINT_VARIABLE) or None
        self._client: SecretManagerServiceClient | None = None

    def fetch(self) -> SecretValue:
        """Blocking: call it from a thread when on the event loop."""
        try:
            import google.auth.exceptions as auth_errors
            import requests
            from google.api_core import exceptions as api_errors
        except ImportError:
            raise SecretError(
                f"{self.ref}: google-cloud-secret-manager is not installed "
                "(pip install 'bastion[gcp]')"
            ) from None
        try:
            self._client = self._client or self._connect()
            reply = self._client.access_secret_version(
                name=self._parsed.name, retry=None, timeout=10.0
            )
        except api_errors.NotFound:
            raise SecretError(f"{self.ref}: not found (no such secret or version)") from None
        except (api_errors.PermissionDenied, api_errors.Unauthenticated, api_errors.Forbidden):
            raise SecretError(f"{self.ref}: access denied") from None
        except api_errors.FailedPrecondition:
            raise SecretError(f"{self.ref}: the version is disabled or destroyed") from None
        except api_errors.GoogleAPICallError as exc:
            raise SecretError(f"{self.ref}: Secret Manager error (HTTP {exc.code})") from None
        except auth_errors.DefaultCredentialsError:
            raise SecretError(f"{self.ref}: no Google credentials found") from None
        except auth_errors.RefreshError:
            raise SecretError(f"{self.ref}: access denied (no Google access token)") from None
        except (auth_errors.GoogleAuthError, requests.RequestException) as exc:
            raise SecretError(
                f"{self.ref}: Secret Manager unreachable ({type(exc).__name__})"
            ) from None
        return extract_secret(self.ref, self._payload_text(reply.payload), self._parsed.field)

    def _payload_text(self, payload: SecretPayload) -> str:
        data = bytes(payload.data)
        if "data_crc32c" in payload and crc32c(data) != payload.data_crc32c:
            raise SecretError(f"{self.ref}: the payload failed its CRC32C check (corrupted)")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretError(f"{self.ref}: the payload is not UTF-8 text") from None

    def _connect(self) -> SecretManagerServiceClient:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials, Credentials
        from google.cloud.secretmanager_v1 import SecretManagerServiceClient

        drop_payload_logs(GCP_PAYLOAD_LOGGER)
        credentials: Credentials | None = None
        options = None
        if self._endpoint:
            options = ClientOptions(api_endpoint=self._endpoint)
            if is_loopback(self._endpoint):
                credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        return SecretManagerServiceClient(
            credentials=credentials, transport="rest", client_options=options
        )
