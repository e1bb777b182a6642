"""Which .env files count and which assignments hold a credential rather than a placeholder."""

from __future__ import annotations

import pytest

from bastion.audit.envfiles import credential_assignments, is_env_file
from tests.integration.audit_apps import fake_key

KEY = fake_key("api03", 7)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".env", True), ("config/.env", True), (".env.local", True), (".env.production", True),
        ("prod.env", True), ("environment.py", False), (".envrc", False), ("env", False),
    ],
)  # fmt: skip
def test_env_file_names(path: str, expected: bool) -> None:
    assert is_env_file(path) is expected


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (f"ANTHROPIC_API_KEY={KEY}", [("ANTHROPIC_API_KEY", KEY)]),
        (f'export ANTHROPIC_API_KEY="{KEY}"', [("ANTHROPIC_API_KEY", KEY)]),
        (f"ANTHROPIC_ADMIN_KEY = '{KEY}'  ", [("ANTHROPIC_ADMIN_KEY", KEY)]),
        ("ANTHROPIC_AUTH_TOKEN=tok_live_93bd1", [("ANTHROPIC_AUTH_TOKEN", "tok_live_93bd1")]),
        ("ANTHROPIC_API_KEY=abc123 # old one", [("ANTHROPIC_API_KEY", "abc123")]),
        ("ANTHROPIC_API_KEY=", []),
        ('ANTHROPIC_API_KEY=""', []),
        ("ANTHROPIC_API_KEY=${ANTHROPIC_API_KEY}", []),
        ("ANTHROPIC_API_KEY=$SECRET", []),
        ("ANTHROPIC_API_KEY=<your key>", []),
        ("ANTHROPIC_API_KEY=your-key-here", []),
        ("ANTHROPIC_API_KEY=sk-ant-xxxxxxxx", []),
        ("ANTHROPIC_API_KEY=sk-ant-...", []),
        ("# ANTHROPIC_API_KEY is set by the platform", []),
        ("ANTHROPIC_BASE_URL=https://gw.example", []),
        ("OPENAI_API_KEY=sk-123456", []),
    ],
)
def test_credential_assignments(text: str, found: list[tuple[str, str]]) -> None:
    assert [(item.name, item.value) for item in credential_assignments(text)] == found


def test_assignment_offset_points_at_the_name() -> None:
    text = f"LOG=1\n  export ANTHROPIC_API_KEY={KEY}\n"
    (item,) = credential_assignments(text)
    assert text[item.offset :].startswith("ANTHROPIC_API_KEY=")
