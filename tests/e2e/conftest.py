from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Gateway, Process, start_gateway, start_mock


@pytest.fixture(scope="session")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    process = start_mock(tmp_path_factory.mktemp("mock"))
    yield process
    process.stop()


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Process]:
    """A mock of the test's own, for tests that change its scenario or count its calls."""
    process = start_mock(tmp_path)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def gateway(mock: Process, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway for the session, with a 1 MiB body cap so the 413 test stays small."""
    gw = start_gateway(tmp_path_factory.mktemp("gateway"), mock.url, max_body_bytes=1024 * 1024)
    yield gw
    gw.process.stop()


@pytest.fixture(scope="session")
def key(gateway: Gateway) -> str:
    return gateway.create_key("dev", "alice@example.com", "--name", "e2e")


@pytest.fixture
def fresh_dir(tmp_path: Path) -> Path:
    return tmp_path
