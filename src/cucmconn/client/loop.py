"""``run()``: asyncio.run on uvloop when it is installed, without touching the global policy.

Importing cucmconn must never change how the application's other code gets its loop, so uvloop
is chosen per call through ``asyncio.Runner(loop_factory=...)`` instead of ``uvloop.install()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_factory", "run"]

T = TypeVar("T")


def loop_factory(use_uvloop: bool = True) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor when wanted and installed, else None (asyncio's default)."""
    if not use_uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool = True, debug: bool | None = None) -> T:
    """Run ``main`` to completion on a fresh loop (uvloop when available), then close it."""
    with asyncio.Runner(debug=debug, loop_factory=loop_factory(use_uvloop)) as runner:
        return runner.run(main)
