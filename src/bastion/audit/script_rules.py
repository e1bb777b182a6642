"""Checks for JavaScript and TypeScript sources, by regex over comment-free text.

Calls are found by name (`new Anthropic(`, `.messages.create(`), then their argument text is cut
out with balanced brackets and read as an object literal's top-level keys. Limits: arguments that
are not an object literal (`create(params)`), or that spread another object (`...defaults`), are
not judged on missing keys; a client class imported under another name is not recognised.
"""

from __future__ import annotations

import re

from bastion.audit.braces import ObjectLiteral, blank_comments, matching_close, object_literal
from bastion.audit.findings import Hit
from bastion.audit.models import model_message, model_rule, output_ceiling
from bastion.audit.positions import LineIndex
from bastion.pricing.catalog import Catalog

SCRIPT_SUFFIXES = frozenset({".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts"})
_BROWSER = re.compile(
    r"""\b(?:dangerouslyAllowBrowser|['"]dangerouslyAllowBrowser['"])\s*:\s*true\b"""
)
_NO_RETRIES = re.compile(r"""\b(?:maxRetries|['"]maxRetries['"])\s*:\s*0(?![\d.])""")
_CLIENT = re.compile(
    r"\bnew\s+((?:Async)?Anthropic(?:Bedrock|Vertex|Foundry|AWS|GoogleCloud)?)\s*\("
)
_MESSAGES = re.compile(r"\.messages\s*\.\s*(create|stream|parse)\s*\(")
_STRING = re.compile(r"""(['"`])(claude-[a-z0-9.\-]+)\1""")
_UPSTREAM = re.compile(r"""(['"`])[^'"`\s]*api\.anthropic\.com[^'"`\s]*\1""")
_NUMBER = re.compile(r"\d[\d_]*")
_QUOTED = re.compile(r"""(['"`])([^'"`]*)\1""")


def check_script(source: str, catalog: Catalog) -> list[Hit]:
    """Every hit in one JavaScript or TypeScript file."""
    code = blank_comments(source)
    index = LineIndex(source)
    hits: list[Hit] = []

    def add(rule: str, offset: int, match: str, message: str) -> None:
        line, column = index.position(offset)
        hits.append(Hit(rule, line, column, match, message))

    for match in _BROWSER.finditer(code):
        add(
            "browser-client",
            match.start(),
            "dangerouslyAllowBrowser: true",
            "dangerouslyAllowBrowser: true ships the API key to every browser",
        )
    for match in _NO_RETRIES.finditer(code):
        add(
            "retries-disabled",
            match.start(),
            "maxRetries: 0",
            "maxRetries: 0 disables the SDK's retries",
        )
    for match in _CLIENT.finditer(code):
        for rule, text, message in _client_problems(code, match.end() - 1, match.group(1)):
            add(rule, match.start(), text, message)
    for match in _MESSAGES.finditer(code):
        for rule, offset, text, message in _messages_problems(code, match, catalog):
            add(rule, offset, text, message)
    for match in _STRING.finditer(code):
        rule_id = model_rule(catalog, match.group(2))
        if rule_id is not None:
            add(
                rule_id,
                match.start(2),
                match.group(2),
                model_message(catalog, match.group(2), rule_id),
            )
    for match in _UPSTREAM.finditer(code):
        url = match.group()[1:-1]
        add(
            "direct-upstream",
            match.start(),
            url,
            f"{url[:80]!r} calls api.anthropic.com, not the gateway",
        )
    return hits


def _arguments(code: str, open_paren: int) -> ObjectLiteral | None:
    """The call's first argument when it is an object literal; an empty object for `()`.

    None when the first argument is anything else (a variable, a call): it cannot be judged.
    A second argument (the TypeScript SDK's per-request options) is ignored.
    """
    close = matching_close(code, open_paren)
    if close is None:
        return None
    inner = code[open_paren + 1 : close]
    if not inner.strip():
        return ObjectLiteral({}, spread=False)
    brace = open_paren + 1 + len(inner) - len(inner.lstrip())
    end = matching_close(code, brace) if code[brace] == "{" else None
    if end is None or code[end + 1 : close].strip()[:1] not in ("", ","):
        return None
    return object_literal(code, brace)


def _client_problems(code: str, open_paren: int, name: str) -> list[tuple[str, str, str]]:
    args = _arguments(code, open_paren)
    if args is None or args.spread:
        return []
    problems = []
    if "timeout" not in args.entries:
        problems.append(
            (
                "client-no-timeout",
                f"new {name}(timeout)",
                f"new {name}(...) has no timeout: the default is 10 minutes",
            )
        )
    if name == "Anthropic" and "baseURL" not in args.entries:
        problems.append(
            (
                "client-default-base-url",
                f"new {name}(baseURL)",
                f"new {name}(...) has no baseURL: calls api.anthropic.com",
            )
        )
    return problems


def _messages_problems(
    code: str, call: re.Match[str], catalog: Catalog
) -> list[tuple[str, int, str, str]]:
    method = call.group(1)
    args = _arguments(code, call.end() - 1)
    if args is None:
        return []
    if "max_tokens" not in args.entries:
        if args.spread:
            return []
        return [
            (
                "max-tokens-missing",
                call.start() + 1,
                f"messages.{method}(max_tokens)",
                f"messages.{method}(...) has no max_tokens",
            )
        ]
    offset, value = args.entries["max_tokens"]
    model = _QUOTED.fullmatch(args.entries.get("model", (0, ""))[1])
    number = _NUMBER.fullmatch(value)
    if model is None or number is None:
        return []
    max_tokens = int(number.group().replace("_", ""))
    ceiling = output_ceiling(catalog, model.group(2))
    if ceiling is None or max_tokens < ceiling:
        return []
    return [
        (
            "max-tokens-at-ceiling",
            offset,
            f"{model.group(2)} max_tokens={max_tokens}",
            f"max_tokens: {value} is at {model.group(2)}'s output ceiling ({ceiling})",
        )
    ]
