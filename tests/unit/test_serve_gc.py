"""`bastion serve` freezes its start-up heap and collects the young generation less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from bastion.cli.serve import GC_YOUNG_THRESHOLD, freeze_startup_objects


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_start_up_objects_are_frozen_and_young_collections_rarer(restore_gc: None) -> None:
    survivor = {"built": ["at start-up"]}
    assert any(o is survivor for o in gc.get_objects())
    freeze_startup_objects()
    assert gc.get_freeze_count() > 0
    assert not any(o is survivor for o in gc.get_objects())  # no collection walks it again
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
    assert GC_YOUNG_THRESHOLD > 700
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1  # what requests allocate later is still collected
