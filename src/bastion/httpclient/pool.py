"""Keep-alive connections to one origin: at most `limit` open, idle ones expire, callers queue.

A connection is either lent out (to one request) or idle here. `release` takes back one whose
response was read to the end; `discard` closes one that cannot be trusted (half read, broken,
`Connection: close`). When the pool is full, `acquire` waits for a released connection or for
a slot that a discarded one freed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from bastion.httpclient.connection import Connection

Connect = Callable[[float], Awaitable[Connection]]
"""Opens a new connection within the given connect timeout (seconds)."""


class Pool:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, connect: Connect, limit: int, keepalive_s: float
    ) -> None:
        self._loop = loop
        self._connect = connect
        self._limit = limit
        self._keepalive_s = keepalive_s
        self._idle: deque[Connection] = deque()  # most recently used on the right
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        self._sweep: asyncio.TimerHandle | None = None
        self.open = 0

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def acquire(self, connect_s: float, *, fresh: bool = False) -> Connection:
        """An idle connection (marked `reused`), or a new one once a slot is free.

        `fresh` skips the idle ones: the retry after a stale one must not meet another.
        """
        now = self._loop.time()
        while self._idle and not fresh:
            conn = self._idle.pop()
            if conn.closed or now - conn.idle_since > self._keepalive_s:
                self._drop(conn)
                continue
            conn.reused = True
            return conn
        if self.open >= self._limit:
            handed = await self._wait()
            if handed is not None:
                return handed
        else:
            self.open += 1
        try:
            conn = await self._connect(connect_s)
        except BaseException:
            self._free_slot()
            raise
        conn.on_idle_lost, conn.counted = self._lost, True
        return conn

    def release(self, conn: Connection) -> None:
        """Take back a connection whose response was read whole; discard it if not reusable."""
        if conn.closed or not conn.keep_alive or not conn.complete:
            self.discard(conn)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                conn.reused = True
                waiter.set_result(conn)
                return
        conn.idle_since = self._loop.time()
        self._idle.append(conn)
        if self._sweep is None:
            self._sweep = self._loop.call_later(self._keepalive_s, self._expire)

    def discard(self, conn: Connection) -> None:
        """Close a lent connection and free its slot (once, however often it is called)."""
        self._drop(conn)

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        while self._idle:
            self._drop(self._idle.pop())

    async def _wait(self) -> Connection | None:
        waiter: asyncio.Future[Connection | None] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed over as we were cancelled
                handed = waiter.result()
                if handed is None:
                    self._free_slot()
                else:
                    self.release(handed)
            raise

    def _free_slot(self) -> None:
        """A slot is free: give it to the first live waiter, or count it free."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the waiter opens a new connection in this slot
                return
        self.open -= 1

    def _drop(self, conn: Connection) -> None:
        conn.on_idle_lost = None
        conn.abort()
        if conn.counted:
            conn.counted = False
            self._free_slot()

    def _lost(self, conn: Connection) -> None:
        """The server closed an idle connection: forget it at once (not only at next use)."""
        try:
            self._idle.remove(conn)
        except ValueError:
            return  # lent out: its request sees the close and discards it
        self._drop(conn)

    def _expire(self) -> None:
        self._sweep = None
        now = self._loop.time()
        while self._idle and now - self._idle[0].idle_since >= self._keepalive_s:
            self._drop(self._idle.popleft())
        if self._idle:
            due = self._idle[0].idle_since + self._keepalive_s - now
            self._sweep = self._loop.call_later(max(due, 0.01), self._expire)
