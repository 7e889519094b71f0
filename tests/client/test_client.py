"""Unit tests of the asyncio client on memory:// against the scripted fake connector."""

from __future__ import annotations

import asyncio
import logging
import statistics
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest

import cucmconn
from cucmconn import (
    AgentInfo,
    AgentState,
    Client,
    CommandError,
    CommandTimeout,
    ConnectionLost,
    DialogState,
    EventsMayBeMissed,
    ServiceUnavailable,
    SlowConsumer,
    SystemStatus,
)
from cucmconn.client.slots import Slots
from cucmconn.client.stats import LatencyHistogram, StatsCounters
from cucmconn.client.streams import EventStream, StreamSet
from cucmconn.transport.memory import MemoryTransport
from tests.client.clients import memory_client
from tests.fakeconnector import NOW, FakeCommand, FakeConnector, Reply
from tests.waiting import waiter

DEST = "crm-1"
TOPIC = f"/topic/{DEST}"


until = waiter(5.0)


def make_client(**options: Any) -> Client:
    return memory_client(DEST, **options)


@pytest.fixture
async def client(fake: FakeConnector) -> AsyncIterator[Client]:
    async with make_client() as c:
        yield c


# -- handshake and wire format ----------------------------------------------------------------


async def test_handshake_sends_hello_with_reply_to_and_ttl(fake: FakeConnector) -> None:
    async with make_client() as client:
        assert client.in_service
        hello = fake.commands("Hello")[0]
        assert hello.target == DEST
        assert hello.reply_to == TOPIC
        assert hello.correlation_id
        assert int(hello.headers["expires"]) > 0
        assert hello.headers["persistent"] == "false"


async def test_url_client_uses_open_transport(fake: FakeConnector) -> None:
    async with Client("memory://", client_destination=DEST, connect_timeout=0.1) as client:
        assert client.in_service
        assert client.display_url == "memory://default"


async def test_default_destination_is_unique() -> None:
    first, second = Client("memory://"), Client("memory://")
    assert first.destination != second.destination
    assert first.destination.startswith("cucmconn-")


async def test_handshake_timeout_without_connector() -> None:
    client = make_client(handshake_timeout=0.35)
    with pytest.raises(CommandTimeout, match="no answer to Hello"):
        await client.connect()
    assert not client.in_service


async def test_handshake_out_of_service_raises_service_unavailable(fake: FakeConnector) -> None:
    fake.in_service = False
    client = make_client(handshake_timeout=0.35)
    with pytest.raises(ServiceUnavailable):
        await client.connect()
    assert len(fake.commands("Hello")) >= 2  # Hello repeated every connect_timeout


async def test_repr_has_no_credentials() -> None:
    client = Client("stomp://user:s3cret@127.0.0.1:61613", client_destination=DEST)
    assert "s3cret" not in repr(client)
    assert "127.0.0.1" in repr(client)


# -- commands and state -----------------------------------------------------------------------


async def test_login_returns_first_event_and_tracks_state(
    fake: FakeConnector, client: Client
) -> None:
    agent = client.agent("42031")
    assert client.agent("42031") is agent
    event = await agent.login()
    assert isinstance(event, AgentInfo)
    await until(lambda: agent.state == "READY")
    assert agent.logged_in
    assert agent.calls == {}
    login = fake.commands("Login")[0]
    assert login.args == (DEST,)
    assert login.correlation_id != fake.commands("Hello")[0].correlation_id


async def test_call_lifecycle_updates_calls(fake: FakeConnector, client: Client) -> None:
    agent = client.agent("42031")
    await agent.login()
    dialog = await agent.make_call("42032")
    assert isinstance(dialog, DialogState) and dialog.state == "INITIATED"
    cid = dialog.connection_id
    assert cid is not None
    assert agent.calls[cid].other_party == "42032"
    held = await agent.hold(cid)
    assert isinstance(held, DialogState) and held.state == "HELD"
    assert agent.calls[cid].state == "HELD"
    await agent.retrieve(cid)
    assert agent.calls[cid].state == "ACTIVE"
    dropped = await agent.release(cid)
    assert isinstance(dropped, DialogState) and dropped.state == "DROPPED"
    assert cid not in agent.calls


