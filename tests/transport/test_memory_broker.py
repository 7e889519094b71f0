"""The in-process broker's own guarantees (the conformance suite covers the shared interface)."""

from __future__ import annotations

import asyncio

import pytest

from cucmconn.errors import TransportError
from cucmconn.transport import Message, open_transport
from cucmconn.transport.memory import MemoryBroker, MemoryTransport


async def _pair() -> tuple[MemoryTransport, MemoryTransport]:
    a, b = MemoryTransport(), MemoryTransport()
    await a.connect()
    await b.connect()
    return a, b


async def _settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_url_names_share_one_broker() -> None:
    a = open_transport("memory://x")
    b = open_transport("memory://x")
    c = open_transport("memory://y")
    assert isinstance(a, MemoryTransport) and isinstance(b, MemoryTransport)
    assert isinstance(c, MemoryTransport)
    assert a.broker is b.broker is MemoryBroker.get("x")
    assert c.broker is not a.broker


async def test_queue_round_robins_between_competing_consumers() -> None:
    a, b = await _pair()
    got: dict[str, list[bytes]] = {"one": [], "two": []}
    await b.subscribe("/queue/q", lambda m: got["one"].append(m.body))
    await b.subscribe("/queue/q", lambda m: got["two"].append(m.body))
    for i in range(10):
        await a.send("/queue/q", str(i))
    await _settle()
    assert len(got["one"]) == len(got["two"]) == 5
    assert sorted(got["one"] + got["two"], key=int) == [str(i).encode() for i in range(10)]


async def test_queue_keeps_messages_until_a_consumer_comes() -> None:
    a, b = await _pair()
    await a.send("/queue/q", "kept")
    await a.send("/queue/q", "expired", ttl=-1.0)
    got: list[Message] = []
    await b.subscribe("/queue/q", got.append)
    await _settle()
    assert [m.body for m in got] == [b"kept"]
    assert a.broker.stats.expired == 1


async def test_topic_fans_out_and_drops_without_subscribers() -> None:
    a, b = await _pair()
    await a.send("/topic/t", "nobody")
    seen: list[bytes] = []
    await a.subscribe("/topic/t", lambda m: seen.append(m.body))
    await b.subscribe("/topic/t", lambda m: seen.append(m.body))
    await a.send("/topic/t", "everyone")
    await _settle()
    assert seen == [b"everyone", b"everyone"]
    assert a.broker.stats.dropped_no_subscriber == 1


async def test_headers_follow_activemq_mapping() -> None:
    a, b = await _pair()
    got: list[Message] = []
    await b.subscribe("/queue/q", got.append)
    await a.send(
        "/queue/q",
        "Zoë 😀",
        jms_type="MakeCall#1001",
        correlation_id="c-1",
        reply_to="/topic/me",
        ttl=5.0,
    )
    await _settle()
    (m,) = got
    assert m.jms_type == "MakeCall#1001"
    assert m.correlation_id == "c-1"
    assert m.reply_to == "/topic/me"
    assert m.expires is not None and m.message_id
    assert m.body.decode() == "Zoë 😀"
    assert "content-length" not in m.headers


async def test_sender_waits_when_the_broker_is_full() -> None:
    broker = MemoryBroker("small", max_pending=4)
    a = MemoryTransport(broker=broker)
    await a.connect()
    got: list[bytes] = []
    await a.subscribe("/queue/q", lambda m: got.append(m.body))
    sends = [asyncio.ensure_future(a.send("/queue/q", str(i))) for i in range(20)]
    await asyncio.sleep(0)
    assert broker.pending <= broker.max_pending  # bounded, not 20 deep
    await asyncio.gather(*sends)
    await _settle()
    assert sorted(int(x) for x in got) == list(range(20))


async def test_handler_error_is_counted_and_delivery_goes_on() -> None:
    a, b = await _pair()
    got: list[bytes] = []

    def bad(m: Message) -> None:
        raise RuntimeError("boom")

    await b.subscribe("/topic/t", bad)
    await b.subscribe("/topic/t", lambda m: got.append(m.body))
    await a.send("/topic/t", "x")
    await _settle()
    assert got == [b"x"]
    assert a.broker.stats.handler_errors == 1


async def test_simulated_disconnect_stops_delivery_and_tells_listener() -> None:
    a, b = await _pair()
    events: list[str] = []

    class Listener:
        def connection_lost(self, exc: BaseException | None) -> None:
            events.append("lost")

        def connection_restored(self) -> None:
            events.append("restored")

    got: list[bytes] = []
    b.set_listener(Listener())
    await b.subscribe("/topic/t", lambda m: got.append(m.body))
    b.simulate_disconnect()
    await a.send("/topic/t", "missed")
    with pytest.raises(TransportError):
        await b.send("/topic/t", "x")
    b.simulate_reconnect()
    await a.send("/topic/t", "seen")
    await _settle()
    assert events == ["lost", "restored"]
    assert got == [b"seen"]
