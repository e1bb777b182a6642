"""Headers by allow-list, both ways, with sizes and characters checked."""

from __future__ import annotations

import pytest

from bastion.errors import HeadersTooLarge, InvalidRequest
from bastion.policies.forward_headers import (
    check_header_block,
    forwarded_headers,
    returned_headers,
    with_key,
)


def test_only_the_allow_list_goes_upstream_and_the_key_is_bastions() -> None:
    sent = [
        (b"host", b"gw"),
        (b"x-api-key", b"bst_client"),
        (b"authorization", b"Bearer bst_client"),
        (b"cookie", b"session=1"),
        (b"anthropic-version", b"2026-10-21"),
        (b"anthropic-beta", b"a-1"),
        (b"anthropic-beta", b"b-2"),
        (b"anthropic-workspace-id", b"wrkspc_other"),
        (b"x-bastion-route", b"chat"),
        (b"x-forwarded-for", b"10.0.0.1"),
        (b"forwarded", b"for=10.0.0.1"),
        (b"content-length", b"10"),
        (b"transfer-encoding", b"chunked"),
        (b"connection", b"keep-alive, x-api-key"),
        (b"accept-encoding", b"gzip"),
        (b"user-agent", b"Anthropic/Python 2.14.0"),
        (b"x-stainless-retry-count", b"0"),
        (b"x-stainless-", b"no name"),
        (b"content-type", b"application/json"),
        (b"x-request-id", b"abc"),
        (b"proxy-authorization", b"Basic x"),
    ]
    out = with_key(forwarded_headers(sent), b"sk-ant-upstream")
    assert out == [
        (b"anthropic-version", b"2026-10-21"),
        (b"anthropic-beta", b"a-1"),
        (b"anthropic-beta", b"b-2"),
        (b"user-agent", b"Anthropic/Python 2.14.0"),
        (b"x-stainless-retry-count", b"0"),
        (b"content-type", b"application/json"),
        (b"x-api-key", b"sk-ant-upstream"),
        (b"accept-encoding", b"identity"),
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"anthropic-version", b"2023-06-01\r\nx-api-key: stolen"),
        (b"anthropic-version", b"2023-06-01\n"),
        (b"anthropic-beta", b"a\x00b"),
        (b"user-agent", "caf\u00e9".encode()),
        (b"user-agent", b"x" * 257),
        (b"anthropic-beta", b"b" * 2049),
        (b"x-stainless-os", b" leading"),
        (b"accept", b""),
    ],
)
def test_a_bad_forwarded_value_is_refused(name: bytes, value: bytes) -> None:
    with pytest.raises(InvalidRequest, match=name.decode()):
        forwarded_headers([(name, value)])


def test_long_beta_lists_pass() -> None:
    beta = b",".join(b"flag-%d-2026-01-01" % i for i in range(40))
    assert forwarded_headers([(b"anthropic-beta", beta)]) == [(b"anthropic-beta", beta)]


def test_too_many_forwarded_headers_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="more than 48"):
        forwarded_headers([(b"x-stainless-h%d" % i, b"1") for i in range(49)])


def test_only_documented_headers_come_back() -> None:
    upstream = [
        (b"Request-Id", b"req_1"),
        (b"anthropic-ratelimit-requests-remaining", b"9"),
        (b"retry-after", b"2"),
        (b"retry-after-ms", b"2000"),
        (b"x-should-retry", b"false"),
        (b"anthropic-organization-id", b"org"),
        (b"set-cookie", b"a=b"),
        (b"Content-Length", b"5"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Connection", b"keep-alive"),
        (b"x-internal-debug", b"secret"),
        (b"content-type", b"application/json"),
    ]
    assert returned_headers(upstream) == [
        (b"Request-Id", b"req_1"),
        (b"anthropic-ratelimit-requests-remaining", b"9"),
        (b"retry-after", b"2"),
        (b"retry-after-ms", b"2000"),
        (b"x-should-retry", b"false"),
        (b"content-type", b"application/json"),
    ]


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ([(b"a", b"x" * 1000)], False),
        ([(b"a", b"x" * 2000)], True),
        ([(b"h%d" % i, b"") for i in range(10)], False),
        ([(b"h%d" % i, b"") for i in range(11)], True),
    ],
)
def test_the_header_block_limits(headers: list[tuple[bytes, bytes]], refused: bool) -> None:
    if refused:
        with pytest.raises(HeadersTooLarge):
            check_header_block(headers, 2000, 10)
    else:
        check_header_block(headers, 2000, 10)
