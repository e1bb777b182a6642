"""One alert to one channel: resolve the channel's secrets, render, POST, report what happened.

Nothing here raises for a delivery problem: a missing secret, a timeout, a refused connection or
an error status all come back as a `SendResult`, whose `error` is safe to log. Webhook URLs,
routing keys and signing secrets never appear in it: connection errors are reported by class name
only, and response bodies are cut short and scrubbed of every secret value used for the request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from bastion.alerts.channels import Channel, PagerDutyChannel, SlackChannel
from bastion.alerts.model import Alert
from bastion.alerts.render import (
    OutgoingRequest,
    render_pagerduty,
    render_slack,
    render_webhook,
)
from bastion.policies.retry import parse_retry_after
from bastion.secrets import SecretError, resolve_secret

MAX_ERROR_BODY = 200
"""Characters of an error response kept in `last_error` (Slack's codes, PagerDuty's errors)."""


@dataclass(frozen=True, slots=True)
class SendResult:
    status: int | None
    """The HTTP status, or None when no response arrived (or the request could not be built)."""
    error: str | None = None
    """None on success; otherwise a short reason without secrets."""
    retry_after_s: float | None = None
    """What the channel's Retry-After header asked for, if it sent one."""

    @property
    def ok(self) -> bool:
        return self.error is None


def prepare(
    channel: Channel, alert: Alert, environ: Mapping[str, str], now: float
) -> tuple[OutgoingRequest, list[str]]:
    """The request for `channel`, and the secret values it contains (to scrub from errors).

    Raises SecretError when a reference cannot be resolved, ValueError for a malformed whsec_.
    """
    if isinstance(channel, SlackChannel):
        url = resolve_secret(channel.webhook_url, environ)
        return render_slack(alert, url), [url.reveal()]
    if isinstance(channel, PagerDutyChannel):
        key = resolve_secret(channel.routing_key, environ)
        return render_pagerduty(alert, key, channel.url), [key.reveal()]
    secret = resolve_secret(channel.secret, environ)
    request = render_webhook(alert, channel.url, secret, timestamp=int(now))
    return request, [secret.reveal(), channel.url]


async def send(
    session: aiohttp.ClientSession,
    channel: Channel,
    alert: Alert,
    *,
    environ: Mapping[str, str],
    now: float,
    timeout_s: float,
) -> SendResult:
    """POST `alert` to `channel` once; 2xx is success, anything else is described, not raised."""
    try:
        request, secrets = prepare(channel, alert, environ, now)
    except (SecretError, ValueError) as exc:  # both messages name references, never values
        return SendResult(None, f"config: {exc}")
    return await post(session, request, secrets, now=now, timeout_s=timeout_s)


async def post(
    session: aiohttp.ClientSession,
    request: OutgoingRequest,
    secrets: Sequence[str],
    *,
    now: float,
    timeout_s: float,
) -> SendResult:
    """Send one prepared request. Redirects are not followed: a moved webhook is misconfigured."""
    try:
        async with session.post(
            request.url,
            data=request.body,
            headers=request.headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as response:
            if 200 <= response.status < 300:
                return SendResult(response.status)
            text = (await response.content.read(MAX_ERROR_BODY)).decode(errors="replace")
            retry_after = parse_retry_after(response.headers, now)
    except TimeoutError:
        return SendResult(None, f"timeout after {timeout_s:g}s")
    except aiohttp.ClientError as exc:  # the message may quote the URL: keep the class only
        return SendResult(None, type(exc).__name__)
    reason = scrub(" ".join(text.split()), secrets)
    return SendResult(response.status, f"HTTP {response.status}: {reason}".strip(), retry_after)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """`text` with every occurrence of every secret value replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
