"""Which files of a working tree the audit reads, and how it reads them.

Dependencies and tool caches (node_modules, .venv, …) are skipped: they are not the
application's code. In a git work tree, files git ignores are skipped too, so a local `.env`
that is rightly ignored is not a finding. Built bundles are the exception: dist/, build/, .next/
(and the other folders in BUNDLE_DIRS) and every `*.map` are read even when ignored, because
that is what ships to browsers. Files over the size cap (larger for bundles and maps, which are
big and matter most) and binary files are skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bastion.audit.git import GitRepo

SKIP_DIRS = frozenset(
    {
        ".git",
        "node_modules",
        "bower_components",
        ".venv",
        "venv",
        "site-packages",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".cache",
        ".terraform",
    }
)
BUNDLE_DIRS = frozenset({"dist", "build", ".next", "out", ".output", ".nuxt", ".svelte-kit"})
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_BUNDLE_BYTES = 50 * 1024 * 1024
_SNIFF_BYTES = 8192


def is_skipped(path: str) -> bool:
    """True for a path inside a dependency or cache folder."""
    return any(part in SKIP_DIRS for part in PurePosixPath(path).parts[:-1])


def is_bundle(path: str) -> bool:
    """True for a file that ships to browsers: inside a bundle folder, or a source map."""
    parts = PurePosixPath(path).parts
    return path.endswith(".map") or any(part in BUNDLE_DIRS for part in parts[:-1])


def _walk(root: Path) -> list[str]:
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(name for name in dirs if name not in SKIP_DIRS)
        base = Path(folder).relative_to(root)
        found.extend((base / name).as_posix() for name in files)
    return found


def discover(root: Path, repo: GitRepo | None) -> list[str]:
    """Relative posix paths of the files to read, sorted."""
    walked = _walk(root)
    if repo is None:
        paths = set(walked)
    else:
        listed = {path for path in repo.listed_files() if not is_skipped(path)}
        paths = listed | {path for path in walked if is_bundle(path)}
    return sorted(path for path in paths if _regular_file(root / path))


def _regular_file(path: Path) -> bool:
    """Not a symlink (it may point outside the tree), a submodule folder or a deleted file."""
    return not path.is_symlink() and path.is_file()


@dataclass(frozen=True, slots=True)
class FileText:
    """A file's text, or why it was not read (too large, binary, unreadable)."""

    text: str | None
    skipped: str | None = None


def read_text(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> FileText:
    try:
        if path.stat().st_size > max_bytes:
            return FileText(None, "too large")
        data = path.read_bytes()
    except OSError as exc:
        return FileText(None, f"unreadable ({exc.strerror})")
    if b"\0" in data[:_SNIFF_BYTES]:
        return FileText(None, "binary")
    return FileText(data.decode("utf-8", "replace"))
