"""Cost in micro-dollars: hand-computed against the packaged catalog, body and stream alike.

Prices in micro-dollars (µ$) per million tokens: Opus 5.5 4e6 / 20e6, 5m 5e6, 1h 8e6, read 0.2e6;
Sonnet 5.5 2e6 / 10e6, read 0.1e6; Fable 5.2 8e6 / 40e6, 5m 10e6, 1h 16e6, read 0.2e6;
Haiku 5.5 0.1e6 / 0.5e6, 5m 0.125e6, 1h 0.2e6, read 0.01e6, and above 100,000 prompt tokens
0.5e6 / 2.5e6, 5m 0.625e6, 1h and read unknown. cost = Σ tokens × price / 1,000,000, rounded once.
"""

from __future__ import annotations

import itertools

import orjson
import pytest

from bastion.pricing.catalog import Catalog, load_catalog
from bastion.pricing.cost import cost_micros, worst_case_cost_micros
from bastion.streaming.usage import StreamObserver, observe_message
from bastion.types import Usage

CATALOG: Catalog = load_catalog()

OPUS, SONNET, FABLE = "claude-opus-5-5", "claude-sonnet-5-5", "claude-fable-5-2"
HAIKU, MYTHOS = "claude-haiku-5-5", "claude-mythos-5-2"

