"""AWS Secrets Manager through boto3: the AWSCURRENT version of a secret, or a JSON field of it.

Region, endpoint and credentials come from the environment mapping the config layer passed in
(AWS_REGION, AWS_ENDPOINT_URL_SECRETS_MANAGER or AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, …); without
keys there, boto3's own credential chain applies (profile, instance role).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bastion.secrets.references import AwsRef
from bastion.secrets.sdk_logs import AWS_PAYLOAD_LOGGER, drop_payload_logs
from bastion.secrets.value import SecretError, SecretValue, extract_secret

if TYPE_CHECKING:
    from types_boto3_secretsmanager import SecretsManagerClient

VERSION_STAGE = "AWSCURRENT"
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL")
_DENIED = {
    "AccessDeniedException": "access denied",
    "UnrecognizedClientException": "access denied (unknown access key)",
    "InvalidSignatureException": "access denied (bad signature)",
    "ExpiredTokenException": "access denied (expired token)",
    "DecryptionFailure": "access denied (cannot decrypt with its KMS key)",
}


class AwsSecret:
    """One Secrets Manager secret; the boto3 client is built on first fetch and then kept."""

    def __init__(self, ref: AwsRef, environ: Mapping[str, str]) -> None:
        self.ref = ref.ref
        self._parsed = ref
        self._environ = dict(environ)
        self._client: SecretsManagerClient | None = None

    def fetch(self) -> SecretValue:
        """Blocking: call it from a thread when on the event loop."""
        try:
            import botocore.exceptions as aws_errors
        except ImportError:
            raise SecretError(
                f"{self.ref}: boto3 is not installed (pip install 'bastion[aws]')"
            ) from None
        try:
            self._client = self._client or self._connect()
            reply = self._client.get_secret_value(
                SecretId=self._parsed.secret_id, VersionStage=VERSION_STAGE
            )
        except aws_errors.ClientError as exc:
            raise SecretError(f"{self.ref}: {client_error_cause(exc.response)}") from None
        except (aws_errors.EndpointConnectionError, aws_errors.ConnectTimeoutError) as exc:
            raise SecretError(f"{self.ref}: Secrets Manager unreachable ({exc})") from None
        except aws_errors.ReadTimeoutError:
            raise SecretError(f"{self.ref}: Secrets Manager did not answer in time") from None
        except aws_errors.NoCredentialsError:
            raise SecretError(f"{self.ref}: no AWS credentials found") from None
        except aws_errors.NoRegionError:
            raise SecretError(f"{self.ref}: no AWS region (set AWS_REGION)") from None
        except aws_errors.BotoCoreError as exc:
            raise SecretError(f"{self.ref}: AWS client error ({type(exc).__name__})") from None
        return extract_secret(self.ref, _secret_text(self.ref, reply), self._parsed.field)

    def _connect(self) -> SecretsManagerClient:
        import boto3
        from botocore.config import Config

        drop_payload_logs(AWS_PAYLOAD_LOGGER)
        env = self._environ
        session = boto3.session.Session(
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
            profile_name=env.get("AWS_PROFILE") or None,
        )
        return session.client(
            "secretsmanager",
            region_name=self._parsed.region or aws_region(env),
            endpoint_url=aws_endpoint(env),
            config=Config(
                connect_timeout=5, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"}
            ),
        )


def aws_region(environ: Mapping[str, str]) -> str | None:
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None


def aws_endpoint(environ: Mapping[str, str]) -> str | None:
    """The service-specific endpoint override wins over the general one, as in the AWS SDKs."""
    return next((environ[name] for name in ENDPOINT_VARIABLES if environ.get(name)), None)


def client_error_cause(response: Mapping[str, Any]) -> str:
    """A short cause for an AWS error response: its code, in words where it is a common one."""
    code = str(response.get("Error", {}).get("Code", "Unknown"))
    if code == "ResourceNotFoundException":
        return "not found (no such secret, or no AWSCURRENT version)"
    return _DENIED.get(code, f"Secrets Manager error {code}")


def _secret_text(ref: str, reply: Mapping[str, Any]) -> str:
    if isinstance(reply.get("SecretString"), str):
        return str(reply["SecretString"])
    try:
        return bytes(reply["SecretBinary"]).decode("utf-8")
    except (KeyError, TypeError, UnicodeDecodeError):
        raise SecretError(f"{ref}: the secret holds no string (binary that is not UTF-8)") from None
