"""Random ids shaped like the API's (`req_011C…`, `msg_01…`), from an injected generator.

Hex digits rather than the API's base62: as opaque, and an order of magnitude cheaper to make.
"""

from __future__ import annotations

import random


class Ids:
    def __init__(self, rng: random.Random) -> None:
        self._bits = rng.getrandbits

    def request(self) -> str:
        return f"req_011C{self._bits(80):020x}"

    def message(self) -> str:
        return f"msg_01{self._bits(88):022x}"
