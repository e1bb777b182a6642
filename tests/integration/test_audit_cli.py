"""`bastion audit` end to end on fixture apps built with real files and real git commits."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from bastion.cli.main import cli
from tests.integration import audit_apps as fx
from tests.integration.audit_apps import Repo, fake_key

BASTION = Path(sys.executable).parent / "bastion"


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, str]]]:
    base = tmp_path_factory.mktemp("apps")
    py_repo, py_commits = fx.python_app(base / "py")
    ts_repo, ts_commits = fx.typescript_app(base / "ts")
    clean = fx.clean_app(base / "clean")
    return {"py": (py_repo.root, py_commits), "ts": (ts_repo.root, ts_commits),
            "clean": (clean.root, {})}  # fmt: skip


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["audit", *args])
    return result.exit_code, result.stdout, result.stderr


def findings(path: Path, *args: str) -> list[dict[str, object]]:
    code, out, err = run(str(path), "--format", "json", *args)
    assert code in (0, 1), err
    found: list[dict[str, object]] = orjson.loads(out)["findings"]
    return found


def places(found: list[dict[str, object]]) -> list[tuple[object, object, object]]:
    return [(item["rule"], item["path"], item["line"]) for item in found]


PY_EXPECTED = [
    ("env-file-committed", ".env", 1),
    ("anthropic-key", ".env", 1),
    ("client-default-base-url", "app/client.py", 6),
    ("client-no-timeout", "app/client.py", 6),
    ("retries-disabled", "app/client.py", 6),
    ("direct-upstream", "app/client.py", 7),
    ("max-tokens-missing", "app/client.py", 11),
    ("model-alias", "app/client.py", 12),
    ("max-tokens-at-ceiling", "app/client.py", 19),
    ("anthropic-key-history", "app/settings.py", 2),
    ("anthropic-key-shipped", "dist/bundle.js", 1),
    ("anthropic-key-shipped", "dist/bundle.js.map", 1),
]
TS_EXPECTED = [
    ("anthropic-key-shipped", "dist/assets/index-4f2a.js", 1),
    ("anthropic-key-shipped", "dist/assets/index-4f2a.js.map", 1),
    ("max-tokens-missing", "src/chat.ts", 4),
    ("model-alias", "src/chat.ts", 5),
    ("max-tokens-at-ceiling", "src/chat.ts", 12),
    ("direct-upstream", "src/chat.ts", 15),
    ("client-default-base-url", "src/client.ts", 4),
    ("client-no-timeout", "src/client.ts", 4),
    ("browser-client", "src/client.ts", 6),
    ("retries-disabled", "src/client.ts", 7),
    ("anthropic-key-history", "src/config.ts", 1),
]


def test_python_app_findings_exactly(apps: dict[str, tuple[Path, dict[str, str]]]) -> None:
    root, commits = apps["py"]
    found = findings(root)
    assert sorted(places(found)) == sorted(PY_EXPECTED)
    (history,) = [item for item in found if item["rule"] == "anthropic-key-history"]
    assert history["commit"] == commits["first"]
    assert history["author_date"] == "2026-01-05T10:00:00+00:00"
    assert history["severity"] == "error" and history["critical"] is True
    (in_map,) = [item for item in found if item["path"] == "dist/bundle.js.map"]
    assert in_map["origin"] == "webpack://app/src/config.js line 2"
    env = [item for item in found if item["path"] == ".env"]
    assert {item["column"] for item in env} == {1, 19}


def test_typescript_app_findings_exactly(apps: dict[str, tuple[Path, dict[str, str]]]) -> None:
    root, commits = apps["ts"]
    found = findings(root)
    assert sorted(places(found)) == sorted(TS_EXPECTED)
    (history,) = [item for item in found if item["rule"] == "anthropic-key-history"]
    assert history["commit"] == commits["first"]
    assert history["author_date"] == "2026-03-10T08:00:00+00:00"
    assert "src/config.ts" not in {p.relative_to(root).as_posix() for p in root.rglob("*.ts")}
    (in_map,) = [item for item in found if item["path"].endswith(".map")]  # type: ignore[union-attr]
    assert in_map["origin"] == "../src/secret.ts line 1"


def test_clean_app_has_no_findings(apps: dict[str, tuple[Path, dict[str, str]]]) -> None:
    root, _ = apps["clean"]
    code, out, err = run(str(root), "--fail-on", "note")
    assert (code, err) == (0, "")
    assert out.startswith("0 errors, 0 warnings, 0 notes; 6 files scanned")
    assert "history: 2 commits scanned" in out


def test_no_history_and_not_a_git_repository(
    apps: dict[str, tuple[Path, dict[str, str]]], tmp_path: Path
) -> None:
    root, _ = apps["py"]
    without = places(findings(root, "--no-history"))
    assert sorted(without) == sorted(p for p in PY_EXPECTED if p[0] != "anthropic-key-history")
    plain = Repo(tmp_path / "plain")
    plain.write("main.py", f'KEY = "{fx.PY_HISTORY_KEY}"\n')
    plain.write(".env", f"ANTHROPIC_API_KEY={fx.PY_ENV_KEY}\n")
    code, out, _ = run(str(plain.root), "--format", "json")
    document = orjson.loads(out)
    assert code == 1 and document["summary"]["history"] == "not a git repository"
    # Outside git nothing is "committed": keys are reported, the .env rule is not.
    assert places(document["findings"]) == [("anthropic-key", ".env", 1),
                                            ("anthropic-key", "main.py", 1)]  # fmt: skip


def test_a_subfolder_of_a_repository_reports_paths_from_that_folder(
    apps: dict[str, tuple[Path, dict[str, str]]],
) -> None:
    root, _ = apps["py"]
    assert places(findings(root / "app")) == [
        ("client-default-base-url", "client.py", 6), ("client-no-timeout", "client.py", 6),
        ("retries-disabled", "client.py", 6), ("direct-upstream", "client.py", 7),
        ("max-tokens-missing", "client.py", 11), ("model-alias", "client.py", 12),
        ("max-tokens-at-ceiling", "client.py", 19), ("anthropic-key-history", "settings.py", 2),
    ]  # fmt: skip


def _leaks(text: str, keys: tuple[str, ...]) -> list[str]:
    """Keys whose random part shows up in `text`, even partly (any 12-character run)."""
    leaked = []
    for key in keys:
        tail = key.split("-", 3)[3]
        if any(tail[i : i + 12] in text for i in range(len(tail) - 11)):
            leaked.append(key[:16])
    return leaked


@pytest.mark.parametrize("output_format", ["text", "json", "sarif"])
def test_no_format_ever_prints_a_key(
    apps: dict[str, tuple[Path, dict[str, str]]], output_format: str, tmp_path: Path
) -> None:
    for name, keys in (("py", fx.PY_KEYS), ("ts", fx.TS_KEYS)):
        root, _ = apps[name]
        code, out, err = run(str(root), "--format", output_format)
        assert code == 1
        assert _leaks(out + err, keys) == []
        assert re.search(r"sk-ant-\w+-[\w-]{5}", out) is None
        report = tmp_path / f"{name}.{output_format}"
        code, out, err = run(str(root), "--format", output_format, "--output", str(report))
        assert code == 1 and out == "" and "errors" in err
        assert _leaks(report.read_text(), keys) == []


def test_exit_codes_through_the_installed_command(
    apps: dict[str, tuple[Path, dict[str, str]]], tmp_path: Path
) -> None:
    def status(*args: str) -> tuple[int, str]:
        done = subprocess.run([str(BASTION), "audit", *args], capture_output=True, text=True,
                              check=False)  # fmt: skip
        return done.returncode, done.stderr

    assert status(str(apps["clean"][0]))[0] == 0
    assert status(str(apps["py"][0]))[0] == 1
    only_warnings = Repo(tmp_path / "warn")
    only_warnings.write("a.py", 'import anthropic\nc = anthropic.Anthropic(base_url="http://gw", '
                                'timeout=5, max_retries=0)\n')  # fmt: skip
    assert status(str(only_warnings.root))[0] == 0
    assert status(str(only_warnings.root), "--fail-on", "warning")[0] == 1
    assert status(str(only_warnings.root), "--fail-on", "error")[0] == 0
    code, err = status(str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err
    code, err = status(str(only_warnings.root / "a.py"))
    assert code == 2 and "is a file" in err
    code, err = status(str(only_warnings.root), "--format", "xml")
    assert code == 2 and "xml" in err
    code, err = status(str(only_warnings.root), "--output", str(tmp_path / "no" / "dir.sarif"))
    assert code == 2 and "--output" in err


def test_allow_list_accepts_findings_and_reports_unused_entries(
    apps: dict[str, tuple[Path, dict[str, str]]], tmp_path: Path
) -> None:
    root, _ = apps["py"]
    found = findings(root)
    shipped = next(item for item in found if item["path"] == "dist/bundle.js")
    allow = tmp_path / "allow.yaml"
    allow.write_text(
        "allow:\n"
        f"  - fingerprint: {shipped['fingerprint']}\n"
        "    reason: demo bundle, key revoked on 2026-02-02\n"
        "  - rule: client-default-base-url\n"
        "    path: app/*\n"
        "    reason: ANTHROPIC_BASE_URL is set by the deployment\n"
        "  - rule: model-unknown\n"
        "    reason: nothing matches this one\n"
    )
    code, out, _ = run(str(root), "--format", "json", "--allow", str(allow))
    document = orjson.loads(out)
    kept = places(document["findings"])
    assert ("anthropic-key-shipped", "dist/bundle.js", 1) not in kept
    assert ("client-default-base-url", "app/client.py", 6) not in kept
    assert (str(allow), 7) in [(item["path"], item["line"]) for item in document["findings"]
                                if item["rule"] == "allowlist-unused"]  # fmt: skip
    assert len(kept) == len(PY_EXPECTED) - 2 + 1
    assert document["summary"]["allow_listed"] == 2 and code == 1


def test_allow_list_at_the_root_is_read_and_everything_can_be_accepted(tmp_path: Path) -> None:
    app = Repo(tmp_path / "app")
    key = fake_key("api03", 99)
    app.write("notebook.py", f'KEY = "{key}"\n')
    code, out, _ = run(str(app.root), "--format", "json")
    (finding,) = orjson.loads(out)["findings"]
    app.write(".bastion-audit.yaml", f"allow:\n  - fingerprint: {finding['fingerprint']}\n"
                                     "    reason: revoked sandbox key\n")  # fmt: skip
    code, out, _ = run(str(app.root))
    assert code == 0 and out.startswith("0 errors") and "1 allow-listed" in out
    assert key not in out and key not in (app.root / ".bastion-audit.yaml").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("allow:\n  - rule: model-alias\n", "every entry needs a reason"),
        ("allow:\n  - rule: no-such-rule\n    reason: x\n", "unknown rule 'no-such-rule'"),
        ("allow: [1, 2\n", "not valid YAML"),
    ],
)
def test_bad_allow_list_is_a_usage_error(tmp_path: Path, content: str, message: str) -> None:
    app = Repo(tmp_path / "app")
    app.write("main.py", "print('hi')\n")
    app.write(".bastion-audit.yaml", content)
    code, _, err = run(str(app.root))
    assert code == 2 and message in err and ".bastion-audit.yaml" in err
    code, _, err = run(str(app.root), "--allow", str(tmp_path / "nope.yaml"))
    assert code == 2 and "no such file" in err


def test_sarif_points_at_the_files_and_the_commit(
    apps: dict[str, tuple[Path, dict[str, str]]],
) -> None:
    root, commits = apps["ts"]
    code, out, _ = run(str(root), "--format", "sarif")
    assert code == 1
    log = orjson.loads(out)
    (run_,) = log["runs"]
    results = run_["results"]
    assert len(results) == len(TS_EXPECTED)
    for result in results:
        location = result["locations"][0]["physicalLocation"]
        assert (root / location["artifactLocation"]["uri"]).exists() or result["ruleId"] == (
            "anthropic-key-history"
        )
        assert run_["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    (history,) = [r for r in results if r["ruleId"] == "anthropic-key-history"]
    assert history["properties"]["commit"] == commits["first"]
    assert [key for key in fx.TS_KEYS if key in out] == []


def test_the_scanned_repository_config_runs_no_command(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "app")
    repo.init()
    repo.write(".gitattributes", "*.txt diff=shell\n")
    repo.write("notes.txt", "hello\n")
    repo.commit("notes", "2026-01-05T10:00:00+00:00")
    ran = tmp_path / "ran"
    repo.git("config", "core.fsmonitor", f"touch {ran}-fsmonitor; true")
    repo.git("config", "diff.shell.textconv", f"touch {ran}-textconv; cat")
    code, _, err = run(str(repo.root))
    assert code in (0, 1), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app"]