async def test_transfer_and_conference_bodies(fake: FakeConnector, client: Client) -> None:
    agent = client.agent("100")
    await agent.transfer("7")
    await agent.transfer("7", other="200")
    await agent.conference("8")
    await agent.conference("8", other="200")
    await agent.blind_transfer("9", other="300")
    consult = await agent.consult("10", other="400")
    assert isinstance(consult, DialogState) and consult.state == "INITIATED"
    await until(lambda: "10" in agent.calls)
    assert agent.calls["10"].state == "HELD"
    assert consult.connection_id is not None
    assert agent.calls[consult.connection_id].other_party == "400"
    assert [c.args for c in fake.commands("TransferCall")] == [("7",), ("200", "7")]
    assert [c.args for c in fake.commands("Conferencecall")] == [("8",), ("200", "8")]
    assert fake.commands("Transfer_sst")[0].args == ("300", "9")


async def test_inbound_call_tracked_and_answered(fake: FakeConnector, client: Client) -> None:
    agent = client.agent("42032")
    await agent.login()
    await fake.push(TOPIC, f"42032#InboundCall#ALERTING#{NOW}#555#42031")
    await until(lambda: "555" in agent.calls)
    assert agent.calls["555"].other_party == "42031"
    answered = await agent.answer("555")
    assert isinstance(answered, DialogState) and answered.state == "ACTIVE"
    assert agent.calls["555"].state == "ACTIVE"


async def test_logout_clears_logged_in(fake: FakeConnector, client: Client) -> None:
    agent = client.agent("1")
    await agent.login()
    event = await agent.logout()
    assert isinstance(event, AgentState) and event.state == "LOGOUT"
    assert not agent.logged_in


async def test_low_level_send_and_get_state(fake: FakeConnector, client: Client) -> None:
    event = await client.send("GetState", "77")
    assert isinstance(event, AgentState) and event.agent_id == "77"
    status = await client.send("Hello", DEST)
    assert isinstance(status, SystemStatus) and status.in_service


async def test_command_error_carries_code_and_advice(fake: FakeConnector, client: Client) -> None:
    fake.script["MakeCall"] = lambda c: [Reply(f"{c.target}#Error#PLEASE_RETRY")]
    with pytest.raises(CommandError) as info:
        await client.agent("5").make_call("6")
    assert info.value.code == "PLEASE_RETRY"
    assert info.value.target == "5"
    assert info.value.retriable
    assert "again" in info.value.advice.lower()
    assert client.stats().errors == 1


async def test_injection_refused_before_sending(fake: FakeConnector, client: Client) -> None:
    sent = len(fake.received)
    with pytest.raises(ValueError):
        client.agent("42,1")
    with pytest.raises(ValueError):
        await client.agent("5").make_call("6#Logout")
    with pytest.raises(ValueError):
        await client.send("MakeCall", "5", "1|2")
    assert len(fake.received) == sent
    assert client.stats().sent == sent


# -- deadlines, late replies, cancellation ----------------------------------------------------


async def test_timeout_by_sweeper_and_table_emptied(fake: FakeConnector, client: Client) -> None:
    fake.hold.add("GetState")
    results = await asyncio.gather(
        *(client.agent(str(i)).get_state(ttl=0.2) for i in range(50)), return_exceptions=True
    )
    assert all(isinstance(r, CommandTimeout) for r in results)
    stats = client.stats()
    assert stats.timeouts == 50
    assert stats.in_flight == 0


async def test_late_reply_counted_and_not_delivered(fake: FakeConnector, client: Client) -> None:
    fake.hold.add("GetState")
    with pytest.raises(CommandTimeout):
        await client.agent("9").get_state(ttl=0.15)
    fake.hold.clear()
    await fake.reply(fake.held[0], Reply(f"9#AgentState#TALKING#{NOW}"))
    await until(lambda: client.stats().late == 1)
    event = await client.agent("9").get_state()
    assert isinstance(event, AgentState) and event.state == "READY"
    assert client.agent("9").state == "READY"


