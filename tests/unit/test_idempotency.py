from __future__ import annotations

import asyncio

import pytest

from bastion.errors import InvalidRequest
from bastion.policies.idempotency import (
    REPLAYED_HEADER,
    Begin,
    IdempotencyConflict,
    IdempotencyMismatch,
    IdempotencyStore,
    MemoryIdempotencyStore,
    Outcome,
    StoredResponse,
    parse_idempotency_key,
    replay_headers,
    request_fingerprint,
    should_store,
)

FIRST, REPLAY, IN_FLIGHT, MISMATCH = (
    Outcome.FIRST,
    Outcome.REPLAY,
    Outcome.IN_FLIGHT,
    Outcome.MISMATCH,
)
FP = request_fingerprint("POST", "/v1/messages", b'{"model":"m"}')
OTHER_FP = request_fingerprint("POST", "/v1/messages", b'{"model":"n"}')
OK = StoredResponse(200, [(b"content-type", b"application/json")], b'{"id":"msg_1"}')
T0 = 1_000_000.0


def response(body_size: int) -> StoredResponse:
    return StoredResponse(200, [], b"x" * body_size)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
def store() -> MemoryIdempotencyStore:
    return MemoryIdempotencyStore()


# --- key validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("abc", "abc"),
        ('"abc"', "abc"),
        ("8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ("a b", "a b"),
        ('""abc""', '"abc"'),  # only one pair of quotes is stripped
        ('"abc', '"abc'),  # an unpaired quote is just a character
        ("~!@#$%^&*()", "~!@#$%^&*()"),
        ("k" * 255, "k" * 255),
        ('"' + "k" * 255 + '"', "k" * 255),
    ],
)
def test_valid_keys(header: str, key: str) -> None:
    assert parse_idempotency_key(header) == key


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("", "is empty"),
        ('""', "is empty"),
        ("k" * 256, "longer than 255"),
        ("tab\there", "not printable ASCII"),
        ("new\nline", "not printable ASCII"),
        ("caf\u00e9", "not printable ASCII"),
        ("del\x7f", "not printable ASCII"),
        (" lead", "space"),
        ("trail ", "space"),
        ('" quoted "', "space"),
    ],
)
def test_invalid_keys_name_the_problem(header: str, problem: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_idempotency_key(header)
    assert problem in caught.value.message
    assert "idempotency-key" in caught.value.message
    assert caught.value.status == 400
    assert caught.value.reason == "idempotency"


# --- pure helpers ---------------------------------------------------------------------------


def test_fingerprint_covers_method_path_and_bytes() -> None:
    base = request_fingerprint("POST", "/v1/messages", b"{}")
    assert base == request_fingerprint("POST", "/v1/messages", b"{}")
    assert len(base) == 64
    others = {
        request_fingerprint("PUT", "/v1/messages", b"{}"),
        request_fingerprint("POST", "/v1/messages/count_tokens", b"{}"),
        request_fingerprint("POST", "/v1/messages", b"{ }"),  # same JSON, different bytes
    }
    assert base not in others
    assert len(others) == 3


@pytest.mark.parametrize(
    ("status", "stored"),
    [
        (200, True),
        (201, True),
        (400, True),
        (404, True),
        (413, True),
        (401, False),
        (403, False),
        (408, False),
        (409, False),
        (429, False),
        (500, False),
        (502, False),
        (529, False),
    ],
)
def test_should_store(status: int, stored: bool) -> None:
    assert should_store(status) is stored


def test_replay_headers_marks_replay_once() -> None:
    stored = StoredResponse(
        200, [(b"content-type", b"text/event-stream"), (b"Idempotent-Replayed", b"x")], b"", True
    )
    assert replay_headers(stored) == [(b"content-type", b"text/event-stream"), REPLAYED_HEADER]
    assert stored.headers[1] == (b"Idempotent-Replayed", b"x")  # the stored copy is untouched


def test_errors_map_to_status_and_tell_the_client_what_to_do() -> None:
    conflict, mismatch = IdempotencyConflict(), IdempotencyMismatch()
    assert (conflict.status, conflict.error_type, conflict.reason) == (
        409,
        "conflict_error",
        "idempotency",
    )
    assert conflict.should_retry is True
    assert "retry" in conflict.message
    assert (mismatch.status, mismatch.error_type, mismatch.reason) == (
        422,
        "invalid_request_error",
        "idempotency",
    )
    assert mismatch.should_retry is False
    assert "new key" in mismatch.message


def test_store_is_rejected_without_positive_limits() -> None:
    with pytest.raises(ValueError, match="positive"):
        MemoryIdempotencyStore(max_entries=0)


# --- first / replay / mismatch / in flight --------------------------------------------------


async def test_first_then_in_flight_then_replay(store: MemoryIdempotencyStore) -> None:
    assert await store.begin("kid", "k1", FP, T0) == Begin(FIRST)
    assert await store.begin("kid", "k1", FP, T0) == Begin(IN_FLIGHT)
    assert await store.complete("kid", "k1", OK, T0)
    assert await store.begin("kid", "k1", FP, T0 + 1) == Begin(REPLAY, OK)


async def test_stream_is_replayed_as_stream(store: MemoryIdempotencyStore) -> None:
    sse = StoredResponse(200, [], b"event: message_stop\ndata: {}\n\n", stream=True)
    await store.begin("kid", "k1", FP, T0)
    await store.complete("kid", "k1", sse, T0)
    replay = await store.begin("kid", "k1", FP, T0)
    assert replay.response is not None
    assert replay.response.stream
    assert replay.response.body == sse.body


@pytest.mark.parametrize("complete_first", [True, False])
async def test_other_request_with_same_key_mismatches(
    store: MemoryIdempotencyStore, complete_first: bool
) -> None:
    await store.begin("kid", "k1", FP, T0)
    if complete_first:
        await store.complete("kid", "k1", OK, T0)
    assert await store.begin("kid", "k1", OTHER_FP, T0) == Begin(MISMATCH)


async def test_keys_are_scoped_to_the_caller(store: MemoryIdempotencyStore) -> None:
    await store.begin("alice", "k1", FP, T0)
    await store.complete("alice", "k1", OK, T0)
    assert await store.begin("bob", "k1", FP, T0) == Begin(FIRST)
    assert await store.begin("alice", "k2", FP, T0) == Begin(FIRST)


async def test_abandon_lets_a_retry_run(store: MemoryIdempotencyStore) -> None:
    await store.begin("kid", "k1", FP, T0)
    await store.abandon("kid", "k1")
    assert await store.begin("kid", "k1", FP, T0) == Begin(FIRST)
    await store.abandon("kid", "k1")
    await store.abandon("kid", "k1")  # twice is harmless
    assert await store.begin("kid", "k1", OTHER_FP, T0) == Begin(FIRST)  # nothing was kept


async def test_late_complete_after_abandon_stores_nothing(store: MemoryIdempotencyStore) -> None:
    await store.begin("kid", "k1", FP, T0)
    await store.abandon("kid", "k1")
    assert not await store.complete("kid", "k1", OK, T0)
    assert await store.begin("kid", "k1", FP, T0) == Begin(FIRST)


async def test_fifty_concurrent_begins_yield_one_first(store: MemoryIdempotencyStore) -> None:
    results = await asyncio.gather(*(store.begin("kid", "k1", FP, T0) for _ in range(50)))
    outcomes = [result.outcome for result in results]
    assert outcomes.count(FIRST) == 1
    assert outcomes.count(IN_FLIGHT) == 49


def test_memory_store_satisfies_the_protocol() -> None:
    implementation: IdempotencyStore = MemoryIdempotencyStore()
    assert implementation is not None


# --- waiting on the first request -----------------------------------------------------------


async def test_completion_wakes_every_waiter_with_replay(store: MemoryIdempotencyStore) -> None:
    await store.begin("kid", "k1", FP, T0)
    waiters = [asyncio.create_task(store.wait("kid", "k1", FP, 60)) for _ in range(5)]
    await settle()
    assert not any(waiter.done() for waiter in waiters)
    await store.complete("kid", "k1", OK, T0)
    assert await asyncio.gather(*waiters) == [Begin(REPLAY, OK)] * 5


async def test_abandon_makes_exactly_one_waiter_first(store: MemoryIdempotencyStore) -> None:
    await store.begin("kid", "k1", FP, T0)
    waiters = [asyncio.create_task(store.wait("kid", "k1", FP, 60)) for _ in range(5)]
    await settle()
    await store.abandon("kid", "k1")
    await settle()
    winners = [waiter for waiter in waiters if waiter.done()]
    assert [winner.result() for winner in winners] == [Begin(FIRST)]
    await store.complete("kid", "k1", OK, T0)  # the winner finishes; the rest get its answer
    assert [await waiter for waiter in waiters if waiter not in winners] == [Begin(REPLAY, OK)] * 4


async def test_waiter_times_out_in_flight(store: MemoryIdempotencyStore) -> None:
    await store.begin("kid", "k1", FP, T0)
    assert await store.wait("kid", "k1", FP, 0) == Begin(IN_FLIGHT)
    await store.complete("kid", "k1", OK, T0)  # the lock was untouched by the timeout
    assert await store.begin("kid", "k1", FP, T0) == Begin(REPLAY, OK)


@pytest.mark.parametrize(
    ("complete_first", "fingerprint", "expected"),
    [
        (True, FP, Begin(REPLAY, OK)),
        (True, OTHER_FP, Begin(MISMATCH)),
        (False, OTHER_FP, Begin(MISMATCH)),
    ],
)
async def test_wait_answers_at_once_when_nothing_to_wait_for(
    store: MemoryIdempotencyStore, complete_first: bool, fingerprint: str, expected: Begin
) -> None:
    await store.begin("kid", "k1", FP, T0)
    if complete_first:
        await store.complete("kid", "k1", OK, T0)
    assert await store.wait("kid", "k1", fingerprint, 0) == expected


async def test_waiter_does_not_replay_a_different_request(store: MemoryIdempotencyStore) -> None:
    await store.begin("kid", "k1", FP, T0)
    waiter = asyncio.create_task(store.wait("kid", "k1", FP, 60))
    await settle()
    await store.abandon("kid", "k1")
    assert await store.begin("kid", "k1", OTHER_FP, T0) == Begin(FIRST)  # claims before it wakes
    assert await waiter == Begin(MISMATCH)


# --- retention and bounded memory -----------------------------------------------------------


async def test_answers_expire_after_retention() -> None:
    store = MemoryIdempotencyStore(retention_s=100)
    await store.begin("kid", "k1", FP, T0)
    await store.complete("kid", "k1", OK, T0)
    assert await store.begin("kid", "k1", FP, T0 + 99.9) == Begin(REPLAY, OK)
    assert await store.begin("kid", "k1", OTHER_FP, T0 + 100) == Begin(FIRST)


async def test_purge_drops_only_expired_answers() -> None:
    store = MemoryIdempotencyStore(retention_s=100)
    for i, at in enumerate([T0, T0 + 10, T0 + 50]):
        await store.begin("kid", f"k{i}", FP, at)
        await store.complete("kid", f"k{i}", OK, at)
    assert await store.purge(T0 + 120) == 2
    assert await store.purge(T0 + 120) == 0
    assert await store.begin("kid", "k2", FP, T0 + 120) == Begin(REPLAY, OK)
    assert await store.begin("kid", "k0", FP, T0 + 120) == Begin(FIRST)


async def test_default_retention_is_a_day(store: MemoryIdempotencyStore) -> None:
    await store.begin("kid", "k1", FP, T0)
    await store.complete("kid", "k1", OK, T0)
    assert await store.purge(T0 + 86_399) == 0
    assert await store.purge(T0 + 86_400) == 1


async def test_entry_cap_evicts_oldest_answers_never_running_requests() -> None:
    store = MemoryIdempotencyStore(max_entries=2)
    await store.begin("kid", "running", FP, T0)
    for key in ("a", "b", "c"):
        await store.begin("kid", key, FP, T0)
        await store.complete("kid", key, OK, T0)
    assert await store.begin("kid", "a", OTHER_FP, T0) == Begin(FIRST)  # evicted: no trace
    assert await store.begin("kid", "b", FP, T0) == Begin(REPLAY, OK)
    assert await store.begin("kid", "c", FP, T0) == Begin(REPLAY, OK)
    assert await store.begin("kid", "running", FP, T0) == Begin(IN_FLIGHT)


async def test_byte_cap_evicts_oldest_answers_never_running_requests() -> None:
    store = MemoryIdempotencyStore(max_bytes=1_000)
    await store.begin("kid", "running", FP, T0)
    for key in ("a", "b", "c"):
        await store.begin("kid", key, FP, T0)
        await store.complete("kid", key, response(400), T0)
    assert await store.begin("kid", "a", FP, T0) == Begin(FIRST)
    assert await store.begin("kid", "b", FP, T0) == Begin(REPLAY, response(400))
    assert await store.begin("kid", "running", FP, T0) == Begin(IN_FLIGHT)


async def test_answer_larger_than_the_cap_is_released_not_stored() -> None:
    store = MemoryIdempotencyStore(max_bytes=1_000)
    await store.begin("kid", "small", FP, T0)
    await store.complete("kid", "small", response(10), T0)
    await store.begin("kid", "huge", FP, T0)
    assert not await store.complete("kid", "huge", response(2_000), T0)
    assert await store.begin("kid", "huge", FP, T0) == Begin(FIRST)
    assert await store.begin("kid", "small", FP, T0) == Begin(REPLAY, response(10))
