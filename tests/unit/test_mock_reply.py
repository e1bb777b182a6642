"""The mock's deterministic reply: echo, max_tokens truncation, stop sequences."""

from __future__ import annotations

import pytest

from bastion.mock.reply import GREETING, NO_TEXT, compose_reply, last_user_text

USER = [{"role": "user", "content": "Tell me a story about a dragon"}]
FULL = f"{GREETING} Tell me a story about a dragon"


def test_reply_echoes_the_last_user_message() -> None:
    reply = compose_reply(USER, 1000)
    assert reply.text == FULL
    assert reply.stop_reason == "end_turn"
    assert reply.stop_sequence is None
    assert reply.output_tokens == len(FULL.split())


def test_reply_is_deterministic_and_echoes_at_most_ten_words() -> None:
    messages = [{"role": "user", "content": " ".join(f"w{i}" for i in range(30))}]
    first, second = compose_reply(messages, 1000), compose_reply(messages, 1000)
    assert first == second
    assert first.text == GREETING + " " + " ".join(f"w{i}" for i in range(10))


@pytest.mark.parametrize(
    ("messages", "text"),
    [
        ([{"role": "user", "content": "a b"}], "a b"),
        (
            [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "reply"},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}],
                },
            ],
            "x y",
        ),
        ([{"role": "user", "content": [{"type": "image", "source": {}}]}], ""),
        ([{"role": "assistant", "content": "prefill"}], ""),
    ],
)
def test_last_user_text(messages: list[dict[str, object]], text: str) -> None:
    assert last_user_text(messages) == text


def test_no_text_gets_a_fixed_sentence() -> None:
    reply = compose_reply([{"role": "user", "content": [{"type": "image", "source": {}}]}], 100)
    assert reply.text == NO_TEXT


@pytest.mark.parametrize(
    ("max_tokens", "text", "reason"),
    [
        (0, "", "max_tokens"),
        (1, "Hello", "max_tokens"),
        (3, "Hello from the", "max_tokens"),
        (len(FULL.split()), FULL, "end_turn"),
    ],
)
def test_max_tokens_truncates_to_that_many_words(max_tokens: int, text: str, reason: str) -> None:
    reply = compose_reply(USER, max_tokens)
    assert (reply.text, reply.stop_reason, reply.output_tokens) == (text, reason, max_tokens)


@pytest.mark.parametrize(
    ("stops", "text", "matched"),
    [
        (["story"], f"{GREETING} Tell me a ", "story"),
        (["dragon", "Tell"], f"{GREETING} ", "Tell"),
        (["absent"], FULL, None),
        (["Hello"], "", "Hello"),
    ],
)
def test_stop_sequences_cut_before_the_first_match(
    stops: list[str], text: str, matched: str | None
) -> None:
    reply = compose_reply(USER, 1000, stops)
    assert reply.text == text
    assert reply.stop_sequence == matched
    assert reply.stop_reason == ("stop_sequence" if matched else "end_turn")


def test_max_tokens_wins_over_a_later_stop_sequence() -> None:
    reply = compose_reply(USER, 2, ["dragon"])
    assert (reply.text, reply.stop_reason, reply.stop_sequence) == (
        "Hello from",
        "max_tokens",
        None,
    )
