"""Suite-wide set-up for tests and benchmarks: codec backend, event loops, real-broker fixtures.

Every async test runs once per loop in ``CUCMCONN_TEST_LOOPS`` (default: asyncio and, when it
is installed, uvloop), so the SDK is proven on both.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from cucmconn import codec

pytest_plugins = ["tests.activemq"]


def _loop_factories() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    wanted = os.environ.get("CUCMCONN_TEST_LOOPS", "asyncio,uvloop").split(",")
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {}
    for name in (w.strip() for w in wanted):
        if name == "asyncio":
            factories["asyncio"] = asyncio.new_event_loop
        elif name == "uvloop":
            try:
                import uvloop
            except ImportError:
                continue
            factories["uvloop"] = uvloop.new_event_loop
    return factories or {"asyncio": asyncio.new_event_loop}


_FACTORIES = _loop_factories()


def pytest_asyncio_loop_factories(config: Any, item: Any) -> Mapping[str, Any]:
    return _FACTORIES


def pytest_report_header(config: Any) -> list[str]:
    return [
        f"cucmconn codec backend: {codec.codec_backend()}",
        f"cucmconn event loops: {', '.join(_FACTORIES)}",
    ]


@pytest.fixture(autouse=True)
def _fresh_memory_broker() -> None:
    """Each test gets empty in-process brokers, so no test sees another's leftovers."""
    from cucmconn.transport.memory import MemoryBroker

    MemoryBroker.reset()
