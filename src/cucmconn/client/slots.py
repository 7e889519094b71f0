"""A FIFO counting gate: the client's ``max_in_flight`` bound and each agent's one-at-a-time turn.

Why not ``asyncio.Semaphore``: docs/architecture.md.  A release hands its slot straight to the
oldest live waiter, O(1), and strict arrival order is kept (no barging): Cisco Finesse's rule
for one agent's commands, and what a caller queueing behind the bound expects.  The waiter queue
exists only while someone waits, so the one-slot gate of an idle agent costs a few dozen bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque

__all__ = ["DeadlineWheel", "Slots"]


class DeadlineWheel:
    """Deadlines for waiting futures, kept in ``resolution``-wide slots with one timer per
    slot, not one per waiter: a burst of thousands of commands queueing behind
    ``max_in_flight`` then costs a dict entry each instead of a timer-heap entry each.

    A future whose deadline passes gets ``TimeoutError``, never early and at most one
    ``resolution`` late (the pending table's deadline resolution is the same).
    """

    __slots__ = ("_slots", "resolution")

    def __init__(self, resolution: float = 0.05) -> None:
        self.resolution = resolution
        self._slots: dict[int, dict[asyncio.Future[None], None]] = {}

    def add(self, deadline: float, future: asyncio.Future[None]) -> int:
        """Fail ``future`` with TimeoutError at ``deadline`` (loop time); returns its slot."""
        key = math.ceil(deadline / self.resolution)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = {}
            asyncio.get_running_loop().call_at(key * self.resolution, self._fire, key)
        slot[future] = None
        return key

    def discard(self, key: int, future: asyncio.Future[None]) -> None:
        """``future`` no longer needs its deadline (it was served or cancelled)."""
        slot = self._slots.get(key)
        if slot is not None:
            slot.pop(future, None)

    def _fire(self, key: int) -> None:
        for future in self._slots.pop(key, {}):
            if not future.done():
                future.set_exception(TimeoutError())


class Slots:
    """At most ``limit`` holders; the rest wait in arrival order.

    ``try_acquire`` is the synchronous fast path (no coroutine when a slot is free); callers
    fall back to ``await acquire()`` and always pair a success with one ``release``.
    """

    __slots__ = ("_free", "_waiters", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, not {limit}")
        self.limit = limit
        self._free = limit
        self._waiters: deque[asyncio.Future[None]] | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiters) if self._waiters else 0

    def try_acquire(self) -> bool:
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    async def acquire(
        self, deadline: float | None = None, wheel: DeadlineWheel | None = None
    ) -> None:
        """Wait for a slot in arrival order; with ``deadline`` and ``wheel``, TimeoutError
        once the deadline passes (a waiter that timed out is skipped by later releases)."""
        if self.try_acquire():
            return
        if self._waiters is None:
            self._waiters = deque()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        key = wheel.add(deadline, waiter) if wheel is not None and deadline is not None else None
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release()  # handed a slot as we were cancelled: pass it on
            elif self._waiters:
                with contextlib.suppress(ValueError):  # already skipped by a release
                    self._waiters.remove(waiter)
            raise
        finally:
            if key is not None and wheel is not None:
                wheel.discard(key, waiter)

    def release(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot moves to the waiter: _free unchanged
                return
        self._waiters = None
        self._free += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()