async def test_cancelled_request_reply_never_reaches_next_caller(
    fake: FakeConnector, client: Client
) -> None:
    """redis-py CVE-2023-28858: a cancelled request's reply must not answer the next one."""
    fake.hold.add("GetState")
    agent = client.agent("11")
    first = asyncio.create_task(agent.get_state())
    await until(lambda: len(fake.held) == 1)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    second = asyncio.create_task(agent.get_state())
    await until(lambda: len(fake.held) == 2)
    await fake.reply(fake.held[0], Reply(f"11#AgentState#NOT_READY#{NOW}"))
    await until(lambda: client.stats().late == 1)
    assert not second.done()
    await fake.reply(fake.held[1], Reply(f"11#AgentState#TALKING#{NOW}"))
    event = await second
    assert isinstance(event, AgentState) and event.state == "TALKING"
    assert client.stats().cancelled == 1


async def test_follow_up_correlated_events_are_not_late(
    fake: FakeConnector, client: Client
) -> None:
    agent = client.agent("12")
    stream = agent.events()
    await agent.login()  # AgentInfo resolves; AgentState and DialogState follow, same id
    await until(lambda: len(stream) == 3)
    assert client.stats().late == 0


# -- fallback matching (no correlation id) ----------------------------------------------------


async def test_fallback_matches_agent_and_expected_event(fake: FakeConnector) -> None:
    fake.script["MakeCall"] = lambda c: [
        Reply(f"{c.target}#AgentState#TALKING#{NOW}", correlated=False),  # not expected
        Reply(f"{c.target}#DialogState#INITIATED#{NOW}#77#{c.target},2", correlated=False),
    ]
    async with make_client(correlate_fallback=True) as client:
        event = await client.agent("1").make_call("2")
    assert isinstance(event, DialogState) and event.connection_id == "77"


async def test_fallback_checks_connection_id(fake: FakeConnector) -> None:
    fake.script["HoldCall"] = lambda c: [
        Reply(f"{c.target}#DialogState#HELD#{NOW}#999#{c.target},2", correlated=False),
        Reply(f"{c.target}#DialogState#HELD#{NOW}#{c.args[0]}#{c.target},2", correlated=False),
    ]
    async with make_client(correlate_fallback=True) as client:
        event = await client.agent("1").hold("5")
    assert isinstance(event, DialogState) and event.connection_id == "5"


async def test_auto_fallback_stops_once_the_connector_echoes_ids(fake: FakeConnector) -> None:
    """Another party's id-less update must not resolve our command (the conference case)."""
    fake.script["MakeCall"] = lambda c: [
        Reply(f"{c.target}#DialogState#INITIATED#{NOW}#77#{c.target},2", correlated=False)
    ]
    async with make_client() as client:  # "auto"; the Hello answer echoed our id
        stream = client.events()
        with pytest.raises(CommandTimeout):
            await client.agent("1").make_call("2", ttl=0.2)
        item = stream.get_nowait()
    assert isinstance(item, DialogState) and item.connection_id == "77"


async def test_auto_fallback_serves_a_connector_that_never_echoes(fake: FakeConnector) -> None:
    fake.script["Hello"] = lambda c: [Reply("System#IN_SERVICE", correlated=False)]
    fake.script["MakeCall"] = lambda c: [
        Reply(f"{c.target}#DialogState#INITIATED#{NOW}#77#{c.target},2", correlated=False)
    ]
    async with make_client() as client:
        event = await client.agent("1").make_call("2")
    assert isinstance(event, DialogState) and event.connection_id == "77"


async def test_fallback_off_only_routes_to_streams(fake: FakeConnector) -> None:
    fake.script["MakeCall"] = lambda c: [
        Reply(f"{c.target}#DialogState#INITIATED#{NOW}#77#{c.target},2", correlated=False)
    ]
    async with make_client(correlate_fallback=False) as client:
        stream = client.events()
        with pytest.raises(CommandTimeout):
            await client.agent("1").make_call("2", ttl=0.2)
        item = stream.get_nowait()
    assert isinstance(item, DialogState) and item.connection_id == "77"


# -- malformed input --------------------------------------------------------------------------


