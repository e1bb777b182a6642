"""A fixed, log-spaced latency histogram: ten buckets per decade from 1 ms to ~10.5 minutes.

Bucket 0 holds latencies under 1 ms; bucket k (1..58) holds [10^((k-1)/10), 10^(k/10)) ms; the
last bucket holds everything from 10^5.8 ms (631 s) up. Counts add, so hourly rows sum into a day
or a month exactly, and a percentile read back from the sum lies within ±12.2% of the true
(nearest-rank) value for latencies between 1 ms and 631 s: the bucket's geometric middle is
reported, and a bucket spans a factor of 10^0.1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

PER_DECADE = 10
BUCKETS = 60
"""1 (under 1 ms) + 58 bounded buckets + 1 open-ended bucket."""
TOP_EDGE_MS = 10 ** ((BUCKETS - 2) / PER_DECADE)
RELATIVE_ERROR = 10 ** (0.5 / PER_DECADE) - 1
"""The most a reported percentile can be off, as a fraction of the true one (1 ms to 631 s)."""


def bucket_of(latency_ms: float) -> int:
    """The bucket a latency falls in."""
    if not latency_ms >= 1.0:  # also NaN
        return 0
    k = math.floor(math.log10(latency_ms) * PER_DECADE) + 1
    return min(k, BUCKETS - 1)


def lower_edge(bucket: int) -> float:
    return 0.0 if bucket == 0 else 10 ** ((bucket - 1) / PER_DECADE)


def representative(bucket: int) -> float:
    """The value reported for a bucket: its geometric middle (0.5 ms and 631 s at the ends)."""
    if bucket == 0:
        return 0.5
    if bucket >= BUCKETS - 1:
        return TOP_EDGE_MS
    return 10 ** ((bucket - 0.5) / PER_DECADE)


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) by nearest rank, in ms; None when the histogram is empty."""
    total = sum(counts)
    if total == 0:
        return None
    rank = max(1, math.ceil(round(q * total, 9)))  # 0.95 * 100 is 95.00000000000001
    seen = 0
    for bucket, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return representative(bucket)
    raise AssertionError("unreachable: the ranks add up to the total")
