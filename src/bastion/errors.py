"""One small error hierarchy; each error maps to one Anthropic-shaped body and status.

SDKs raise their usual exceptions for these (AuthenticationError, BadRequestError, …), and the
`x-bastion-reason` header names the Bastion policy that refused.
"""

from __future__ import annotations

import orjson


class BastionError(Exception):
    """A refusal Bastion itself raises, rendered in Anthropic's error envelope."""

    status: int = 500
    error_type: str = "api_error"
    reason: str = "internal"
    should_retry: bool | None = None

    def __init__(
        self, message: str, *, reason: str | None = None, should_retry: bool | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        if should_retry is not None:
            self.should_retry = should_retry

    def body(self, request_id: str) -> bytes:
        return error_body(self.error_type, self.message, request_id)


def error_body(error_type: str, message: str, request_id: str) -> bytes:
    """Anthropic's error envelope: {"type":"error","error":{...},"request_id":...}."""
    return orjson.dumps(
        {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": request_id,
        }
    )


class InvalidRequest(BastionError):
    status = 400
    error_type = "invalid_request_error"
    reason = "validation"
    should_retry = False


class AuthenticationFailed(BastionError):
    status = 401
    error_type = "authentication_error"
    reason = "auth"
    should_retry = False


class PermissionDenied(BastionError):
    status = 403
    error_type = "permission_error"
    reason = "permission"
    should_retry = False


class NotFound(BastionError):
    status = 404
    error_type = "not_found_error"
    reason = "not_found"
    should_retry = False


class MethodNotAllowed(BastionError):
    status = 405
    error_type = "invalid_request_error"
    reason = "method"
    should_retry = False


class RequestTooLarge(BastionError):
    status = 413
    error_type = "request_too_large"
    reason = "size_limit"
    should_retry = False


class HeadersTooLarge(BastionError):
    """The request's header block is over `server.max_header_bytes` or `server.max_headers`."""

    status = 431
    error_type = "request_too_large"
    reason = "header_limit"
    should_retry = False


class Throttled(BastionError):
    """Too many failed admin credentials from one address, or from everywhere at once."""

    status = 429
    error_type = "rate_limit_error"
    reason = "login_throttle"
    should_retry = False


class UpstreamUnavailable(BastionError):
    """The upstream could not be reached or broke the protocol."""

    status = 502
    error_type = "api_error"
    reason = "upstream"


class UpstreamTimeout(BastionError):
    status = 504
    error_type = "timeout_error"
    reason = "timeout"


class OutputRejected(BastionError):
    """A billed answer that is not what the request needed (its schema, a forced tool): not
    returned, and not to be retried blindly by the client."""

    status = 502
    error_type = "api_error"
    reason = "schema_error"
    should_retry = False


class NotReady(BastionError):
    status = 503
    error_type = "api_error"
    reason = "not_ready"


class BreakerOpen(BastionError):
    """Every target of the route is cut off by its circuit breaker and there is no static answer."""

    status = 503
    error_type = "overloaded_error"
    reason = "breaker"
    should_retry = False
