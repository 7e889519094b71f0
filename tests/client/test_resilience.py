"""Issue 11 on memory://: forged status storms, restart signals, contradicting errors, limits."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from cucmconn import AgentState, Client, CommandError, EventsMayBeMissed
from cucmconn.client.restarts import ConnectorIdentity, connection_of, parse_advisory
from tests.client.clients import memory_client
from tests.fakeconnector import NOW, FakeConnector, Reply
from tests.waiting import waiter

DEST = "crm-res"
TOPIC = f"/topic/{DEST}"
ADVISORY = "/topic/ActiveMQ.Advisory.Consumer.Queue.Connector1"
until = waiter(10.0)


def make_client(**options: Any) -> Client:
    options.setdefault("connect_timeout", 0.2)
    return memory_client(DEST, **options)


async def login_all(client: Client, count: int) -> list[str]:
    names = [str(5000 + i) for i in range(count)]
    await asyncio.gather(*(client.agent(n).login() for n in names))
    return names


# -- resync storms (case 5) -------------------------------------------------------------------


async def test_forged_status_storm_sends_at_most_twice_the_agents_in_get_state(
    fake: FakeConnector,
) -> None:
    """100 forged System#OUT_OF_SERVICE / IN_SERVICE a second for 3 s to a 200-agent client."""
    async with make_client() as client:
        await login_all(client, 200)
        before_get, before_hello = len(fake.commands("GetState")), len(fake.commands("Hello"))
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(300):
            status = "OUT_OF_SERVICE" if i % 2 == 0 else "IN_SERVICE"
            await fake.push(TOPIC, f"System#{status}")
            await asyncio.sleep(max(0.0, start + (i + 1) / 100 - loop.time()))
        await asyncio.sleep(0.5)
        get_states = len(fake.commands("GetState")) - before_get
        hellos = len(fake.commands("Hello")) - before_hello
        print(
            f"\nFIGURE forged-status: 300 forged in 3 s, 200 agents: {get_states} GetState, "
            f"{hellos} Hello"
        )
        assert get_states <= 2 * 200
        assert hellos <= 3 / 0.1 + 2  # confirmations are spaced
        assert client.in_service  # the forgeries never took it out of service
        assert isinstance(await client.agent("5000").get_state(), AgentState)


async def test_real_flaps_coalesce_into_bounded_resyncs(fake: FakeConnector) -> None:
    async with make_client(resync_interval=1.0) as client:
        names = await login_all(client, 50)
        stream = client.agent(names[0]).events()
        before = len(fake.commands("GetState"))
        for i in range(40):  # the connector really flaps, 20 times a second for 2 s
            fake.in_service = i % 2 == 1
            status = "IN_SERVICE" if fake.in_service else "OUT_OF_SERVICE"
            await fake.push(TOPIC, f"System#{status}")
            await asyncio.sleep(0.05)
        fake.in_service = True
        await until(lambda: client.in_service and client.stats().resyncs >= 1)
        await asyncio.sleep(1.5)
        stats = client.stats()
        get_states = len(fake.commands("GetState")) - before
        assert stats.resyncs <= 1 + 2 / 1.0 + 1  # at most one start per resync_interval
        assert get_states <= stats.resyncs * len(names)
        notices = 0
        while (item := stream.get_nowait()) is not None:
            notices += isinstance(item, EventsMayBeMissed)
        assert 1 <= notices <= stats.resyncs + 1


async def test_unsolicited_out_of_service_confirmed_by_hello(fake: FakeConnector) -> None:
    async with make_client() as client:
        fake.in_service = False
        await fake.push(TOPIC, "System#OUT_OF_SERVICE")
        await until(lambda: not client.in_service)  # the Hello it sent was answered so
        fake.in_service = True
        await fake.push(TOPIC, "System#IN_SERVICE")
        await until(lambda: client.in_service)


# -- connector restarts (case 3) ---------------------------------------------------------------


def advisory(kind: str, connection: str) -> str:
    key = "consumerId" if kind == "ConsumerInfo" else "objectId"
    return json.dumps({kind: {key: {"connectionId": connection, "sessionId": -1, "value": 1}}})


async def test_new_consumer_advisory_is_a_restart(fake: FakeConnector) -> None:
    resynced: list[Client] = []
    async with make_client(on_resync=resynced.append) as client:
        names = await login_all(client, 3)
        stream = client.agent(names[0]).events()
        # the connector's consumer as seen at subscription time, then its restart
        await fake.push(ADVISORY, advisory("ConsumerInfo", "ID:conn-1:1"))
        await fake.push(ADVISORY, advisory("RemoveInfo", "ID:conn-1:1"))
        await asyncio.sleep(0.05)
        assert client.stats().connector_restarts == 0  # first one seen after start: known now?
        before = len(fake.commands("GetState"))
        fake.script["GetState"] = lambda c: [Reply(f"{c.target}#AgentState#LOGOUT#{NOW}")]
        await fake.push(ADVISORY, advisory("ConsumerInfo", "ID:conn-2:1"))
        await until(lambda: resynced == [client])
        assert client.stats().connector_restarts == 1
        assert len(fake.commands("GetState")) - before == 3
        assert all(not client.agent(n).logged_in for n in names)
        assert client.agent(names[0]).state == "LOGOUT"
        items = []
        while (item := stream.get_nowait()) is not None:
            items.append(item)
        assert isinstance(items[0], EventsMayBeMissed)


