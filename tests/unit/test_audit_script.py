"""The JavaScript/TypeScript checks and the small lexer under them, as tables."""

from __future__ import annotations

import pytest

from bastion.audit.braces import blank_comments, matching_close, object_literal, top_level_parts
from bastion.audit.script_rules import check_script
from bastion.pricing.catalog import load_catalog

CATALOG = load_catalog()
GOOD = "baseURL: process.env.GW, timeout: 20_000"


@pytest.mark.parametrize(
    ("source", "rules"),
    [
        # Clients.
        (f"const c = new Anthropic({{ {GOOD} }});", []),
        ("const c = new Anthropic();", ["client-no-timeout", "client-default-base-url"]),
        ("const c = new Anthropic({ apiKey });", ["client-no-timeout", "client-default-base-url"]),
        ('const c = new Anthropic({ "timeout": 5, baseURL });', []),
        ("const c = new Anthropic({ ...defaults });", []),
        ("const c = new Anthropic(options);", []),
        ("const c = new Anthropic({ fetchOptions: { timeout: 5 }, baseURL });",
         ["client-no-timeout"]),
        ('const c = new AnthropicBedrock({ awsRegion: "us-east-1" });', ["client-no-timeout"]),
        ("throw new Anthropic.APIError(500);", []),
        # Browser, retries.
        (f"new Anthropic({{ {GOOD}, dangerouslyAllowBrowser: true }})", ["browser-client"]),
        (f"new Anthropic({{ {GOOD}, dangerouslyAllowBrowser: false }})", []),
        (f"new Anthropic({{ {GOOD}, maxRetries: 0 }})", ["retries-disabled"]),
        (f"new Anthropic({{ {GOOD}, maxRetries: 0.5 }})", []),
        (f"new Anthropic({{ {GOOD}, maxRetries: 10 }})", []),
        ("client.withOptions({ maxRetries: 0 })", ["retries-disabled"]),
        ("// maxRetries: 0, dangerouslyAllowBrowser: true", []),
        ("/* new Anthropic() */", []),
        # A limit, documented: text inside a string that reads like code still counts.
        ('const doc = "set maxRetries: 0 to disable";', ["retries-disabled"]),
        # Messages calls.
        ('client.messages.create({ model: "claude-sonnet-5-5", messages })',
         ["max-tokens-missing"]),
        ("client.beta.messages.stream({ messages, max_tokens: 1024 })", []),
        ("client.messages.create({ ...base, messages })", []),
        ("client.messages.create(params)", []),
        ("client.messages.create({ messages }, { timeout: 5 })", ["max-tokens-missing"]),
        ("client.messages.create({ max_tokens: 5 }, { timeout: 5 })", []),
        ("client.messages.create({ messages }.valueOf())", []),
        ("client.messages.create({ model, max_tokens: 128000 })", []),
        ("client.messages.create({ model: 'claude-opus-5-5', max_tokens: 128000 })",
         ["max-tokens-at-ceiling"]),
        ("client.messages.create({ model: `claude-opus-5-5`, max_tokens: 200_000 })",
         ["max-tokens-at-ceiling"]),
        ("client.messages.create({ model: 'claude-opus-5-5', max_tokens: limit })", []),
        ("client.messages.create({ model: 'claude-opus-5-5', max_tokens: 4096 })", []),
        ("client.messages.create({\n  messages: [{ content: '}' }],\n  max_tokens: 10,\n})", []),
        ("client.messages.countTokens({ messages })", []),
        # Model ids and the upstream host.
        ('const m = "claude-haiku-4-5";', ["model-alias"]),
        ("const m = 'claude-haiku-4-5-20251001';", []),
        ("const m = `claude-3-opus-20240229`;", ["model-unknown"]),
        ('fetch("https://api.anthropic.com/v1/messages")', ["direct-upstream"]),
        ("// fetch('https://api.anthropic.com/v1/messages')", []),
        ('const help = "we never call api.anthropic.com";', []),
    ],
)  # fmt: skip
def test_script_rules(source: str, rules: list[str]) -> None:
    assert sorted(hit.rule for hit in check_script(source, CATALOG)) == sorted(rules)


def test_positions_are_one_based() -> None:
    source = (
        "const a = 1;\nconst c = new Anthropic({\n  maxRetries: 0,\n  timeout: 1, baseURL });\n"
    )
    (hit,) = check_script(source, CATALOG)
    assert (hit.rule, hit.line, hit.column) == ("retries-disabled", 3, 3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a // b\nc", "a     \nc"),
        ("a /* b\nc */ d", "a     \n     d"),
        ('"// not a comment" x', '"// not a comment" x'),
        ("`/* kept */` y", "`/* kept */` y"),
        ("'it\\'s' // z", "'it\\'s'     "),
    ],
)
def test_blank_comments_keeps_offsets(text: str, expected: str) -> None:
    assert blank_comments(text) == expected
    assert len(blank_comments(text)) == len(text)


@pytest.mark.parametrize(
    ("code", "close"),
    [("f(a, (b), [c])", 13), ("f('(', \")\")", 10), ("f({ a: `)` })", 12), ("f(a", None)],
)
def test_matching_close(code: str, close: int | None) -> None:
    assert matching_close(code, 1) == close


def test_top_level_parts_and_object_literal() -> None:
    code = "{ a: 1, 'b': f(x, y), c, ...rest, d() { return 1 }, e: { f: 2 } }"
    parts = [text.strip() for _, text in top_level_parts(code, 1, len(code) - 1)]
    assert parts == ["a: 1", "'b': f(x, y)", "c", "...rest", "d() { return 1 }", "e: { f: 2 }"]
    literal = object_literal(code, 0)
    assert literal is not None and literal.spread
    assert {key: value for key, (_, value) in literal.entries.items()} == {
        "a": "1", "b": "f(x, y)", "c": "", "d": "", "e": "{ f: 2 }",
    }  # fmt: skip
    offset, value = literal.entries["e"]
    assert code[offset:].startswith(value)
    assert object_literal("{ a: 1", 0) is None
