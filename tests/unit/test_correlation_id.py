"""Correlation ids: the client's when sane, else fresh ones that sort by time."""

from __future__ import annotations

import re
import time

import pytest

from bastion.asgi import correlation_id


@pytest.mark.parametrize(
    ("inbound", "kept"),
    [(b"req-123_a.b:c", True), (None, False), (b"bad id", False), (b"x" * 129, False)],
)
def test_the_clients_id_is_kept_only_when_sane(inbound: bytes | None, kept: bool) -> None:
    rid = correlation_id(inbound)
    if kept:
        assert inbound is not None and rid == inbound.decode()
    else:
        assert re.fullmatch(r"bst-[0-9a-f]{24}", rid)


def test_fresh_ids_sort_by_time_and_differ() -> None:
    """The request log's request_id index then grows at its end instead of at random pages."""
    first = [correlation_id(None) for _ in range(100)]
    time.sleep(0.002)
    later = correlation_id(None)
    assert len(set(first)) == 100
    assert max(first) < later
