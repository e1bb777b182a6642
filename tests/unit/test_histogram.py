"""The latency histogram: bucket edges, nearest-rank percentiles, and the documented error bound."""

from __future__ import annotations

import math
import random

import pytest

from bastion.stores.histogram import (
    BUCKETS,
    RELATIVE_ERROR,
    bucket_of,
    lower_edge,
    percentile,
    representative,
)


@pytest.mark.parametrize(
    ("latency_ms", "bucket"),
    [
        (0.0, 0),
        (0.99, 0),
        (float("nan"), 0),
        (1.0, 1),
        (1.25, 1),  # below 10**0.1 = 1.2589
        (1.26, 2),
        (9.99, 10),
        (10.0, 11),
        (80.0, 20),  # [79.43, 100)
        (100.0, 21),
        (190.0, 23),  # [158.5, 199.5)
        (2560.0, 35),  # [2511.9, 3162.3)
        (600_000.0, 58),  # ten minutes: the last bounded bucket
        (631_000.0, 59),
        (3_600_000.0, 59),
    ],
)
def test_bucket_of(latency_ms: float, bucket: int) -> None:
    assert bucket_of(latency_ms) == bucket


@pytest.mark.parametrize(
    ("counts", "q", "expected"),
    [
        ({}, 0.5, None),
        ({20: 1}, 0.5, 89.1),  # one request: every percentile is its bucket's middle
        ({20: 1}, 0.99, 89.1),
        ({0: 1}, 0.5, 0.5),
        ({59: 1}, 0.5, 630957.3),  # the open top bucket reports its lower edge, 10**5.8 ms
        ({20: 5, 35: 5}, 0.5, 89.1),  # rank 5 of 10: the last of the low bucket
        ({20: 5, 35: 5}, 0.51, 2818.4),  # rank 6
        ({20: 95, 35: 5}, 0.95, 89.1),  # rank 95 of 100 (0.95 * 100 rounds to 95, not 96)
        ({20: 94, 35: 6}, 0.95, 2818.4),
        ({21: 99, 40: 1}, 0.99, 112.2),
        ({21: 99, 40: 1}, 1.0, 8912.5),
    ],
)
def test_percentile(counts: dict[int, int], q: float, expected: float | None) -> None:
    histogram = [counts.get(k, 0) for k in range(BUCKETS)]
    found = percentile(histogram, q)
    assert (None if found is None else round(found, 1)) == expected


def test_representative_lies_inside_its_bucket() -> None:
    for k in range(1, BUCKETS - 1):
        assert lower_edge(k) <= representative(k) < lower_edge(k + 1)
        assert bucket_of(representative(k)) == k


def test_error_bound_holds_on_random_latencies() -> None:
    rng = random.Random(7)
    for _ in range(200):
        latencies = [math.exp(rng.uniform(0, 13)) for _ in range(rng.randint(1, 300))]
        histogram = [0] * BUCKETS
        for value in latencies:
            histogram[bucket_of(value)] += 1
        ordered = sorted(latencies)
        for q in (0.5, 0.95, 0.99):
            true = ordered[max(1, math.ceil(round(q * len(ordered), 9))) - 1]
            found = percentile(histogram, q)
            assert found is not None
            assert abs(found - true) / true <= RELATIVE_ERROR + 1e-12
    assert round(RELATIVE_ERROR, 3) == 0.122
