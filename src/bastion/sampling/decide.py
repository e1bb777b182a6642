"""Which finished requests become samples: a pure decision, tested with a table.

A failure is judged from the client's side: any status outside 2xx, any outcome other than
"ok" (upstream errors, timeouts, broken streams, client disconnects, schema breaks), Bastion's
own refusals included (budget, rate_limit, validation …: the caller did not get an answer), and
the static fallback (a canned text, not the model's). Idempotent replays are never sampled: the
first request was, under its own id.
"""

from __future__ import annotations

from typing import Literal

Reason = Literal["rate", "failure"]


def is_failure(status: int, outcome: str, fallback: str | None) -> bool:
    return not 200 <= status < 300 or outcome != "ok" or fallback == "static"


def keep(
    status: int, outcome: str, fallback: str | None, *, rate: float, failures: bool, draw: float
) -> Reason | None:
    """Why to store this request, or None. `draw` is uniform in [0, 1), taken at its start.

    A failure is kept as "failure" even when the draw also selected it, so every failure is
    found by reason and the "rate" rows stay an unbiased sample of the rest.
    """
    if outcome == "replayed":
        return None
    if failures and is_failure(status, outcome, fallback):
        return "failure"
    if draw < rate:
        return "rate"
    return None
