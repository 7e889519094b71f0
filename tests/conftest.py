"""Fixtures shared by the layer folders (each folder's conftest adds its own)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cucmconn.transport.memory import MemoryTransport
from tests.fakeconnector import FakeConnector


@pytest.fixture
async def fake() -> AsyncIterator[FakeConnector]:
    """The scripted connector on the default memory:// broker (a test overrides it by name
    where it needs the connector elsewhere, e.g. on a real ActiveMQ)."""
    connector = await FakeConnector(MemoryTransport()).start()
    yield connector
    await connector.stop()
