"""The Gateway: everything built from config that requests need, owned in one place.

No module-level state: stores, caches, the upstream transport and the clock live here and are
passed explicitly, so tests build a Gateway with fakes and production builds one from a file.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from bastion import watches
from bastion.alerts import Alert, AlertDelivery, Outbox
from bastion.alerts.budget import secret_alert
from bastion.alerts.request_log import LogHealth
from bastion.alerts.rollover import resolves_due
from bastion.clock import Clock
from bastion.config import (
    BastionConfig,
    BreakerConfig,
    ConfigError,
    RouteConfig,
    client_settings,
    process_environment,
)
from bastion.environment import Environment, check_shared_keys, open_environment
from bastion.errors import InvalidRequest, PermissionDenied
from bastion.events import emit
from bastion.failure_reports import (
    job_failure_reporter,
    log_write_failed,
    report_job_failure,
    report_transition,
)
from bastion.keyring import Keyring, last_use_sink
from bastion.metrics import Metrics
from bastion.policies.accesslog import RecordWriter
from bastion.policies.agentguard import AgentRunGuard
from bastion.policies.auth import Authenticator
from bastion.policies.breaker import BreakerPolicy, BreakerRegistry
from bastion.policies.budget import Budget, BudgetLedger, period_key, period_start
from bastion.policies.control import ControlState
from bastion.policies.idempotency import MemoryIdempotencyStore
from bastion.policies.pinning import pin_problems
from bastion.policies.ratelimit import RateLimiter
from bastion.policies.retirement import (
    Retirement,
)
from bastion.pricing.catalog import MICROS_PER_USD, Catalog, load_catalog
from bastion.routes import RoutePolicies, all_route_policies
from bastion.sampling.capture import Sampler
from bastion.sampling.sink import SampleSink
from bastion.secrets import SecretError, resolve_secret
from bastion.stores.journal import Journal, journal_line, replay
from bastion.stores.rollups import Rollups
from bastion.stores.sqlite import SQLiteStore, record_row
from bastion.supervisor import Supervisor
from bastion.tracing import Tracer, build_tracer
from bastion.transport_aiohttp import AiohttpTransport
from bastion.transport_reqwest import ReqwestTransport
from bastion.upstream import Transport

RETIREMENT_CHECK_S = 3600.0


@dataclass
class Gateway:
    config: BastionConfig
    store: SQLiteStore
    auth: Authenticator
    writer: RecordWriter
    transport: Transport
    catalog: Catalog
    environments: dict[str, Environment]
    clock: Clock
    environ: Mapping[str, str]
    breakers: BreakerRegistry
    route_policies: dict[tuple[str, bool], RoutePolicies]
    metrics: Metrics
    limiter: RateLimiter
    ledger: BudgetLedger
    guard: AgentRunGuard
    alerts: AlertDelivery
    idempotency: MemoryIdempotencyStore
    keyring: Keyring
    """Key changes of the admin API, hashed with the same server secret as `auth` checks."""
    sampler: Sampler
    rollups: Rollups
    """Keeps the dashboard's hourly and daily rollups current (a writer sink)."""
    control: ControlState = field(default_factory=ControlState)
    control_version: int = -1
    tracer: Tracer | None = None
    """Traces of API requests; None when tracing is off (then no per-request cost)."""
    jobs: Supervisor = field(default_factory=lambda: Supervisor(report_job_failure))
    """The periodic background jobs (key and control refresh, alert delivery, stale keys):
    a failure is logged (`background_job_failed`), counted and retried, never the job's end."""
    retirements: list[Retirement] = field(default_factory=list)
    """Models in use that are deprecated or retire within 30 days (`watch_retirements`)."""
    log_health: LogHealth = field(default_factory=LogHealth)
    """The request-log outage alerted on, if any (see `alert_request_log`)."""
    _background: set[asyncio.Future[Any]] = field(default_factory=set)

    def alert(self, alert: Alert) -> None:
        """Queue an alert for delivery; the outbox write happens off the request path."""
        future = asyncio.ensure_future(asyncio.to_thread(self.alerts.enqueue, alert))
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    async def seed_budgets(self) -> None:
        """Load this period's spend per budget from the request log, so a restart forgets none.

        Thresholds already alerted on are not loaded: a crossing seen again is enqueued again
        and the outbox, which keeps one row per alert, drops the duplicate.
        """
        now = self.clock.wall()
        for config in self.config.budgets:
            since = period_start(config.period, now)
            rows = await asyncio.to_thread(self.store.spend, config.scope, since)
            for row in rows:
                if row.group is None or (config.name is not None and row.group != config.name):
                    continue
                name = f"{config.scope}:{row.group}:{config.period}"
                limit = int(config.limit_usd * MICROS_PER_USD)
                budget = Budget(name, limit, config.period, config.alert_at)
                key = period_key(config.period, now)
                await self.ledger.seed(name, key, row.cost_micros, set(), budget)

    async def resolve_finished_periods(self) -> None:
        """Queue the resolve of every budget alert whose period is over."""
        rows = await asyncio.to_thread(self.alerts.outbox.rows)
        for alert in resolves_due(rows, self.clock.wall()):
            await asyncio.to_thread(self.alerts.enqueue, alert)

    def route(self, name: str) -> RouteConfig:
        route = self.config.routes.get(name)
        if route is None:
            known = ", ".join(sorted(self.config.routes))
            raise InvalidRequest(f"x-bastion-route: unknown route {name!r} (routes: {known})")
        return route

    def refresh_control(self) -> bool:
        """Load the operator overrides when their version moved; True when they did."""
        version, state = self.store.control()
        if version == self.control_version:
            return False
        self.control, self.control_version = ControlState.from_json(state), version
        return True

    def refresh(self) -> None:
        """Pick up key changes and operator overrides made by other processes."""
        self.auth.refresh()
        self.refresh_control()

    def environment(self, name: str) -> Environment:
        env = self.environments.get(name)
        if env is None:
            raise PermissionDenied(f"this key's environment {name!r} is not configured")
        return env

    async def start(self) -> None:
        if self.config.log.journal:  # records a killed process answered but did not store
            found = await asyncio.to_thread(
                replay, journal_path(self.config), self.store.insert_missing_rows
            )
            if found:
                emit("journal_replayed", records=found)
        self.writer.start()
        await asyncio.to_thread(self.rollups.start)
        self.refresh()
        for env in self.environments.values():
            await env.resolve()
        check_shared_keys(self.environments, self.config.environments)
        await self.seed_budgets()
        await watches.watch_retirements(self, announce=True)
        jobs = self.jobs
        retiring = lambda: watches.watch_retirements(self)  # noqa: E731
        jobs.every("retirements", RETIREMENT_CHECK_S, retiring, first_wait=True)
        poll = self.config.keys.revocation_poll_s
        jobs.every("watch", poll, lambda: asyncio.to_thread(self.refresh), first_wait=True)
        if self.alerts.channels:
            jobs.every("alerts", 1.0, self.alerts.deliver_due_once, first_wait=False)
            jobs.every("resolve", 60.0, self.resolve_finished_periods, first_wait=False)
            stale_s = self.config.keys.stale_check_s
            stale = lambda: asyncio.to_thread(watches.alert_stale_keys, self)  # noqa: E731
            jobs.every("stale_keys", stale_s, stale, first_wait=False)
            log = lambda: watches.alert_request_log(self)  # noqa: E731
            jobs.every("request_log", 1.0, log, first_wait=False)

    async def stop(self) -> None:
        """Stop the jobs and close everything; the request log is written whatever else fails
        (each failure is reported, and the first is raised once the log is safe)."""
        failures: list[BaseException] = []

        async def step(name: str, close: Callable[[], Awaitable[object]]) -> None:
            try:
                await close()
            except Exception as exc:  # noqa: BLE001 -- shutdown goes on; reported, raised after
                emit("shutdown_step_failed", step=name, error=repr(exc))
                failures.append(exc)

        try:
            await step("jobs", self.jobs.stop)
            if self._background:
                await asyncio.gather(*self._background, return_exceptions=True)
            for env in self.environments.values():
                if env.cache is not None:
                    await step(f"secrets.{env.name}", env.cache.aclose)
            await step("alerts", self.alerts.aclose)
            await step("outbox", lambda: asyncio.to_thread(self.alerts.outbox.close))
            await step("transport", self.transport.aclose)
            tracer = self.tracer
            if tracer is not None:
                await step("tracer", lambda: asyncio.to_thread(tracer.shutdown))
        finally:
            self.writer.stop()
            self.rollups.stop()
            self.store.close()
        if failures:
            raise failures[0]

    async def readiness(self) -> dict[str, str]:
        """What is not ready, by component; empty when ready."""
        problems: dict[str, str] = {}
        try:
            await asyncio.to_thread(self.store.ping)
        except Exception as exc:  # noqa: BLE001 -- any store failure means not ready; report, do not raise
            problems["store"] = f"{type(exc).__name__}: {exc}"
        problems.update(self.jobs.problems())
        if self.writer.journal_error is not None:
            problems["journal"] = (
                f"the record journal cannot be written: {self.writer.journal_error}"
            )
        if self.writer.store_error is not None:
            problems["request_log"] = (
                f"{self.writer.backlog} records wait for the store: {self.writer.store_error}"
            )
        for env in self.environments.values():
            if env.key is None:
                await env.resolve()
            if env.key_error and env.key is None:
                problems[f"environment.{env.name}"] = env.key_error
        return problems