async def test_last_consumer_leaving_prompts_a_hello(fake: FakeConnector) -> None:
    """The connector's consumer went away: one Hello asks; unanswered, it is an outage."""
    async with make_client(keepalive=60) as client:
        hellos = len(fake.commands("Hello"))
        fake.hold.add("Hello")  # the connector is gone: nobody answers
        body = advisory("RemoveInfo", "ID:conn-1:1")
        await fake.transport.send(ADVISORY, body, headers={"consumerCount": "1"})
        await asyncio.sleep(0.05)
        assert len(fake.commands("Hello")) == hellos  # another consumer remains: no question
        await fake.transport.send(ADVISORY, body, headers={"consumerCount": "0"})
        await until(lambda: len(fake.commands("Hello")) == hellos + 1)
        await until(lambda: not client.in_service)  # unanswered within connect_timeout


def test_connector_identity_seeds_then_detects() -> None:
    identity = ConnectorIdentity(memory=2)
    assert not identity.answered_by("ID:host-1-100-1:1:1:1:5", seed=True)
    assert not identity.answered_by("ID:host-1-100-1:1:1:1:6", seed=False)  # same connection
    assert identity.answered_by("ID:host-1-200-1:1:1:1:1", seed=False)  # a new process
    assert not identity.answered_by("ID:host-1-100-1:1:1:1:7", seed=False)  # HA pair: known
    assert not identity.answered_by("ID:memory-default-3", seed=False)  # not ActiveMQ's form
    assert not identity.answered_by(None, seed=False)
    assert connection_of("ID:vm-45439-1796080805218-3:4:1:1:6") == "ID:vm-45439-1796080805218-3:4"


def test_parse_advisory_never_raises() -> None:
    started = parse_advisory(advisory("ConsumerInfo", "ID:x:1").encode(), {"consumerCount": "1"})
    assert started is not None and started.started and started.consumer_count == 1
    stopped = parse_advisory(advisory("RemoveInfo", "ID:x:1").encode(), {"consumerCount": "0"})
    assert stopped is not None and not stopped.started and stopped.consumer_count == 0
    for junk in (b"", b"{", b"[]", b'{"ProducerInfo": {}}', b"x" * 70_000, b"\xff"):
        assert parse_advisory(junk, {}) is None


async def test_contradicting_error_rereads_the_agent(fake: FakeConnector) -> None:
    async with make_client() as client:
        agent = client.agent("6001")
        await agent.login()
        assert agent.logged_in
        fake.script["HoldCall"] = lambda c: [Reply(f"{c.target}#Error#CF_INVALID_OBJECT_STATE")]
        fake.script["GetState"] = lambda c: [Reply(f"{c.target}#AgentState#LOGOUT#{NOW}")]
        with pytest.raises(CommandError):
            await agent.hold("c1")
        await until(lambda: not agent.logged_in)
        assert len(fake.commands("GetState")) == 1
        for _ in range(5):  # not logged in any more: no further re-reads
            with pytest.raises(CommandError):
                await agent.hold("c1")
        await asyncio.sleep(0.05)
        assert len(fake.commands("GetState")) == 1


# -- input limits --------------------------------------------------------------------------------


async def test_oversized_and_control_character_events_are_malformed(fake: FakeConnector) -> None:
    async with make_client(max_event_body=1024) as client:
        agent = client.agent("7001")
        await fake.push(TOPIC, f"7001#AgentState#READY#{'9' * 2000}")
        await fake.push(TOPIC, "7001#Agent\x00State#TALKING")
        await fake.push(TOPIC, f"7001#AgentState#READY#{NOW}")
        await until(lambda: agent.state == "READY")
        assert client.stats().malformed == 2
        assert agent.state == "READY"


async def test_events_for_unknown_agents_are_counted(fake: FakeConnector) -> None:
    async with make_client() as client:
        client.agent("7001")
        for body in (f"7002#AgentState#READY#{NOW}", f"7003#DialogState#ACTIVE#{NOW}#c#7003,1"):
            await fake.push(TOPIC, body)
        await fake.push(TOPIC, f"7001#AgentState#READY#{NOW}")
        await until(lambda: client.agent("7001").state == "READY")
        assert client.stats().unknown_agent == 2


def test_bad_limits_refused() -> None:
    with pytest.raises(ValueError, match="max_event_body"):
        Client("memory://", max_event_body=0)
    with pytest.raises(ValueError, match="resync_rate"):
        Client("memory://", resync_rate=0)
