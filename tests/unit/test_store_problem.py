"""Why a store file cannot be written, said at start in one line (or nothing when it can)."""

from __future__ import annotations

from pathlib import Path

from bastion.stores.sqlite import store_problem


def test_a_writable_place_has_no_problem(tmp_path: Path) -> None:
    assert store_problem(str(tmp_path / "bastion.db")) is None
    (tmp_path / "existing.db").write_bytes(b"")
    assert store_problem(str(tmp_path / "existing.db")) is None


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert store_problem(str(missing / "bastion.db")) == f"the folder {missing} does not exist"
