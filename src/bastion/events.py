"""Operational events (breaker transitions, operator actions): one JSON line each on stderr.

The access log (one line per request) goes to stdout from the record writer; these are the
rarer events an on-call engineer greps for, kept apart from it.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import orjson


def emit(event: str, stream: TextIO | None = None, **fields: object) -> None:
    line = orjson.dumps({"event": event, "time": time.time(), **fields}).decode()
    out = stream or sys.stderr
    out.write(line + "\n")
    out.flush()