def server_secret(config: BastionConfig, environ: Mapping[str, str]) -> bytes:
    return resolve_secret(config.keys.hash_secret, environ).reveal().encode()


def build_gateway(
    config: BastionConfig,
    *,
    transport: Transport | None = None,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
    log_stream: BinaryIO | None = None,
    tracer: Tracer | None = None,
) -> Gateway:
    """Build every component from config; raises SecretError when the key secret is missing.

    `tracer` replaces the one `config.tracing` describes (tests export to memory)."""
    clock = clock or Clock()
    environ = process_environment() if environ is None else environ
    store = SQLiteStore(config.store.sqlite_path, config.store.busy_timeout_s)
    secret = server_secret(config, environ)
    auth = Authenticator(store, secret, clock.wall, config.keys.cache_size)
    if log_stream is None and config.log.stdout:
        log_stream = sys.stdout.buffer
    catalog = load_catalog(Path(config.catalog_path) if config.catalog_path else None)
    pins = {f"routes.{name}.models": route.models for name, route in config.routes.items()}
    pins |= {f"environments.{n}.models": env.models for n, env in config.environments.items()}
    problems = pin_problems(pins, catalog)
    if problems:
        raise ConfigError("; ".join(problems))
    metrics = Metrics(config, [model.id for model in catalog.models])
    rollups = Rollups(
        config.store.sqlite_path, catalog, on_error=lambda e: emit("rollups_failed", error=repr(e))
    )
    writer = RecordWriter(
        store, config.log.flush_interval_s, config.log.max_batch, log_stream,
        observers=[metrics.observe],
        sinks=[SampleSink(store, config.sampling, clock.wall), last_use_sink(store),
               rollups.sink],
        on_error=log_write_failed(metrics), on_backlog=metrics.log_backlog.set,
        journal=Journal(journal_path(config)) if config.log.journal else None,
        journal_line=lambda r: journal_line(record_row(r)),
    )  # fmt: skip
    metrics.journal_failing.set_function(lambda: float(writer.journal_error is not None))
    alerts = AlertDelivery(
        Outbox(config.store.sqlite_path, busy_timeout_s=config.store.busy_timeout_s),
        config.alerts,
        environ=environ,
        clock=clock,
    )

    background: set[asyncio.Future[Any]] = set()

    def secret_failed(ref: str, error: SecretError, failures: int) -> None:
        """A secret manager is down: the last good key keeps serving; page once per outage."""
        emit("secret_refresh_failed", ref=ref, failures=failures, error=str(error))
        if failures == 1:
            alert = secret_alert(ref, str(error), clock.wall())
            future = asyncio.ensure_future(asyncio.to_thread(alerts.enqueue, alert))
            background.add(future)
            future.add_done_callback(background.discard)

    environments = {
        name: open_environment(
            name, env.upstream.base_url, env.upstream.api_key, environ, clock, secret_failed
        )
        for name, env in config.environments.items()
    }
    return Gateway(
        config=config,
        store=store,
        auth=auth,
        writer=writer,
        transport=transport or upstream_transport(config, environ),
        catalog=catalog,
        environments=environments,
        clock=clock,
        environ=environ,
        breakers=BreakerRegistry(
            breaker_policy(config.breaker),
            clock.monotonic,
            listeners=[metrics.on_transition, report_transition],
        ),
        metrics=metrics,
        route_policies=all_route_policies(config),
        idempotency=MemoryIdempotencyStore(),
        keyring=Keyring(store, secret, clock.wall),
        sampler=Sampler(config.sampling, clock.random),
        rollups=rollups,
        limiter=RateLimiter(clock.monotonic, wall=clock.wall),
        ledger=BudgetLedger(),
        guard=AgentRunGuard(clock.monotonic),
        alerts=alerts,
        tracer=build_tracer(config.tracing, config.sampling.redact) if tracer is None else tracer,
        jobs=Supervisor(job_failure_reporter(metrics)),
        _background=background,
    )


def upstream_transport(config: BastionConfig, environ: Mapping[str, str]) -> Transport:
    """The upstream client that `server.upstream_client` names, with its limits and proxies."""
    settings = client_settings(config.server, environ)
    if config.server.upstream_client == "pyreqwest":
        return ReqwestTransport(settings)
    return AiohttpTransport(settings)


def journal_path(config: BastionConfig) -> str:
    return config.store.sqlite_path + ".journal"


def breaker_policy(config: BreakerConfig) -> BreakerPolicy:
    return BreakerPolicy(
        failure_rate=config.failure_rate,
        window_s=config.window_s,
        min_requests=config.min_requests,
        open_s=config.open_s,
        probe_timeout_s=config.probe_timeout_s,
    )
