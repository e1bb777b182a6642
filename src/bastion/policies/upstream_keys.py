"""Per-environment upstream keys: each environment's stage, where its key may come from, and the
rule that two environments never share one key by accident. Pure functions over plain values.

A stage is `dev`, `staging` or `prod`. It is given in the config or read from the environment's
name; a name that says nothing (`eu`, `main`) is `prod`, the strictest, so a missing word never
loosens a rule.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Literal

Stage = Literal["dev", "staging", "prod"]
STAGES: tuple[Stage, ...] = ("dev", "staging", "prod")

DEV_WORDS = frozenset({"dev", "development", "local", "test", "testing", "sandbox", "ci"})
STAGING_WORDS = frozenset({"staging", "stage", "stg", "qa", "uat", "preprod"})
DEV_SCHEMES = ("env", "file")
"""References that read the gateway host's own environment or disk: fine on a laptop, not where
production keys live (no rotation, no access log, copied with every image or shell)."""

_WORD = re.compile(r"[-_]")


def default_stage(name: str) -> Stage:
    """The stage an environment's name implies: its first word (`dev-eu` → dev), else prod."""
    word = _WORD.split(name, maxsplit=1)[0]
    if word in DEV_WORDS:
        return "dev"
    if word in STAGING_WORDS:
        return "staging"
    return "prod"


def reference_refusal(stage: Stage, ref: str, allow_dev_references: bool) -> str | None:
    """Why `ref` may not hold a `stage` environment's key, or None when it may."""
    scheme = ref.partition(":")[0]
    if stage == "dev" or scheme not in DEV_SCHEMES or allow_dev_references:
        return None
    return (
        f"{scheme}: references are for dev environments; this one is {stage}. Use aws-sm:, "
        "vault: or gcp-sm:, or set allow_dev_references: true on the environment"
    )


def key_fingerprint(value: str) -> str:
    """A digest to compare keys by; the key itself is never compared in the open or printed."""
    return hashlib.sha256(value.encode()).hexdigest()


def shared_key_pairs(
    fingerprints: Mapping[str, str | None], allowed: Iterable[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Pairs of environments (sorted names) holding the same key that the config did not allow.

    `fingerprints` maps an environment to its key's fingerprint (None when not resolved); an
    allowed pair is order-free (`shared_key_with` written on either side).
    """
    permitted = {frozenset(pair) for pair in allowed}
    names = sorted(name for name, fp in fingerprints.items() if fp is not None)
    return [
        (a, b)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        if fingerprints[a] == fingerprints[b] and frozenset((a, b)) not in permitted
    ]


def shared_key_message(pairs: list[tuple[str, str]]) -> str:
    """The start-up refusal, naming the environments and never the key."""
    listed = "; ".join(f"environments.{a} and environments.{b}" for a, b in pairs)
    return (
        f"{listed}: resolve to the same upstream key. Give each environment its own key, or "
        "write shared_key_with: <the other environment> if sharing is intended"
    )
