"""The git commands the audit runs, through subprocess; nothing here decides what a finding is.

Every command runs with `git -C ROOT`, no pager, no colour, no external diff or textconv, no
fsmonitor, and the user's and system's git config ignored, so the output is the same on every
machine. When git is missing or ROOT is not inside a work tree, `GitRepo.open` returns None and
the audit scans files only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_PAGER": "cat",
    "LC_ALL": "C",
}
_FLAGS = ("-c", "core.quotePath=false", "-c", "safe.directory=*", "-c", "core.fsmonitor=false")
"""safe.directory=* reads a tree owned by anyone, so nothing in its .git/config may run a command:
no fsmonitor hook here, no textconv or external diff in `history_patch`."""


def _command(git: str, root: Path, *args: str) -> list[str]:
    """Every git command line the audit runs: `git -C ROOT`, the safety flags, then `args`."""
    return [git, "-C", str(root), *_FLAGS, *args]


class GitRepo:
    """A work tree seen from ROOT (which may be a subfolder): tracked files and history."""

    __slots__ = ("_git", "prefix", "root")

    def __init__(self, git: str, root: Path, prefix: str) -> None:
        self._git, self.root, self.prefix = git, root, prefix

    @classmethod
    def open(cls, root: Path) -> GitRepo | None:
        git = shutil.which("git")
        if git is None:
            return None
        probe = subprocess.run(
            _command(git, root, "rev-parse", "--is-inside-work-tree", "--show-prefix"),
            capture_output=True,
            text=True,
            env={**os.environ, **_ENV},
            check=False,
        )
        lines = probe.stdout.splitlines()
        if probe.returncode != 0 or not lines or lines[0] != "true":
            return None
        return cls(git, root, lines[1] if len(lines) > 1 else "")

    def _run(self, *args: str) -> str:
        done = subprocess.run(
            _command(self._git, self.root, *args),
            capture_output=True,
            env={**os.environ, **_ENV},
            check=False,
        )
        return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else ""

    def listed_files(self) -> list[str]:
        """Tracked files plus untracked ones git does not ignore, relative to ROOT."""
        out = self._run("ls-files", "-z", "--cached", "--others", "--exclude-standard")
        return sorted({name for name in out.split("\0") if name})

    def tracked_files(self) -> frozenset[str]:
        """Files in the index (committed or staged), relative to ROOT."""
        return frozenset(name for name in self._run("ls-files", "-z").split("\0") if name)

    def history_patch(self) -> Iterator[str]:
        """Every commit on every ref, newest first, as a zero-context patch, line by line.

        Each commit starts with a line `\\x1ecommit <sha> <author date, ISO 8601>`. Paths in the
        patch are relative to the repository root; merges show no diff (their parents do).
        """
        process = subprocess.Popen(
            _command(
                self._git,
                self.root,
                "log",
                "--all",
                "-p",
                "-U0",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                "--no-renames",
                "--format=%x1ecommit %H %aI",
                "--",
                ".",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **_ENV},
        )
        assert process.stdout is not None
        try:
            for raw in process.stdout:
                yield raw.decode("utf-8", "replace").rstrip("\n")
        finally:
            process.stdout.close()
            process.wait()
