"""A pinned model retiring in 10 days: a warning at start, a /readyz detail that leaves the
gateway ready, a gauge, a dashboard entry, and one alert however often the watch runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from bastion import watches
from bastion.pricing.catalog import load_catalog
from tests.integration.conftest import BASE_CONFIG, ENVIRON, in_process

RETIRING = "claude-haiku-5-5"


def catalog_retiring_in(tmp_path: Path, days: int) -> Path:
    """The packaged catalog, with claude-haiku-5-5 retiring `days` from today (UTC)."""
    source = Path(load_catalog.__code__.co_filename).parent / "catalog.yaml"
    document = yaml.safe_load(source.read_text())
    when = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=days)
    for entry in document["models"]:
        if entry["id"] == RETIRING:
            entry["status"], entry["retires_at"] = "deprecated", when.isoformat()
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


async def test_a_model_retiring_in_ten_days_warns_and_alerts_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = catalog_retiring_in(tmp_path, 10)
    config = (
        BASE_CONFIG
        + f'catalog_path: "{catalog}"\n'
        + f"routes:\n  chat: {{models: [{RETIRING}]}}\n"
        + 'alerts: {webhooks: [{url: "http://127.0.0.1:9/hook", secret: "env:HOOK"}]}\n'
    )
    environ = {**ENVIRON, "HOOK": "whsec_" + "a" * 43 + "="}
    async with in_process(config % {"dir": tmp_path}, environ) as env:
        events = capsys.readouterr().err
        assert '"event":"model_retiring"' in events and RETIRING in events
        ready = await env.http.get("/readyz")
        assert ready.status_code == 200
        when = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=10)).isoformat()
        assert ready.json()["warnings"] == {
            f"model.{RETIRING}": f"{RETIRING} retires on {when} (in 10 days); pin its successor"
        }
        metrics = (await env.http.get("/metrics")).text
        assert f'bastion_model_retirement_days{{model="{RETIRING}"}} 10.0' in metrics
        await watches.watch_retirements(env.gateway)  # the hourly job, run again: no second alert
        await watches.watch_retirements(env.gateway)
        rows = env.gateway.alerts.outbox.rows()
        assert len(rows) == 1
        alert = rows[0].alert
        assert alert.details["model"] == RETIRING and alert.details["threshold_days"] == 30
        assert alert.severity == "warning"


async def test_a_model_far_from_retirement_raises_nothing(tmp_path: Path) -> None:
    catalog = catalog_retiring_in(tmp_path, 90)
    config = (
        BASE_CONFIG
        + f'catalog_path: "{catalog}"\n'
        + f"routes:\n  chat: {{models: [{RETIRING}]}}\n"
    )
    async with in_process(config % {"dir": tmp_path}, ENVIRON) as env:
        assert "warnings" not in (await env.http.get("/readyz")).json()
        assert "bastion_model_retirement_days{" not in (await env.http.get("/metrics")).text


async def test_a_model_that_served_lately_is_in_use(tmp_path: Path) -> None:
    catalog = catalog_retiring_in(tmp_path, 5)
    config = BASE_CONFIG + f'catalog_path: "{catalog}"\n'
    async with in_process(config % {"dir": tmp_path}, ENVIRON) as env:
        assert env.gateway.retirements == []  # nothing pins it, nothing used it yet
        await env.client.messages.create(
            model=RETIRING, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        env.gateway.writer.flush()
        await watches.watch_retirements(env.gateway)
        [notice] = env.gateway.retirements
        assert (notice.model, notice.days_left) == (RETIRING, 5)
