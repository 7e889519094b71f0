"""Fixtures shared by the transport tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest


@pytest.fixture
async def closing() -> AsyncIterator[list[Any]]:
    """Transports (and proxies) appended here are closed after the test, pass or fail."""
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        with contextlib.suppress(Exception):
            await thing.close()
