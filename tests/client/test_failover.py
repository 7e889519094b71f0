"""Connector-aware failover logic on memory:// (the two-broker system tests run it on ActiveMQ).

``Pair`` is a transport over two in-process brokers that implements ``switch_broker`` the way
the contract says: the listener hears ``connection_lost`` then ``connection_restored``, and the
subscriptions move along.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from cucmconn import Client, ServiceUnavailable
from cucmconn.transport import MessageHandler, TransportListener
from cucmconn.transport.memory import MemoryBroker, MemoryTransport
from tests.fakeconnector import FakeConnector
from tests.waiting import waiter

until = waiter(10.0)


class Pair:
    """A transport on broker ``a`` or ``b`` of a failover list."""

    def __init__(self) -> None:
        self.links = {name: MemoryTransport(broker=MemoryBroker.get(name)) for name in "ab"}
        self.on = "a"
        self.moves = 0
        self._listener: TransportListener | None = None
        self._subs: dict[str, tuple[str, MessageHandler, str]] = {}

    @property
    def link(self) -> MemoryTransport:
        return self.links[self.on]

    connected = property(lambda self: self.link.connected)
    display_url = property(lambda self: "failover:(memory://a,memory://b)")
    write_blocked = property(lambda self: False)
    flow_control_held = property(lambda self: 0.0)

    async def connect(self) -> None:
        await self.link.connect()

    async def close(self) -> None:
        for link in self.links.values():
            await link.close()

    async def send(self, destination: str, body: str, **options: Any) -> None:
        await self.link.send(destination, body, **options)

    async def flush(self) -> None:
        await self.link.flush()

    async def subscribe(self, destination: str, handler: MessageHandler, **options: Any) -> str:
        sub = await self.link.subscribe(destination, handler)
        self._subs[sub] = (destination, handler, sub)
        return sub

    async def unsubscribe(self, subscription_id: str) -> None:
        _, _, actual = self._subs.pop(subscription_id, ("", None, subscription_id))
        await self.link.unsubscribe(actual)

    def set_listener(self, listener: TransportListener | None) -> None:
        self._listener = listener

    async def switch_broker(self, reason: str) -> bool:
        old = self.link
        for _, _, actual in self._subs.values():
            await old.unsubscribe(actual)
        await old.close()
        if self._listener is not None:
            self._listener.connection_lost(ConnectionResetError(reason))
        self.on = "b" if self.on == "a" else "a"
        self.moves += 1
        await self.link.connect()
        moved: Mapping[str, tuple[str, MessageHandler, str]] = dict(self._subs)
        for key, (destination, handler, _) in moved.items():
            actual = await self.link.subscribe(destination, handler)
            self._subs[key] = (destination, handler, actual)
        if self._listener is not None:
            self._listener.connection_restored()
        return True


@pytest.fixture
async def on_b() -> AsyncIterator[FakeConnector]:
    connector = await FakeConnector(MemoryTransport(broker=MemoryBroker.get("b"))).start()
    yield connector
    await connector.stop()


def make_client(pair: Pair, **options: Any) -> Client:
    options.setdefault("connect_timeout", 0.1)
    options.setdefault("handshake_timeout", 5.0)
    return Client(transport=pair, client_destination="crm-fo", **options)


async def test_no_answer_on_a_moves_to_b(on_b: FakeConnector) -> None:
    pair = Pair()
    async with make_client(pair) as client:
        assert pair.on == "b" and client.in_service
        assert client.stats().broker_switches == 1
        await client.agent("1").login()


async def test_an_out_of_service_answer_keeps_the_client_where_it_is(on_b: FakeConnector) -> None:
    """A connector that answers OUT_OF_SERVICE is there: CUCM is down, not the connector."""
    on_a = await FakeConnector(MemoryTransport(broker=MemoryBroker.get("a"))).start()
    on_a.in_service = False
    pair = Pair()
    try:
        with pytest.raises(ServiceUnavailable):
            await make_client(pair, handshake_timeout=0.5).connect()
        assert pair.moves == 0
    finally:
        await on_a.stop()


async def test_the_client_follows_a_connector_that_moves(on_b: FakeConnector) -> None:
    pair = Pair()
    async with make_client(pair, keepalive=0.1) as client:
        assert pair.on == "b"
        await on_b.stop()  # the connector leaves b ...
        on_a = await FakeConnector(MemoryTransport(broker=MemoryBroker.get("a"))).start()
        try:  # ... and serves on a: the Beat goes unanswered, Hello too, the client moves
            await until(lambda: pair.on == "a" and client.in_service)
            assert client.stats().broker_switches == 2
            await client.agent("2").get_state()
        finally:
            await on_a.stop()
