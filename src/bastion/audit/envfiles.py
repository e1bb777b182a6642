"""`.env` files: which names count, and which assignments hold a real Anthropic credential.

An assignment counts when the name is ANTHROPIC_…KEY or ANTHROPIC_…TOKEN and the value is not
empty, not a reference (${VAR}, $VAR) and not an obvious placeholder ("your-key-here", "<key>",
"xxx…"), so a committed .env.example with empty values is fine. A value that is a key by
the key rules always counts, whatever letters its random part happens to contain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from bastion.audit.secrets import find_keys

_ASSIGNMENT = re.compile(
    r"^[ \t]*(?:export[ \t]+)?(ANTHROPIC_[A-Z0-9_]*(?:KEY|TOKEN))[ \t]*[=:][ \t]*(.*?)[ \t]*$",
    re.MULTILINE,
)
_PLACEHOLDER = re.compile(
    r"^(<.*>|\$\{.*\}|\$\w+|\{\{.*\}\})$"
    r"|your|example|changeme|change-me|replace|placeholder|dummy|redacted|xxx|\.\.\.|…",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class EnvAssignment:
    name: str
    value: str
    offset: int


def is_env_file(path: str) -> bool:
    """True for .env, .env.local, .env.production, prod.env and the like."""
    name = PurePosixPath(path).name
    return name == ".env" or name.startswith(".env.") or name.endswith(".env")


def _unquote(value: str) -> str:
    value = re.sub(r"[ \t]+#.*$", "", value) if value[:1] not in "'\"" else value
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def is_placeholder(value: str) -> bool:
    """True for an empty value, a variable reference or a stand-in for documentation."""
    return not value or _PLACEHOLDER.search(value) is not None


def credential_assignments(text: str) -> list[EnvAssignment]:
    """The assignments in a .env text that hold a real-looking Anthropic credential."""
    found = []
    for match in _ASSIGNMENT.finditer(text):
        value = _unquote(match.group(2))
        if find_keys(value) or not is_placeholder(value):
            found.append(EnvAssignment(match.group(1), value, match.start(1)))
    return found
