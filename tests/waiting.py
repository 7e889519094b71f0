"""Waiting for a condition in async tests: a bound the test then asserts on, never a speed check."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol


class Until(Protocol):
    def __call__(
        self, predicate: Callable[[], bool], limit: float = ..., what: str = ""
    ) -> Awaitable[float]: ...


def waiter(default_limit: float) -> Until:
    """An ``until(predicate, limit, what)`` whose limit defaults to ``default_limit`` seconds;
    it returns the seconds the condition took and fails with ``what`` when it never holds."""

    async def until(
        predicate: Callable[[], bool], limit: float = default_limit, what: str = ""
    ) -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while not predicate():
            if loop.time() - start > limit:
                raise AssertionError(f"not reached within {limit:g} s: {what or 'condition'}")
            await asyncio.sleep(0.005)
        return loop.time() - start

    return until