async def test_malformed_events_counted_never_resolve(
    fake: FakeConnector, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cucmconn")
    fake.hold.add("GetState")
    task = asyncio.create_task(client.agent("3").get_state())
    await until(lambda: len(fake.held) == 1)
    cid = fake.held[0].correlation_id
    await fake.push(TOPIC, "SECRET-no-separator", correlation_id=cid)
    await fake.push(TOPIC, "\xff\x00garbage#")
    await fake.push(TOPIC, "{not json")
    await until(lambda: client.stats().malformed == 3)
    assert not task.done()
    await fake.reply(fake.held[0], Reply(f"3#AgentState#READY#{NOW}"))
    assert isinstance(await task, AgentState)
    assert "SECRET" not in caplog.text


# -- outages ----------------------------------------------------------------------------------


async def test_out_of_service_flips_fails_fast_and_hello_loop(
    fake: FakeConnector, client: Client
) -> None:
    fake.in_service = False
    await fake.push(TOPIC, "System#OUT_OF_SERVICE")
    await until(lambda: not client.in_service)
    sent = len(fake.commands("GetState"))
    with pytest.raises(ServiceUnavailable):
        await client.agent("1").get_state()
    assert len(fake.commands("GetState")) == sent  # failed fast, nothing sent
    hellos = len(fake.commands("Hello"))
    await until(lambda: len(fake.commands("Hello")) >= hellos + 2)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await client.wait_in_service()
    fake.in_service = True
    async with asyncio.timeout(5.0):
        await client.wait_in_service()
    assert client.in_service
    assert isinstance(await client.agent("1").get_state(), AgentState)


async def test_in_flight_command_survives_outage(fake: FakeConnector, client: Client) -> None:
    fake.hold.add("GetState")
    task = asyncio.create_task(client.agent("1").get_state())
    await until(lambda: len(fake.held) == 1)
    fake.in_service = False
    await fake.push(TOPIC, "System#OUT_OF_SERVICE")
    await until(lambda: not client.in_service)
    await fake.reply(fake.held[0], Reply(f"1#AgentState#READY#{NOW}"))
    assert isinstance(await task, AgentState)
    assert not client.in_service


async def test_correlated_out_of_service_raises(fake: FakeConnector, client: Client) -> None:
    fake.script["MakeCall"] = lambda c: [Reply("System#OUT_OF_SERVICE")]
    fake.in_service = False  # so the Hello loop that follows keeps it out of service
    with pytest.raises(ServiceUnavailable):
        await client.agent("1").make_call("2")
    assert not client.in_service


async def test_wait_for_service_waits_for_in_service(fake: FakeConnector) -> None:
    async with make_client(wait_for_service=True) as client:
        fake.in_service = False
        await fake.push(TOPIC, "System#OUT_OF_SERVICE")
        await until(lambda: not client.in_service)
        task = asyncio.create_task(client.agent("1").get_state())
        await until(lambda: len(fake.commands("Hello")) >= 3)
        assert not task.done()
        fake.in_service = True
        assert isinstance(await task, AgentState)


async def test_keepalive_beats_and_unanswered_beat(fake: FakeConnector) -> None:
    async with make_client(keepalive=0.05) as client:
        await until(lambda: len(fake.commands("Beat")) >= 2)
        assert client.in_service
        fake.hold.add("Beat")
        fake.in_service = False  # Hellos get OUT_OF_SERVICE: the flip stays observable
        await until(lambda: not client.in_service)
        hellos = len(fake.commands("Hello"))
        await until(lambda: len(fake.commands("Hello")) > hellos)
        fake.in_service = True
        await until(lambda: client.in_service)


async def test_back_in_service_resyncs_logged_in_agents(fake: FakeConnector) -> None:
    """An outage on a link that never dropped may hide a connector (or CUCM) restart: when
    IN_SERVICE returns, logged-in agents are re-read and the streams are told, once."""
    resynced: list[Client] = []
    async with make_client(on_resync=resynced.append) as client:
        agent = client.agent("42031")
        await agent.login()
        client.agent("42033")  # never logged in: not re-read
        stream = agent.events()
        before = len(fake.commands("GetState"))
        fake.in_service = False
        await fake.push(TOPIC, "System#OUT_OF_SERVICE")
        await until(lambda: not client.in_service)
        assert len(fake.commands("GetState")) == before  # nothing while it is down
        fake.in_service = True
        await until(lambda: resynced == [client])
        assert [c.target for c in fake.commands("GetState")[before:]] == ["42031"]
        assert isinstance(stream.get_nowait(), EventsMayBeMissed)
        await fake.push(TOPIC, "System#IN_SERVICE")  # already in service: no second resync
        await asyncio.sleep(0.05)
        assert resynced == [client]
        assert len(fake.commands("GetState")) == before + 1


# -- reconnect --------------------------------------------------------------------------------


async def test_connection_lost_fails_in_flight_and_resyncs(fake: FakeConnector) -> None:
    transport = MemoryTransport()
    resynced: list[Client] = []
    client = make_client(transport=transport, on_resync=resynced.append)
    async with client:
        agent = client.agent("42031")
        await agent.login()
        other = client.agent("42033")  # never logged in: not resynced
        client_stream, agent_stream = client.events(), agent.events()
        fake.hold.add("MakeCall")
        task = asyncio.create_task(agent.make_call("42032"))
        await until(lambda: len(fake.held) == 1)
        transport.simulate_disconnect()
        with pytest.raises(ConnectionLost):
            await task
        with pytest.raises(ConnectionLost):
            await other.get_state()
        assert len(fake.commands("MakeCall")) == 1
        hellos = len(fake.commands("Hello"))
        transport.simulate_reconnect()
        await until(lambda: resynced == [client])
        assert len(fake.commands("Hello")) > hellos
        assert [c.target for c in fake.commands("GetState")] == ["42031"]
        assert len(fake.commands("MakeCall")) == 1  # never re-sent
        assert isinstance(client_stream.get_nowait(), EventsMayBeMissed)
        assert isinstance(agent_stream.get_nowait(), EventsMayBeMissed)
        stats = client.stats()
        assert stats.reconnects == 1
        assert stats.connection_lost >= 1
        await fake.reply(fake.held[0], Reply(f"42031#DialogState#INITIATED#{NOW}#1#42031,42032"))
        await until(lambda: client.stats().late == 1)


async def test_close_fails_in_flight_and_ends_streams(fake: FakeConnector) -> None:
    client = make_client()
    await client.connect()
    stream = client.agent("1").events()
    fake.hold.add("GetState")
    task = asyncio.create_task(client.agent("1").get_state())
    await until(lambda: len(fake.held) == 1)
    await client.close()
    with pytest.raises(ConnectionLost):
        await task
    assert [item async for item in stream] == []
    with pytest.raises(ConnectionLost):
        await client.agent("1").get_state()
    with pytest.raises(ConnectionLost):
        await client.wait_in_service()


# -- backpressure -----------------------------------------------------------------------------


async def test_one_command_in_flight_per_agent(fake: FakeConnector, client: Client) -> None:
    fake.hold.add("MakeCall")
    agent = client.agent("1")
    first = asyncio.create_task(agent.make_call("2"))
    second = asyncio.create_task(agent.make_call("3"))
    other = asyncio.create_task(client.agent("9").make_call("4"))
    await until(lambda: len(fake.held) == 2)
    await asyncio.sleep(0.05)
    assert sorted(c.target for c in fake.held) == ["1", "9"]  # agent 1's second waits
    await fake.reply(fake.held[0], *fake._default(fake.held[0]))
    await until(lambda: len(fake.held) == 3)
    assert fake.held[2].args == ("3",)  # in order
    for command in fake.held[1:]:
        await fake.reply(command, *fake._default(command))
    await asyncio.gather(first, second, other)


async def test_cancelled_waiter_keeps_agent_queue_moving(
    fake: FakeConnector, client: Client
) -> None:
    fake.hold.add("GetState")
    agent = client.agent("1")
    first = asyncio.create_task(agent.get_state())
    waiting = asyncio.create_task(agent.get_state())
    third = asyncio.create_task(agent.get_state())
    await until(lambda: len(fake.held) == 1)
    waiting.cancel()
    await fake.reply(fake.held[0], Reply(f"1#AgentState#READY#{NOW}"))
    await first
    await until(lambda: len(fake.held) == 2)
    await fake.reply(fake.held[1], Reply(f"1#AgentState#HOLD#{NOW}"))
    event = await third
    assert isinstance(event, AgentState) and event.state == "HOLD"
    assert waiting.cancelled()


async def test_max_in_flight_bound(fake: FakeConnector) -> None:
    fake.hold.add("GetState")
    async with make_client(max_in_flight=2) as client:
        tasks = [asyncio.create_task(client.agent(str(i)).get_state()) for i in range(4)]
        await until(lambda: len(fake.held) == 2)
        await asyncio.sleep(0.05)
        assert len(fake.held) == 2
        assert client.stats().in_flight == 2
        await fake.reply(fake.held[0], Reply(f"{fake.held[0].target}#AgentState#READY#{NOW}"))
        await until(lambda: len(fake.held) == 3)
        for command in fake.held[1:]:
            await fake.reply(command, Reply(f"{command.target}#AgentState#READY#{NOW}"))
        await until(lambda: len(fake.held) == 4)
        await fake.reply(fake.held[3], Reply(f"{fake.held[3].target}#AgentState#READY#{NOW}"))
        assert len(await asyncio.gather(*tasks)) == 4


async def test_slow_reader_bounded_drop_oldest(fake: FakeConnector) -> None:
    async with make_client(agent_buffer=5) as client:
        agent = client.agent("1")
        silent = client.agent("2")  # no reader: nothing buffered
        stream = agent.events()
        for i in range(20):
            await fake.push(TOPIC, f"1#AgentState#S{i}#{NOW}")
            await fake.push(TOPIC, f"2#AgentState#S{i}#{NOW}")
        await until(lambda: agent.state == "S19" and silent.state == "S19")
        assert len(stream) == 5
        assert stream.dropped == 15
        assert client.stats().dropped_events == 15
        first = await stream.__anext__()
        assert isinstance(first, AgentState) and first.state == "S15"


async def test_slow_reader_raise_policy(fake: FakeConnector) -> None:
    async with make_client(client_buffer=3, overflow="raise") as client:
        stream = client.events()
        for i in range(5):
            await fake.push(TOPIC, f"1#AgentState#S{i}#{NOW}")
        await until(lambda: client.stats().dropped_events == 2)
        with pytest.raises(SlowConsumer):
            await stream.__anext__()
        states = [getattr(stream.get_nowait(), "state", None) for _ in range(3)]
        assert states == ["S0", "S1", "S2"]


async def test_dropped_stream_is_released(fake: FakeConnector, client: Client) -> None:
    agent = client.agent("1")
    dropped = weakref.ref(agent.events())  # the reader lets go of it at once
    await fake.push(TOPIC, f"1#AgentState#READY#{NOW}")
    await until(lambda: agent.state == "READY")
    assert dropped() is None  # the session kept no strong reference to it


def test_stream_set_forgets_a_dropped_stream_and_pushes_to_the_rest() -> None:
    counters = StatsCounters()
    streams = StreamSet()
    kept, dropped = EventStream(4, "drop_oldest", counters), EventStream(4, "drop_oldest", counters)
    streams.add(kept)
    streams.add(dropped)
    assert streams.streams() == [kept, dropped]
    del dropped  # the reader let go of it: no close(), no collection needed
    assert len(streams) == 1 and streams.streams() == [kept]
    notice = EventsMayBeMissed("test")
    streams.push(notice)
    assert kept.get_nowait() is notice
    del kept
    assert not streams  # empty, and falsy as a dict is


# -- scale and helpers ------------------------------------------------------------------------


async def test_many_agents_one_connection(fake: FakeConnector) -> None:
    async with make_client(max_in_flight=256) as client:
        agents = [client.agent(str(10_000 + i)) for i in range(2000)]
        results = await asyncio.gather(*(a.login() for a in agents))
        assert all(isinstance(r, AgentInfo) for r in results)
        await until(lambda: all(a.state == "READY" for a in agents))
        assert client.stats().in_flight == 0
        assert client.stats().answered == 2000 + len(fake.commands("Hello"))


def test_latency_histogram_percentiles_within_a_bucket() -> None:
    hist = LatencyHistogram()
    samples = [0.5 + (i * 37 % 1000) / 10 for i in range(1000)]
    for sample in samples:
        hist.record(sample)
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    assert hist.percentile(0.5) == pytest.approx(cuts[49], rel=0.06)
    assert hist.percentile(0.99) == pytest.approx(cuts[98], rel=0.06)
    assert hist.max_ms == max(samples)


async def test_stats_latency_recorded(fake: FakeConnector, client: Client) -> None:
    for _ in range(5):
        await client.agent("1").get_state()
    stats = client.stats()
    assert stats.answered >= 5
    assert 0 < stats.latency_p50_ms <= stats.latency_p99_ms <= stats.latency_max_ms


def test_run_uses_uvloop_and_keeps_policy() -> None:
    uvloop = pytest.importorskip("uvloop")
    policy = type(asyncio.get_event_loop_policy())

    async def main() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert cucmconn.run(main()).startswith(uvloop.__name__)
    assert cucmconn.run(main(), use_uvloop=False).startswith("asyncio")
    assert type(asyncio.get_event_loop_policy()) is policy


async def test_fake_records_commands(fake: FakeConnector) -> None:
    """Sanity check of the test double itself: unknown commands get an Error."""
    async with make_client() as client:
        with pytest.raises(CommandError):
            await client.send("MakeReady", "1")
    assert isinstance(fake.commands("MakeReady")[0], FakeCommand)


async def test_injecting_destination_and_bad_options_refused() -> None:
    with pytest.raises(ValueError):
        Client("memory://", client_destination="crm#1")
    with pytest.raises(ValueError):
        Client("memory://", ttl=0)
    with pytest.raises(ValueError):
        Client("memory://", overflow="block")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Client()


async def test_remove_agent_ends_its_streams(fake: FakeConnector, client: Client) -> None:
    agent = client.agent("1")
    stream = agent.events()
    client.remove_agent("1")
    assert "1" not in client.agents
    assert [item async for item in stream] == []
    assert client.agent("1") is not agent


async def test_slots_fifo_and_cancelled_waiter() -> None:
    slots = Slots(1)
    order: list[int] = []
    await slots.acquire()

    async def take(i: int) -> None:
        async with slots:
            order.append(i)

    tasks = [asyncio.create_task(take(i)) for i in range(4)]
    await asyncio.sleep(0)
    tasks[1].cancel()
    slots.release()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert order == [0, 2, 3]
    assert slots.waiting == 0
    await asyncio.wait_for(slots.acquire(), 1.0)  # the slot came back


async def test_slots_try_acquire_never_overtakes_a_waiter() -> None:
    """The synchronous fast path is only taken when nobody waits: strict arrival order holds."""
    slots = Slots(1)
    assert slots.try_acquire()
    assert not slots.try_acquire()
    waiter = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    assert slots.waiting == 1
    slots.release()  # handed to the waiter, not freed
    assert not slots.try_acquire()  # a newcomer cannot barge in before the waiter runs
    await waiter
    slots.release()
    assert slots.waiting == 0 and slots.try_acquire()


async def test_no_call_data_in_logs_above_debug(
    fake: FakeConnector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cucmconn")
    fake.script["HoldCall"] = lambda c: [Reply(f"{c.target}#Error#CF_INVALID_OBJECT_STATE")]
    fake.hold.add("RetrieveCall")
    async with make_client() as client:
        agent = client.agent("42031")
        await agent.login()
        await agent.make_call("5550199")
        with pytest.raises(CommandError):
            await agent.hold("8675309")
        with pytest.raises(CommandTimeout):
            await agent.retrieve("8675309", ttl=0.1)
        await fake.push(TOPIC, "5550199-not-an-event")
        await until(lambda: client.stats().malformed == 1)
    loud = " ".join(r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG)
    assert loud  # something was logged above DEBUG (connect, timeout)
    assert "5550199" not in loud and "8675309" not in loud
    assert any("5550199" in r.getMessage() for r in caplog.records)  # bodies only at DEBUG


def test_each_outcome_has_one_counter() -> None:
    """StatsCounters.count_outcome is the one outcome -> counter mapping the pending table and
    the early-ending paths share: each outcome moves its own counter and no other."""
    fields = {
        "answered": "answered",
        "error": "errors",
        "timeout": "timeouts",
        "unavailable": "service_unavailable",
        "connection_lost": "connection_lost",
        "cancelled": "cancelled",
    }
    for outcome, field in fields.items():
        counters = StatsCounters()
        counters.count_outcome(outcome)
        counts = {name: getattr(counters, name) for name in fields.values()}
        assert counts == {name: int(name == field) for name in fields.values()}, outcome
