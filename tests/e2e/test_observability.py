"""/metrics of a real `bastion serve`, and the deploy files that read it.

The Grafana dashboard and the Prometheus alert rules name metrics in PromQL; every name they use
must be one a running gateway exposes, so a renamed metric fails here instead of on a dashboard.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import anthropic
import httpx2
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import Gateway

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "bastion.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
MODEL = "claude-sonnet-5-5"
MESSAGES = [{"role": "user", "content": "hello there"}]
SUFFIXES = {
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "counter": ("_total", "_created"),
    "gauge": ("",),
}
PROMETHEUS_OWN = frozenset({"le", "by", "without", "on", "ignoring", "bool"})


def exposed_names(text: str) -> set[str]:
    """Every series name the exposition can hold, from its # TYPE lines."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: selectors (`name{…}`, `name[…]`) and our prefixes."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    selectors = re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]", without_strings)
    prefixed = re.findall(r"\b((?:bastion|gen_ai)_[a-z0-9_]+)\b", without_strings)
    return (set(selectors) | set(prefixed)) - PROMETHEUS_OWN


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs


def alert_rules() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def scrape(gateway: Gateway) -> str:
    response = httpx2.get(gateway.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


def chat_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == "gen_ai_server_request_duration_seconds":
            return sum(
                s.value
                for s in family.samples
                if s.name.endswith("_count") and s.labels["model"] == MODEL
                and s.labels["status"] == "200"
            )  # fmt: skip
    return 0.0


def test_requests_show_in_metrics_and_every_deploy_file_name_exists(
    gateway: Gateway, key: str
) -> None:
    before = chat_count(scrape(gateway))
    client = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    client.messages.create(model=MODEL, max_tokens=20, messages=MESSAGES)
    with client.messages.stream(model=MODEL, max_tokens=20, messages=MESSAGES) as stream:
        stream.get_final_message()
    deadline = time.monotonic() + 5
    text = scrape(gateway)
    while chat_count(text) < before + 2:  # records reach the metrics within a flush interval
        assert time.monotonic() < deadline, "the two requests never reached /metrics"
        time.sleep(0.05)
        text = scrape(gateway)
    assert "gen_ai_server_time_to_first_token_seconds_bucket{" in text

    exposed = exposed_names(text)
    used = {name for expr in dashboard_exprs() for name in metric_names(expr)}
    rules = alert_rules()
    used |= {name for expr in rules.values() for name in metric_names(expr)}
    assert used, "no metric names found in the deploy files"
    assert used <= exposed, f"not exposed by /metrics: {sorted(used - exposed)}"
    assert set(rules) >= {
        "BastionHighErrorRate", "BastionHighP99Latency", "BastionBreakerOpen",
        "BastionBudgetAt80Percent",
    }  # fmt: skip


def test_the_dashboard_has_the_panels_operators_need() -> None:
    titles = " | ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    for wanted in (
        "request rate", "error rate", "p50 / p95 / p99", "first token", "overhead", "tokens",
        "cost per hour", "retries", "fallbacks", "breaker", "refusals", "budget",
    ):  # fmt: skip
        assert wanted in titles, wanted


def test_metric_names_are_found_in_promql() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, model) (rate(gen_ai_server_request_duration_"
        'seconds_bucket{status=~"5.."}[5m]))) / on (model) bastion_budget_utilization_ratio'
        ' + up{job="x"}'
    )
    assert metric_names(expr) == {
        "gen_ai_server_request_duration_seconds_bucket", "bastion_budget_utilization_ratio", "up",
    }  # fmt: skip
