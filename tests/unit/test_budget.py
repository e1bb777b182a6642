"""Budgets: all-or-nothing reservations, exact limit edges, settling, periods, alerts, bounds.

Money in micro-dollars (µ$); wall times are fixed UTC instants, never the real clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import pytest

from bastion.policies.budget import (
    HIDDEN_PROMPT_TOKENS,
    IMAGE_TOKENS_MAX,
    Budget,
    BudgetLedger,
    BudgetSnapshot,
    Crossing,
    Ledger,
    Period,
    Refusal,
    Reservation,
    input_token_bound,
    period_end,
    period_key,
    period_start,
    usd,
    worst_case_micros,
)
from bastion.pricing.catalog import ModelInfo, load_catalog


def at(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


NOW = at("2026-11-26T12:00:00")
DAY1, MONTH1 = "2026-11-26", "2026-11"
ENV = Budget("env:prod", 100_000_000, "month")
KEY = Budget("key:abc", 20_000_000, "day")
TEAM = Budget("team:payments", 50_000_000, "month")
USER = Budget("user:u1", 5_000_000, "day")
ALL = [ENV, KEY, TEAM, USER]


def held(result: Reservation | Refusal) -> Reservation:
    assert isinstance(result, Reservation), getattr(result, "message", result)
    return result


def refused(result: Reservation | Refusal) -> Refusal:
    assert isinstance(result, Refusal), result
    return result


async def spent_and_reserved(ledger: BudgetLedger, name: str, now: float = NOW) -> tuple[int, int]:
    rows = {row.name: row for row in await ledger.snapshot(now)}
    return (rows[name].spent_micros, rows[name].reserved_micros) if name in rows else (0, 0)


def test_ledger_implements_the_protocol() -> None:
    ledger: Ledger = BudgetLedger()
    assert ledger is not None


# ---- all or nothing ------------------------------------------------------------------------------


@pytest.mark.parametrize("full", ALL, ids=lambda b: b.name)
async def test_each_scope_refuses_alone_and_nothing_is_charged_elsewhere(full: Budget) -> None:
    ledger = BudgetLedger()
    key = period_key(full.period, NOW)
    await ledger.seed(full.name, key, full.limit_micros - 99, set())
    refusal = refused(await ledger.reserve(ALL, 100, NOW))
    assert (refusal.budget, refusal.period_key) == (full, key)
    assert (refusal.limit_micros, refusal.spent_micros, refusal.reserved_micros) == (
        full.limit_micros,
        full.limit_micros - 99,
        0,
    )
    assert refusal.amount_micros == 100
    for other in ALL:
        if other is not full:  # still entirely free: the refusal held nothing there
            held(await ledger.reserve([other], other.limit_micros, NOW))
    held(await ledger.reserve([full], 99, NOW))


async def test_first_budget_in_the_order_given_is_the_one_reported() -> None:
    ledger = BudgetLedger()
    await ledger.seed(KEY.name, DAY1, KEY.limit_micros, set())
    await ledger.seed(USER.name, DAY1, USER.limit_micros, set())
    assert refused(await ledger.reserve([USER, KEY], 1, NOW)).budget == USER
    assert refused(await ledger.reserve([KEY, USER], 1, NOW)).budget == KEY


@pytest.mark.parametrize(
    ("spent", "in_flight", "amount", "admitted"),
    [
        (4_000_000, 0, 1_000_000, True),  # spent + amount == limit
        (4_000_000, 0, 1_000_001, False),  # one micro-dollar more
        (3_000_000, 1_000_000, 1_000_000, True),  # spent + reserved + amount == limit
        (3_000_000, 1_000_000, 1_000_001, False),
        (0, 0, 5_000_000, True),
        (0, 0, 5_000_001, False),
        (0, 5_000_000, 1, False),  # reserved alone fills it
        (5_000_000, 0, 0, True),  # a free request still fits a full budget
        (5_000_000, 0, 1, False),
    ],
)
async def test_exact_limit_edge(spent: int, in_flight: int, amount: int, admitted: bool) -> None:
    ledger = BudgetLedger()
    await ledger.seed(USER.name, DAY1, spent, set())
    if in_flight:
        held(await ledger.reserve([USER], in_flight, NOW))
    result = await ledger.reserve([USER], amount, NOW)
    if admitted:
        held(result)
        assert await spent_and_reserved(ledger, USER.name) == (spent, in_flight + amount)
    else:
        refusal = refused(result)
        assert (refusal.spent_micros, refusal.reserved_micros) == (spent, in_flight)


# ---- settle and release --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "spent"),
    [
        pytest.param(300_000, 300_000, id="lower"),
        pytest.param(1_000_000, 1_000_000, id="equal"),
        pytest.param(1_500_000, 1_500_000, id="higher is recorded truthfully"),
        pytest.param(0, 0, id="free"),
        pytest.param(None, 1_000_000, id="unknown counts the whole reservation"),
    ],
)
async def test_settle(actual: int | None, spent: int) -> None:
    ledger = BudgetLedger()
    reservation = held(await ledger.reserve([KEY, USER], 1_000_000, NOW))
    await ledger.settle(reservation, actual, NOW)
    for name in (KEY.name, USER.name):
        assert await spent_and_reserved(ledger, name) == (spent, 0)
    room = USER.limit_micros - spent
    assert isinstance(await ledger.reserve([USER], room + 1, NOW), Refusal)
    if room >= 0:
        held(await ledger.reserve([USER], room, NOW))


async def test_release_spends_nothing_and_frees_the_room() -> None:
    ledger = BudgetLedger()
    reservation = held(await ledger.reserve(ALL, USER.limit_micros, NOW))
    assert isinstance(await ledger.reserve([USER], 1, NOW), Refusal)
    await ledger.release(reservation)
    assert await spent_and_reserved(ledger, USER.name) == (0, 0)
    held(await ledger.reserve([USER], USER.limit_micros, NOW))


@pytest.mark.parametrize("first", ["settle", "release"])
async def test_a_reservation_closes_once(first: str) -> None:
    ledger = BudgetLedger()
    reservation = held(await ledger.reserve([USER], 1_000_000, NOW))
    if first == "settle":
        await ledger.settle(reservation, 400_000, NOW)
    else:
        await ledger.release(reservation)
    expected = await spent_and_reserved(ledger, USER.name)
    await ledger.settle(reservation, 900_000, NOW)
    await ledger.settle(reservation, None, NOW)
    await ledger.release(reservation)
    assert await spent_and_reserved(ledger, USER.name) == expected


@pytest.mark.parametrize(
    ("budgets", "amount"),
    [([USER, USER], 1), ([USER, dataclasses.replace(USER, limit_micros=9)], 1), ([USER], -1)],
)
async def test_reserve_rejects_bad_arguments(budgets: list[Budget], amount: int) -> None:
    with pytest.raises(ValueError, match="distinct budget names"):
        await BudgetLedger().reserve(budgets, amount, NOW)


async def test_settle_rejects_a_negative_cost() -> None:
    ledger = BudgetLedger()
    reservation = held(await ledger.reserve([USER], 1, NOW))
    with pytest.raises(ValueError, match="negative"):
        await ledger.settle(reservation, -1, NOW)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "", "limit_micros": 1, "period": "day"},
        {"name": "user:u1", "limit_micros": 0, "period": "day"},
        {"name": "user:u1", "limit_micros": 1, "period": "week"},
        {"name": "user:u1", "limit_micros": 1, "period": "day", "alert_at": (0.0,)},
        {"name": "user:u1", "limit_micros": 1, "period": "day", "alert_at": (1.5,)},
    ],
)
def test_budget_rejects_bad_definitions(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="budget"):
        Budget(**kwargs)  # type: ignore[arg-type]


# ---- periods -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "now", "key", "start", "end"),
    [
        ("day", "2026-11-26T12:00:00", "2026-11-26", "2026-11-26T00:00:00", "2026-11-27T00:00:00"),
        ("day", "2026-11-26T00:00:00", "2026-11-26", "2026-11-26T00:00:00", "2026-11-27T00:00:00"),
        ("day", "2026-11-30T23:59:59", "2026-11-30", "2026-11-30T00:00:00", "2026-12-01T00:00:00"),
        ("day", "2026-12-31T23:59:59", "2026-12-31", "2026-12-31T00:00:00", "2027-01-01T00:00:00"),
        ("day", "2028-02-28T10:00:00", "2028-02-28", "2028-02-28T00:00:00", "2028-02-29T00:00:00"),
        ("month", "2026-11-26T12:00:00", "2026-11", "2026-11-01T00:00:00", "2026-12-01T00:00:00"),
        ("month", "2026-12-31T23:59:59", "2026-12", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
        ("month", "2027-01-01T00:00:00", "2027-01", "2027-01-01T00:00:00", "2027-02-01T00:00:00"),
        ("month", "2027-01-31T08:00:00", "2027-01", "2027-01-01T00:00:00", "2027-02-01T00:00:00"),
        ("month", "2028-02-29T23:00:00", "2028-02", "2028-02-01T00:00:00", "2028-03-01T00:00:00"),
        ("month", "2027-02-15T00:00:00", "2027-02", "2027-02-01T00:00:00", "2027-03-01T00:00:00"),
    ],
)
def test_periods(period: Period, now: str, key: str, start: str, end: str) -> None:
    assert period_key(period, at(now)) == key
    assert period_start(period, at(now)) == at(start)
    assert period_end(period, at(now)) == at(end)


@pytest.mark.parametrize(
    ("period", "last", "first"),
    [
        ("day", "2026-11-26T23:59:59.999", "2026-11-27T00:00:00"),
        ("day", "2026-12-31T23:59:59", "2027-01-01T00:00:00"),
        ("month", "2026-11-30T23:59:59", "2026-12-01T00:00:00"),
        ("month", "2026-12-31T23:59:59", "2027-01-01T00:00:00"),
    ],
)
async def test_a_new_period_starts_at_zero(period: Period, last: str, first: str) -> None:
    ledger = BudgetLedger()
    budget = Budget("user:u1", 5_000_000, period)
    await ledger.settle(held(await ledger.reserve([budget], 5_000_000, at(last))), None, at(last))
    refusal = refused(await ledger.reserve([budget], 1, at(last)))
    assert refusal.resets_at == at(first)
    held(await ledger.reserve([budget], 5_000_000, at(first)))
    [row] = await ledger.snapshot(at(first))
    assert (row.period_key, row.spent_micros, row.reserved_micros) == (
        period_key(period, at(first)),
        0,
        5_000_000,
    )


async def test_a_reservation_settles_into_the_period_it_was_made_in() -> None:
    ledger = BudgetLedger()
    budget = Budget("user:u1", 5_000_000, "day", alert_at=(0.5,))
    late = held(await ledger.reserve([budget], 4_000_000, at("2026-11-26T23:59:59")))
    early = held(await ledger.reserve([budget], 5_000_000, at("2026-11-27T00:00:01")))
    crossings = await ledger.settle(late, 3_000_000, at("2026-11-27T00:00:02"))
    assert crossings == [Crossing(budget, 0.5, "2026-11-26", 3_000_000)]
    assert await spent_and_reserved(ledger, budget.name, at("2026-11-27T00:00:03")) == (
        0,
        5_000_000,
    )
    await ledger.settle(early, 2_000_000, at("2026-11-27T00:00:04"))
    assert await spent_and_reserved(ledger, budget.name, at("2026-11-27T00:00:05")) == (
        2_000_000,
        0,
    )


async def test_past_periods_are_forgotten_once_nothing_points_at_them() -> None:
    ledger = BudgetLedger()
    for day in range(1, 29):
        when = at(f"2026-11-{day:02d}T12:00:00")
        user = Budget(f"user:u{day}", 5_000_000, "day")
        await ledger.settle(held(await ledger.reserve([user, ENV], 1_000, when)), None, when)
    rows = await ledger.snapshot(at("2026-11-28T13:00:00"))
    assert [row.name for row in rows] == ["env:prod", "user:u28"]
    assert ledger._accounts.keys() == {("env:prod", MONTH1), ("user:u28", "2026-11-28")}


# ---- alerts --------------------------------------------------------------------------------------

TEN = Budget("team:ten", 10_000_000, "month")


@pytest.mark.parametrize(
    ("actuals", "reported"),
    [
        ([4_999_999, 1], [[], [0.5]]),
        ([10_000_000], [[0.5, 0.8, 1.0]]),
        ([6_000_000, 3_000_000, 1_000_000], [[0.5], [0.8], [1.0]]),
        ([8_000_000, 2_000_000, 0], [[0.5, 0.8], [1.0], []]),
        ([7_999_999, 1, 1_999_999, 1], [[0.5], [0.8], [], [1.0]]),
        ([12_000_000], [[0.5, 0.8, 1.0]]),  # a real cost above its reservation
    ],
)
async def test_each_threshold_is_reported_once(
    actuals: list[int], reported: list[list[float]]
) -> None:
    ledger = BudgetLedger()
    seen = []
    spent = 0
    for actual in actuals:
        reservation = held(await ledger.reserve([TEN], min(actual, 1_000_000), NOW))
        crossings = await ledger.settle(reservation, actual, NOW)
        spent += actual
        assert all(c.spent_micros == spent and c.period_key == MONTH1 for c in crossings)
        seen.append([c.threshold for c in crossings])
    assert seen == reported


async def test_crossings_come_per_budget_of_the_reservation() -> None:
    ledger = BudgetLedger()
    user = Budget("user:u1", 2_000_000, "day", alert_at=(0.8,))
    team = Budget("team:payments", 4_000_000, "month")
    reservation = held(await ledger.reserve([user, team, TEN], 2_000_000, NOW))
    assert await ledger.settle(reservation, 2_000_000, NOW) == [
        Crossing(user, 0.8, DAY1, 2_000_000),
        Crossing(team, 0.5, MONTH1, 2_000_000),
    ]  # and 2/10 of TEN crosses nothing


async def test_concurrent_settles_report_each_threshold_once() -> None:
    ledger = BudgetLedger()
    reported: list[float] = []

    async def call() -> None:
        reservation = held(await ledger.reserve([TEN], 250_000, NOW))
        await asyncio.sleep(0)
        reported.extend(c.threshold for c in await ledger.settle(reservation, 250_000, NOW))

    await asyncio.gather(*(call() for _ in range(40)))
    assert reported == [0.5, 0.8, 1.0]


async def test_seed_after_a_restart_neither_forgets_spend_nor_alerts_twice() -> None:
    ledger = BudgetLedger()
    await ledger.seed(TEN.name, MONTH1, 7_000_000, {0.5})
    assert isinstance(await ledger.reserve([TEN], 3_000_001, NOW), Refusal)
    reservation = held(await ledger.reserve([TEN], 3_000_000, NOW))
    crossings = await ledger.settle(reservation, 3_000_000, NOW)
    assert [c.threshold for c in crossings] == [0.8, 1.0]
    assert await spent_and_reserved(ledger, TEN.name) == (10_000_000, 0)


async def test_a_seeded_threshold_never_sent_is_reported_on_the_next_settle() -> None:
    ledger = BudgetLedger()
    await ledger.seed(TEN.name, MONTH1, 6_000_000, set())  # crashed before the alert went out
    crossings = await ledger.settle(held(await ledger.reserve([TEN], 0, NOW)), 0, NOW)
    assert crossings == [Crossing(TEN, 0.5, MONTH1, 6_000_000)]


async def test_snapshot() -> None:
    ledger = BudgetLedger()
    await ledger.settle(held(await ledger.reserve([USER, ENV], 1_000_000, NOW)), 250_000, NOW)
    held(await ledger.reserve([USER], 500_000, NOW))
    assert await ledger.snapshot(NOW) == [
        BudgetSnapshot("env:prod", 100_000_000, "month", MONTH1, 250_000, 0, 0.0025),
        BudgetSnapshot("user:u1", 5_000_000, "day", DAY1, 250_000, 500_000, 0.05),
    ]


# ---- concurrency ---------------------------------------------------------------------------------

PRICE = 150_000  # µ$ per call; the budget has room for exactly 20


async def wave(ledger: BudgetLedger, budget: Budget, actual: int, calls: int = 200) -> int:
    async def call() -> bool:
        result = await ledger.reserve([budget], PRICE, NOW)
        if isinstance(result, Refusal):
            return False
        await asyncio.sleep(0)  # every other call reserves while this one is "upstream"
        await ledger.settle(result, actual, NOW)
        return True

    return sum(await asyncio.gather(*(call() for _ in range(calls))))


async def test_200_concurrent_reservations_admit_exactly_20() -> None:
    ledger = BudgetLedger()
    budget = Budget("key:abc", 20 * PRICE, "day")
    assert await wave(ledger, budget, PRICE) == 20
    assert await spent_and_reserved(ledger, budget.name) == (20 * PRICE, 0)
    assert await wave(ledger, budget, PRICE) == 0


async def test_settling_at_lower_real_costs_lets_more_in() -> None:
    ledger = BudgetLedger()
    budget = Budget("key:abc", 20 * PRICE, "day")
    assert await wave(ledger, budget, PRICE // 4) == 20  # 5 × PRICE spent, 15 × PRICE free
    assert await wave(ledger, budget, PRICE // 4) == 15
    assert await spent_and_reserved(ledger, budget.name) == (35 * PRICE // 4, 0)


# ---- messages ------------------------------------------------------------------------------------

END = at("2026-11-27T00:00:00")
BIG = Budget("env:prod", 1_500_000_000, "month")


@pytest.mark.parametrize(
    ("refusal", "message"),
    [
        (
            Refusal(USER, DAY1, 5_000_000, 4_930_000, 0, 120_000, END),
            "budget user:u1 ($5.00 per day) would be exceeded: $4.93 spent, $0.12 more needed;"
            " resets at 2026-11-27T00:00:00Z",
        ),
        (
            Refusal(USER, DAY1, 5_000_000, 4_500_000, 400_000, 120_000, END),
            "budget user:u1 ($5.00 per day) would be exceeded: $4.50 spent, $0.40 held by"
            " requests in flight, $0.12 more needed; resets at 2026-11-27T00:00:00Z",
        ),
        (
            Refusal(BIG, MONTH1, 1_500_000_000, 1_499_999_000, 0, 1_234, at("2026-12-01")),
            "budget env:prod ($1,500.00 per month) would be exceeded: $1,499.999 spent,"
            " $0.001234 more needed; resets at 2026-12-01T00:00:00Z",
        ),
    ],
)
def test_refusal_message(refusal: Refusal, message: str) -> None:
    assert refusal.message == message


async def test_the_ledger_refusal_message() -> None:
    ledger = BudgetLedger()
    await ledger.seed(USER.name, DAY1, 4_930_000, set())
    refusal = refused(await ledger.reserve([ENV, USER], 120_000, NOW))
    assert refusal.message == (
        "budget user:u1 ($5.00 per day) would be exceeded: $4.93 spent, $0.12 more needed;"
        " resets at 2026-11-27T00:00:00Z"
    )


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "$0.00"),
        (1, "$0.000001"),
        (10_000, "$0.01"),
        (4_930_000, "$4.93"),
        (4_935_500, "$4.9355"),
        (5_000_000, "$5.00"),
        (1_234_567_890_000, "$1,234,567.89"),
    ],
)
def test_usd(micros: int, text: str) -> None:
    assert usd(micros) == text


# ---- worst case ----------------------------------------------------------------------------------

H, IMG = HIDDEN_PROMPT_TOKENS, IMAGE_TOKENS_MAX


@pytest.mark.parametrize(
    ("body", "images", "image_bytes", "bound"),
    [
        (0, 0, 0, H),
        (10_000, 0, 0, 10_000 + H),
        (1_000_000, 2, 900_000, 100_000 + H + 2 * IMG),  # base64 swapped for the per-image cap
        (400, 1, 304, 96 + H + IMG),  # a blank PNG: 304 bytes, ~1,590 tokens billed
    ],
)
def test_input_token_bound(body: int, images: int, image_bytes: int, bound: int) -> None:
    assert input_token_bound(body, images=images, image_bytes=image_bytes) == bound


@pytest.mark.parametrize(("body", "images", "image_bytes"), [(-1, 0, 0), (10, -1, 0), (10, 1, 11)])
def test_input_token_bound_rejects_impossible_sizes(
    body: int, images: int, image_bytes: int
) -> None:
    with pytest.raises(ValueError, match="sizes"):
        input_token_bound(body, images=images, image_bytes=image_bytes)


CATALOG = load_catalog()
OPUS = CATALOG.get("claude-opus-5-5")  # 4 / 20 per Mtok, highest input-side price 8 (1h write)
assert OPUS is not None
NO_WINDOW = dataclasses.replace(OPUS, context_window=None)


@pytest.mark.parametrize(
    ("body", "max_tokens", "model", "unsized", "micros"),
    [
        # (10,000 + 4,096) × 8e6 + 1,000 × 20e6 = 132,768e6 → 132,768 µ$
        (10_000, 1_000, OPUS, False, 132_768),
        # capped at the 1M window: 1e6 × 8e6 + 1,000 × 20e6 = 8.02e12 → 8,020,000
        (5_000_000, 1_000, OPUS, False, 8_020_000),
        (10_000, 1_000, OPUS, True, 8_020_000),  # a document or url source: the whole window
        (5_000_000, 1_000, NO_WINDOW, False, 40_052_768),  # no window known: no cap
        (10_000, 1_000, NO_WINDOW, True, None),
        (10_000, 1_000, None, False, None),  # unknown model
    ],
)
def test_worst_case_micros(
    body: int, max_tokens: int, model: ModelInfo | None, unsized: bool, micros: int | None
) -> None:
    assert worst_case_micros(body, max_tokens, model, unsized=unsized) == micros


def test_worst_case_counts_images_at_their_cap() -> None:
    # (400 − 304 + 4,096 + 5,000) × 8e6 = 73,536e6 → 73,536 µ$, no output
    assert worst_case_micros(400, 0, OPUS, images=1, image_bytes=304) == 73_536
