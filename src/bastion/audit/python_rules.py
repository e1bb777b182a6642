"""Checks for Python sources, on the syntax tree: calls and their keyword arguments.

The tree is more precise than text: a keyword in a comment, a string or a different call does
not count. A string names the upstream when it holds api.anthropic.com and no spaces (a URL or a
host, not prose in a docstring). Limits: a call whose arguments come from `**kwargs` is not
judged on missing arguments, and names are matched by spelling (a client class imported under
another name is not recognised).
"""

from __future__ import annotations

import ast
import re

from bastion.audit.findings import Hit
from bastion.audit.models import model_message, model_rule, output_ceiling
from bastion.pricing.catalog import Catalog

CLIENT_CLASS = re.compile(
    r"(Async)?Anthropic(Bedrock|BedrockMantle|Vertex|Foundry|AWS|GoogleCloud)?"
)
FIRST_PARTY_CLIENT = re.compile(r"(Async)?Anthropic")
MESSAGE_METHODS = frozenset({"create", "stream", "parse"})
UPSTREAM_HOST = "api.anthropic.com"


def check_python(source: str, catalog: Catalog) -> list[Hit]:
    """Every hit in one Python file; none when the file does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    lines = source.splitlines()
    hits: list[Hit] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            hits.extend(_call_hits(node, catalog))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            hits.extend(_string_hits(node, node.value, catalog))
    return [_to_chars(hit, lines) for hit in hits]


def _to_chars(hit: Hit, lines: list[str]) -> Hit:
    """ast columns are 0-based UTF-8 byte offsets; findings use 1-based characters."""
    text = lines[hit.line - 1] if hit.line <= len(lines) else ""
    column = len(text.encode("utf-8")[: hit.column].decode("utf-8", "ignore")) + 1
    return Hit(hit.rule, hit.line, column, hit.match, hit.message)


def _hit(rule: str, node: ast.expr, match: str, message: str) -> Hit:
    return Hit(rule, node.lineno, node.col_offset, match, message)


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def _keywords(call: ast.Call) -> tuple[dict[str, ast.expr], bool]:
    """The named keyword arguments, and whether a `**mapping` may add more."""
    named = {kw.arg: kw.value for kw in call.keywords if kw.arg is not None}
    return named, any(kw.arg is None for kw in call.keywords)


def _int_constant(node: ast.expr | None) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def _str_constant(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _call_hits(call: ast.Call, catalog: Catalog) -> list[Hit]:
    name = _name(call.func)
    named, splat = _keywords(call)
    hits: list[Hit] = []
    if _int_constant(named.get("max_retries")) == 0:
        hits.append(
            _hit(
                "retries-disabled",
                named["max_retries"],
                "max_retries=0",
                "max_retries=0 disables the SDK's retries",
            )
        )
    if name is not None and CLIENT_CLASS.fullmatch(name):
        hits.extend(_client_hits(call, name, named, splat))
    if name in MESSAGE_METHODS and _is_messages(call.func):
        hits.extend(_messages_hits(call, named, splat, catalog))
    return hits


def _is_messages(func: ast.expr) -> bool:
    """True for `<anything>.messages.create` (also `client.beta.messages.stream`)."""
    return isinstance(func, ast.Attribute) and _name(func.value) == "messages"


def _client_hits(call: ast.Call, name: str, named: dict[str, ast.expr], splat: bool) -> list[Hit]:
    if splat:
        return []
    hits = []
    if "timeout" not in named:
        hits.append(
            _hit(
                "client-no-timeout",
                call,
                f"{name}(timeout)",
                f"{name}(...) has no timeout: the SDK default is 600 s",
            )
        )
    if FIRST_PARTY_CLIENT.fullmatch(name) and "base_url" not in named:
        hits.append(
            _hit(
                "client-default-base-url",
                call,
                f"{name}(base_url)",
                f"{name}(...) has no base_url: it calls api.anthropic.com",
            )
        )
    return hits


def _messages_hits(
    call: ast.Call, named: dict[str, ast.expr], splat: bool, catalog: Catalog
) -> list[Hit]:
    method = _name(call.func)
    if "max_tokens" not in named:
        if splat:
            return []
        return [
            _hit(
                "max-tokens-missing",
                call,
                f"messages.{method}(max_tokens)",
                f"messages.{method}(...) has no max_tokens",
            )
        ]
    model = _str_constant(named.get("model"))
    max_tokens = _int_constant(named["max_tokens"])
    ceiling = None if model is None else output_ceiling(catalog, model)
    if max_tokens is None or ceiling is None or max_tokens < ceiling:
        return []
    return [
        _hit(
            "max-tokens-at-ceiling",
            named["max_tokens"],
            f"{model} max_tokens={max_tokens}",
            f"max_tokens={max_tokens} is at {model}'s output ceiling ({ceiling})",
        )
    ]


def _string_hits(node: ast.Constant, value: str, catalog: Catalog) -> list[Hit]:
    hits = []
    rule_id = model_rule(catalog, value)
    if rule_id is not None:
        hits.append(_hit(rule_id, node, value, model_message(catalog, value, rule_id)))
    if UPSTREAM_HOST in value and not any(char.isspace() for char in value.strip()):
        hits.append(
            _hit(
                "direct-upstream",
                node,
                value,
                f"{value[:80]!r} calls {UPSTREAM_HOST}, not the gateway",
            )
        )
    return hits
