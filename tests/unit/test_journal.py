"""The record journal: whole lines, rotation, replay into the store with duplicates skipped."""

from __future__ import annotations

from pathlib import Path

from bastion.stores.journal import Journal, journal_line, journal_parts, read_rows, replay


def test_lines_rotate_and_replay_in_order_skipping_what_the_store_has(tmp_path: Path) -> None:
    path = str(tmp_path / "b.db.journal")
    journal = Journal(path)
    journal.open()
    journal.append(journal_line(["r1", 1]))
    part = journal.rotate()
    assert part is not None
    journal.append(journal_line(["r2", 2]))
    journal.append(journal_line(["r3", 3])[:-4])  # the process died mid-write: a torn line
    journal.close()
    assert [p.name for p in journal_parts(path)] == [Path(part).name, "b.db.journal"]

    stored = {"r1"}  # the store already holds r1 (its part was not deleted before the crash)

    def insert_missing(rows: list[list[object]]) -> int:
        new = [row for row in rows if row[0] not in stored]
        stored.update(str(row[0]) for row in new)
        return len(new)

    assert replay(path, insert_missing) == 1  # r2; r1 was there, r3 never whole
    assert stored == {"r1", "r2"}
    assert journal_parts(path) == []


def test_a_torn_or_foreign_line_is_skipped(tmp_path: Path) -> None:
    part = tmp_path / "j"
    part.write_bytes(b'["a",1]\n{"not":"a row"}\nnot json\n["b",2]\n["c"')
    assert read_rows(part) == [["a", 1], ["b", 2]]


def test_rotate_before_open_does_nothing(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / "j"))
    assert journal.rotate() is None
    journal.close()
