"""Git history as added lines (a pure parser over `git log -p -U0`), and merging with the tree."""

from __future__ import annotations

from bastion.audit.history import AddedLine, added_lines
from bastion.audit.scan import merge_history, scan_file, scan_history
from bastion.pricing.catalog import load_catalog
from tests.integration.audit_apps import fake_key

KEY = fake_key("api03", 31)
OTHER = fake_key("admin01", 32)
NEW, OLD = "b" * 40, "a" * 40
PATCH = f"""\x1ecommit {NEW} 2026-02-01T09:30:00+00:00

diff --git a/app/settings.py b/app/settings.py
index 1111111..2222222 100644
--- a/app/settings.py
+++ b/app/settings.py
@@ -2 +2,2 @@ DEBUG = False
-ANTHROPIC_KEY = "{KEY}"
+KEY = os.environ["ANTHROPIC_API_KEY"]
++++ not a header: an added line that starts with "++ "
diff --git a/logo.png b/logo.png
Binary files /dev/null and b/logo.png differ
\x1ecommit {OLD} 2026-01-05T10:00:00+00:00

diff --git a/app/settings.py b/app/settings.py
new file mode 100644
--- /dev/null
+++ b/app/settings.py
@@ -0,0 +1,2 @@
+DEBUG = False
+ANTHROPIC_KEY = "{KEY}"
diff --git a/old.py b/old.py
deleted file mode 100644
--- a/old.py
+++ /dev/null
@@ -1 +0,0 @@
-gone = 1
diff --git a/.env b/.env
--- /dev/null
+++ b/.env
@@ -0,0 +1 @@
+ANTHROPIC_API_KEY={OTHER}
""".split("\n")  # not splitlines(): it also splits at \x1e


def test_added_lines_carry_commit_date_path_and_line() -> None:
    lines = list(added_lines(PATCH))
    assert [(a.commit[:1], a.path, a.line) for a in lines] == [
        ("b", "app/settings.py", 2), ("b", "app/settings.py", 3),
        ("a", "app/settings.py", 1), ("a", "app/settings.py", 2), ("a", ".env", 1),
    ]  # fmt: skip
    assert lines[1].text == '+++ not a header: an added line that starts with "++ "'
    assert lines[3] == AddedLine(OLD, "2026-01-05T10:00:00+00:00", "app/settings.py", 2,
                                 f'ANTHROPIC_KEY = "{KEY}"')  # fmt: skip


def test_prefix_limits_paths_to_the_scanned_folder() -> None:
    assert [a.path for a in added_lines(PATCH, prefix="app/")] == ["settings.py"] * 4


def test_history_findings_come_from_the_oldest_commit() -> None:
    found = scan_history(added_lines(PATCH))
    by_rule = {(f.rule, f.path): f for f in found}
    assert set(by_rule) == {
        ("anthropic-key-history", "app/settings.py"), ("anthropic-key-history", ".env"),
        ("env-file-committed", ".env"),
    }  # fmt: skip
    key = by_rule["anthropic-key-history", "app/settings.py"]
    assert (key.commit, key.author_date, key.line, key.column) == (
        OLD,
        "2026-01-05T10:00:00+00:00",
        2,
        18,
    )
    assert KEY not in key.snippet and KEY not in key.message


def test_history_adds_only_what_the_tree_does_not_show() -> None:
    history = scan_history(added_lines(PATCH))
    catalog = load_catalog()
    # The .env is still tracked with the same key: the tree findings cover it.
    tree = scan_file(".env", f"ANTHROPIC_API_KEY={OTHER}\n", catalog, tracked=True)
    kept = merge_history(tree, history)
    assert [(f.rule, f.path) for f in kept] == [("anthropic-key-history", "app/settings.py")]
    # The same key moved to another file in the tree: still reported once, from the tree.
    moved = scan_file("config.py", f'K = "{KEY}"\n', catalog)
    assert [f.rule for f in merge_history(moved, history) if f.path == "app/settings.py"] == []