# Usage(input, output, cache_read, cache_write_5m, cache_write_1h)
COST_CASES = [
    # 1,000 × 4e6 + 500 × 20e6 = 4e9 + 10e9 = 14e9 → 14,000 µ$
    pytest.param(OPUS, Usage(1_000, 500), 14_000, id="opus-5.5 input+output"),
    # 10,000 × 5e6 = 50e9 → 50,000
    pytest.param(OPUS, Usage(0, 0, 0, 10_000), 50_000, id="opus-5.5 cache write 5m"),
    # 10,000 × 8e6 = 80e9 → 80,000
    pytest.param(OPUS, Usage(0, 0, 0, 0, 10_000), 80_000, id="opus-5.5 cache write 1h"),
    # 100,000 × 0.2e6 (0.05 × input) = 20e9 → 20,000
    pytest.param(OPUS, Usage(0, 0, 100_000), 20_000, id="opus-5.5 cache read 0.05x"),
    # 1,234 × 4e6 = 4.936e9; 567 × 20e6 = 11.34e9; 50,000 × 0.2e6 = 10e9;
    # 3,000 × 5e6 = 15e9; 2,000 × 8e6 = 16e9 → 57.276e9 → 57,276
    pytest.param(OPUS, Usage(1_234, 567, 50_000, 3_000, 2_000), 57_276, id="opus-5.5 all mixed"),
    # 2,000 × 2e6 + 1,000 × 10e6 = 4e9 + 10e9 → 14,000
    pytest.param(SONNET, Usage(2_000, 1_000), 14_000, id="sonnet-5.5 input+output"),
    # 10 × 2e6 = 0.02e9; 100,000 × 0.1e6 (0.05 × input) = 10e9 → 10.02e9 → 10,020
    pytest.param(SONNET, Usage(10, 0, 100_000), 10_020, id="sonnet-5.5 cache read 0.05x"),
    # 100 × 8e6 = 0.8e9; 1,000 × 40e6 = 40e9; 200,000 × 0.2e6 (0.025 × input) = 40e9 → 80,800
    pytest.param(FABLE, Usage(100, 1_000, 200_000), 80_800, id="fable-5.2 cache read 0.025x"),
    # 1,000 × 10e6 + 1,000 × 16e6 = 10e9 + 16e9 → 26,000
    pytest.param(FABLE, Usage(0, 0, 0, 1_000, 1_000), 26_000, id="fable-5.2 cache writes"),
    # prompt exactly 100,000: base prices. 100,000 × 0.1e6 = 10e9; 1,000 × 0.5e6 = 0.5e9 → 10,500
    pytest.param(HAIKU, Usage(100_000, 1_000), 10_500, id="haiku-5.5 at 100K is below tier"),
    # prompt 40,000 + 50,000 + 10,000 = 100,000: base. 40,000 × 0.1e6 = 4e9;
    # 50,000 × 0.01e6 = 0.5e9; 10,000 × 0.125e6 = 1.25e9 → 5.75e9 → 5,750
    pytest.param(HAIKU, Usage(40_000, 0, 50_000, 10_000), 5_750, id="haiku-5.5 mixed at 100K"),
    # prompt 100,001: tier. 100,001 × 0.5e6 = 50,000,500,000; 1,000 × 2.5e6 = 2.5e9
    # → 52,500,500,000 / 1e6 = 52,500.5 → half up → 52,501
    pytest.param(HAIKU, Usage(100_001, 1_000), 52_501, id="haiku-5.5 above tier, half up"),
    # prompt 110,000: tier. 60,000 × 0.5e6 = 30e9; 50,000 × 0.625e6 = 31.25e9;
    # 2,000 × 2.5e6 = 5e9 → 66.25e9 → 66,250 (tier read and 1h unknown but not needed)
    pytest.param(
        HAIKU, Usage(60_000, 2_000, 0, 50_000), 66_250, id="haiku-5.5 tier, unknown unneeded"
    ),
    # prompt 90,000 + 20,000 = 110,000: tier, and its cache-read price is unknown → None
    pytest.param(HAIKU, Usage(90_000, 10, 20_000), None, id="haiku-5.5 tier read unknown"),
    # prompt 110,000: tier, and its 1h-write price is unknown → None
    pytest.param(HAIKU, Usage(90_000, 10, 0, 0, 20_000), None, id="haiku-5.5 tier 1h unknown"),
    # prompt 95,000: base. 90,000 × 0.1e6 = 9e9; 10 × 0.5e6 = 5e6; 5,000 × 0.01e6 = 50e6
    # → 9,055,000,000 → 9,055
    pytest.param(HAIKU, Usage(90_000, 10, 5_000), 9_055, id="haiku-5.5 below tier read known"),
    # 5 × 0.1e6 = 500,000 → 0.5 µ$ → half up → 1
    pytest.param(HAIKU, Usage(5), 1, id="half rounds up"),
    # 4 × 0.1e6 = 400,000 → 0.4 µ$ → 0
    pytest.param(HAIKU, Usage(4), 0, id="below half rounds down"),
    # 15 × 0.1e6 = 1,500,000 → 1.5 µ$ → 2
    pytest.param(HAIKU, Usage(15), 2, id="one and a half rounds up"),
    # 50 × 0.01e6 = 500,000 → 0.5 µ$ → 1
    pytest.param(HAIKU, Usage(0, 0, 50), 1, id="half a micro-dollar of cache read"),
    # 5 × 0.1e6 + 1 × 0.5e6 = 1,000,000 → exactly 1 (rounding per field would say 2)
    pytest.param(HAIKU, Usage(5, 1), 1, id="divide once, not per field"),
    # 1e6 × 1e6 + 1e6 × 5e6 = 6e12 → 6,000,000 µ$ = $6
    pytest.param(
        "claude-haiku-4-5-20251001", Usage(1_000_000, 1_000_000), 6_000_000, id="haiku-4.5"
    ),
    # 1,000 × 3.75e6 = 3.75e9 → 3,750 (alias priced as its target)
    pytest.param("claude-sonnet-4-5", Usage(0, 0, 0, 1_000), 3_750, id="sonnet-4.5 alias"),
    # 1e6 × 1e6 (1.00 = 0.1 × input) = 1e12 → 1,000,000
    pytest.param("claude-fable-5", Usage(0, 0, 1_000_000), 1_000_000, id="fable-5 read 0.1x"),
    pytest.param("claude-3-opus-20240229", Usage(1_000, 1_000), None, id="unknown model"),
    pytest.param(MYTHOS, Usage(1_000, 1_000), None, id="unknown price needed"),
    pytest.param(MYTHOS, Usage(), 0, id="unknown prices, none needed"),
    pytest.param(OPUS, Usage(), 0, id="nothing used"),
]


@pytest.mark.parametrize(("model_id", "usage", "expected"), COST_CASES)
def test_cost_micros(model_id: str, usage: Usage, expected: int | None) -> None:
    assert cost_micros(usage, CATALOG.get(model_id)) == expected


def test_unknown_model_is_none_not_zero() -> None:
    assert cost_micros(Usage(), None) is None


