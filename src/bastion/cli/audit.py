"""`bastion audit PATH`: leaked keys and unsafe Claude API usage in an application, for CI.

Exit codes: 0 when no finding is at or above --fail-on, 1 when one is, 2 for a usage error (a
path that is not a folder, a bad allow-list file, an --output file that cannot be written).
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from bastion.audit.allowlist import (
    DEFAULT_NAME,
    AllowListError,
    apply_allowlist,
    load_allowlist,
    unused_finding,
)
from bastion.audit.findings import SEVERITIES, Severity, at_or_above, sort_key
from bastion.audit.json_report import render_json
from bastion.audit.sarif import render_sarif
from bastion.audit.scan import AuditOptions, AuditResult, run_audit
from bastion.audit.text_report import render_text, summary
from bastion.pricing.catalog import load_catalog

RENDERERS = {"text": render_text, "json": render_json, "sarif": render_sarif}


@click.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(sorted(RENDERERS)),
    default="text",
    show_default=True,
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to this file instead of standard output.",
)
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES),
    default="error",
    show_default=True,
    help="Exit 1 when a finding is at or above this severity.",
)
@click.option(
    "--allow",
    "allow_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Allow-list file (default: {DEFAULT_NAME} in PATH, if present).",
)
@click.option("--no-history", is_flag=True, help="Do not read git history.")
def audit(
    path: Path,
    output_format: str,
    output: Path | None,
    fail_on: str,
    allow_path: Path | None,
    no_history: bool,
) -> None:
    """Scan PATH (tree, git history, bundles) for leaked keys and unsafe Claude API usage."""
    result = run_audit(path, load_catalog(), AuditOptions(history=not no_history))
    _apply_allowlist(result, allow_path)
    report = RENDERERS[output_format](result)
    if output is None:
        click.echo(report, nl=False)
    else:
        try:
            output.write_text(report, "utf-8")
        except OSError as exc:
            raise click.BadParameter(f"{output}: {exc.strerror}", param_hint="--output") from None
        click.echo(summary(result), err=True)
    threshold = cast(Severity, fail_on)
    if any(at_or_above(finding.severity, threshold) for finding in result.findings):
        raise SystemExit(1)


def _apply_allowlist(result: AuditResult, allow_path: Path | None) -> None:
    """Drop accepted findings, add a note per unused entry; exit 2 on a bad allow-list file."""
    if allow_path is None and not (result.root / DEFAULT_NAME).is_file():
        return
    chosen = allow_path if allow_path is not None else result.root / DEFAULT_NAME
    if not chosen.is_file():
        raise click.BadParameter(f"{chosen}: no such file", param_hint="--allow")
    try:
        entries = load_allowlist(chosen)
    except AllowListError as exc:
        raise click.UsageError(f"bad allow-list file: {exc}") from None
    allowed = apply_allowlist(result.findings, entries)
    shown = _shown_path(chosen, result.root)
    result.findings = sorted(
        [*allowed.kept, *(unused_finding(e, shown) for e in allowed.unused)], key=sort_key
    )
    result.suppressed = len(allowed.suppressed)


def _shown_path(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
