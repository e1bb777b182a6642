"""Which files are read: dependency folders skipped, bundles always read, size and binary caps."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.audit.discovery import discover, is_bundle, is_skipped, read_text
from bastion.audit.scan import AuditOptions, run_audit
from bastion.audit.text_report import render_text
from bastion.pricing.catalog import load_catalog
from tests.integration.audit_apps import fake_key


@pytest.mark.parametrize(
    ("path", "bundle", "skipped"),
    [
        ("src/app.ts", False, False),
        ("dist/app.js", True, False),
        ("web/build/static/main.js", True, False),
        (".next/static/chunks/page.js", True, False),
        ("public/app.js.map", True, False),
        ("node_modules/x/index.js", False, True),
        ("api/.venv/lib/site.py", False, True),
        ("dist", False, False),
    ],
)
def test_classification(path: str, bundle: bool, skipped: bool) -> None:
    assert (is_bundle(path), is_skipped(path)) == (bundle, skipped)


def test_discover_without_git_walks_everything_but_dependencies(tmp_path: Path) -> None:
    for name in ("a.py", "dist/b.js", "node_modules/c/d.js", ".venv/e.py", "sub/.git/f"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "link.py").symlink_to(tmp_path / "a.py")
    assert discover(tmp_path, None) == ["a.py", "dist/b.js"]


def test_read_text_caps_and_binary(tmp_path: Path) -> None:
    (tmp_path / "big.js").write_text("x" * 101)
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    (tmp_path / "ok.py").write_bytes("é = 1\n".encode())
    assert read_text(tmp_path / "big.js", max_bytes=100).skipped == "too large"
    assert read_text(tmp_path / "logo.png").skipped == "binary"
    assert read_text(tmp_path / "ok.py").text == "é = 1\n"
    assert read_text(tmp_path / "missing.py").skipped is not None


def test_bundles_have_a_larger_size_cap(tmp_path: Path) -> None:
    key = fake_key("api03", 51)
    padding = "x" * 400 + "\n"
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "app.js").write_text(padding + f'k="{key}"\n')
    (tmp_path / "app.py").write_text(padding + f'k="{key}"\n')
    options = AuditOptions(history=False, max_file_bytes=100, max_bundle_bytes=1000)
    result = run_audit(tmp_path, load_catalog(), options)
    assert [(f.rule, f.path, f.line) for f in result.findings] == [
        ("anthropic-key-shipped", "dist/app.js", 2)
    ]
    assert result.files_skipped == {"app.py": "too large"}
    assert "not read: app.py (too large)" in render_text(result)