@pytest.mark.parametrize(
    ("model_id", "input_bound", "max_tokens", "expected"),
    [
        # highest input-side price is the 1h write, 8e6: 10,000 × 8e6 + 1,000 × 20e6 = 100e9
        pytest.param(OPUS, 10_000, 1_000, 100_000, id="opus-5.5"),
        # bound not above 100K: base only; 1h write 0.2e6 highest.
        # 100,000 × 0.2e6 + 1,000 × 0.5e6 = 20e9 + 0.5e9 → 20,500
        pytest.param(HAIKU, 100_000, 1_000, 20_500, id="haiku-5.5 at the tier"),
        # above 100K: tier's highest known input-side price 0.625e6 beats base's 0.2e6.
        # 200,000 × 0.625e6 + 1,000 × 2.5e6 = 125e9 + 2.5e9 → 127,500
        pytest.param(HAIKU, 200_000, 1_000, 127_500, id="haiku-5.5 above the tier"),
        # 1 × 0.2e6 = 200,000 → 0.2 µ$ → rounded up to 1
        pytest.param(HAIKU, 1, 0, 1, id="rounds up"),
        pytest.param(MYTHOS, 1_000, 1_000, None, id="no prices"),
        pytest.param(MYTHOS, 0, 0, 0, id="no prices, nothing to price"),
        pytest.param("claude-3-opus-20240229", 1, 1, None, id="unknown model"),
    ],
)
def test_worst_case_cost_micros(
    model_id: str, input_bound: int, max_tokens: int, expected: int | None
) -> None:
    assert worst_case_cost_micros(input_bound, max_tokens, CATALOG.get(model_id)) == expected


@pytest.mark.parametrize(("model_id", "usage", "expected"), COST_CASES[:12])
def test_worst_case_bounds_the_real_cost(model_id: str, usage: Usage, expected: int) -> None:
    worst = worst_case_cost_micros(usage.prompt_tokens, usage.output_tokens, CATALOG.get(model_id))
    assert worst is not None and worst >= expected


# One call, told twice: as a non-streaming body and as an SSE stream whose message_delta events
# carry cumulative usage (the last restates the input side, as with server tools).
USAGE = {
    "input_tokens": 1_234,
    "output_tokens": 567,
    "cache_read_input_tokens": 50_000,
    "cache_creation_input_tokens": 5_000,
    "cache_creation": {"ephemeral_5m_input_tokens": 3_000, "ephemeral_1h_input_tokens": 2_000},
}
BODY = orjson.dumps(
    {"id": "msg_1", "type": "message", "model": OPUS, "stop_reason": "end_turn", "usage": USAGE}
)


def frame(event: str, payload: dict[str, object]) -> bytes:
    return (
        b"event: "
        + event.encode()
        + b"\ndata: "
        + orjson.dumps({"type": event, **payload})
        + b"\n\n"
    )


STREAM = b"".join(
    [
        frame(
            "message_start",
            {"message": {"id": "msg_1", "model": OPUS, "usage": {**USAGE, "output_tokens": 1}}},
        ),
        frame("ping", {}),
        frame("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        frame("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        frame("message_delta", {"delta": {"stop_reason": None}, "usage": {"output_tokens": 100}}),
        frame("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "!"}}),
        frame("message_delta", {"delta": {"stop_reason": None}, "usage": {"output_tokens": 400}}),
        frame("content_block_stop", {"index": 0}),
        frame(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn"},
                "usage": {
                    "output_tokens": 567,
                    "input_tokens": 1_234,
                    "cache_read_input_tokens": 50_000,
                    "cache_creation_input_tokens": 5_000,
                },
            },
        ),
        frame("message_stop", {}),
    ]
)


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks: list[bytes] = []
    start, cycle = 0, itertools.cycle(sizes)
    while start < len(data):
        size = next(cycle)
        chunks.append(data[start : start + size])
        start += size
    return chunks


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
@pytest.mark.parametrize(
    "sizes", [[1], [2], [13], [64], [1, 7, 3, 50, 2, 200], [len(STREAM) * 2]], ids=str
)
def test_stream_costs_exactly_what_the_body_costs(sizes: list[int], crlf: bool) -> None:
    stream = STREAM.replace(b"\n", b"\r\n") if crlf else STREAM
    observer = StreamObserver()
    for index, chunk in enumerate(chunked(stream, sizes)):
        observer.observe(chunk, now=float(index))
    body = observe_message(BODY)
    model = CATALOG.get(OPUS)
    assert observer.saw_message_stop and observer.stop_reason == "end_turn"
    assert observer.usage == body.usage == Usage(1_234, 567, 50_000, 3_000, 2_000)
    assert cost_micros(observer.usage, model) == cost_micros(body.usage, model) == 57_276
