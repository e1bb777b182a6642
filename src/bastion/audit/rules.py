"""The rule catalog: every rule id the audit reports, its severity and why it matters.

Severity is one of SARIF's levels (error, warning, note). `security_severity` is the 0–10 score
GitHub code scanning reads from SARIF: 9.0 and above shows as "critical", which Bastion keeps for a
key that has already left the building (shipped in a browser bundle or source map, or in git
history, where deleting the file does not help: the key must be rotated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bastion.audit.findings import Severity

CRITICAL_SCORE = 9.0


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    security_severity: float
    title: str
    help: str

    @property
    def critical(self) -> bool:
        return self.security_severity >= CRITICAL_SCORE


_ROTATE = "Rotate the key in the Claude Console now, then keep keys out of code: use a secret store"
_ROTATE += " or an environment variable, and give applications a Bastion key (bst_…) instead."

RULES: Mapping[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule("anthropic-key", "error", 8.5, "Anthropic key in the source tree", _ROTATE),
        Rule(
            "anthropic-key-shipped",
            "error",
            9.5,
            "Anthropic key in a browser bundle or source map",
            "Anything under dist/, build/, .next/ or in a .map file is served to browsers. "
            + _ROTATE,
        ),
        Rule(
            "anthropic-key-history",
            "error",
            9.0,
            "Anthropic key in git history",
            "The key is gone from the tree but every clone still has it. "
            + _ROTATE
            + " Rewriting history is optional once the key is revoked.",
        ),
        Rule(
            "env-file-committed",
            "error",
            8.0,
            "Committed .env file holding an Anthropic key",
            "Remove the file from git (git rm --cached), add it to .gitignore, rotate the key. "
            "Commit a .env.example with an empty value instead.",
        ),
        Rule(
            "browser-client",
            "error",
            8.0,
            "Claude client enabled in the browser",
            "dangerouslyAllowBrowser: true puts the API key in every visitor's hands. Call Claude "
            "from a server, or through Bastion with a per-user key.",
        ),
        Rule(
            "model-alias",
            "warning",
            4.0,
            "Model alias instead of a pinned model id",
            "An alias can move to a new snapshot without notice, changing output and cost. Use the "
            "pinned id the catalog names (bastion/pricing/catalog.yaml).",
        ),
        Rule(
            "model-retired",
            "error",
            7.0,
            "Model id past its retirement date",
            "Calls to a retired model fail. Move to its successor (bastion/pricing/catalog.yaml "
            "lists the current models) and run your eval suite on it first.",
        ),
        Rule(
            "model-deprecated",
            "warning",
            4.0,
            "Deprecated model id",
            "The model is deprecated and will be retired (the catalog's retires_at). Plan the "
            "move to its successor before that date.",
        ),
        Rule(
            "model-unknown",
            "note",
            2.0,
            "Model id the catalog does not know",
            "The id is retired, misspelled, or newer than the model catalog. Check it against "
            "GET /v1/models and update the catalog if it is new.",
        ),
        Rule(
            "retries-disabled",
            "warning",
            5.0,
            "SDK retries disabled",
            "max_retries=0 / maxRetries: 0 turns every 429, 529 and dropped connection into a "
            "user-visible failure. Keep the SDK default (2) or let Bastion retry.",
        ),
        Rule(
            "client-no-timeout",
            "warning",
            4.0,
            "Claude client without a timeout",
            "The SDK default read timeout is 10 minutes. Set timeout= (Python) or timeout: "
            "(TypeScript, milliseconds) to what the caller can wait.",
        ),
        Rule(
            "client-default-base-url",
            "note",
            3.0,
            "Client without base_url",
            "Without base_url (or ANTHROPIC_BASE_URL in the environment) the SDK talks to "
            "api.anthropic.com directly. Point it at Bastion.",
        ),
        Rule(
            "max-tokens-missing",
            "error",
            5.0,
            "Messages call without max_tokens",
            "max_tokens is required by the API; the call fails with 400. Set it to what the "
            "feature needs, which also bounds its cost.",
        ),
        Rule(
            "max-tokens-at-ceiling",
            "warning",
            4.0,
            "max_tokens at the model's maximum output",
            "A ceiling-sized max_tokens removes the cost bound on every call and, without "
            "streaming, can trip the SDK's 10-minute guard. Set what the feature needs.",
        ),
        Rule(
            "direct-upstream",
            "warning",
            5.0,
            "Direct call to api.anthropic.com",
            "Calls that skip the gateway skip its keys, budgets, retries and logs. Use the "
            "Bastion URL as base_url.",
        ),
        Rule(
            "allowlist-unused",
            "note",
            0.0,
            "Allow-list entry that matched nothing",
            "The finding it accepted is gone: delete the entry so it cannot hide a new one.",
        ),
    )
}
