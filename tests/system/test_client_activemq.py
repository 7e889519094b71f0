"""The client's main flows through a real ActiveMQ, with the scripted fake connector on it.

Each test uses its own command queue and reply topic, so tests sharing the session broker never
see each other's messages.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cucmconn import (
    AgentInfo,
    AgentState,
    Client,
    CommandError,
    CommandTimeout,
    ConnectionLost,
    DialogState,
    Emulator,
    EventsMayBeMissed,
    ServiceUnavailable,
)
from cucmconn.transport import open_transport
from tests.activemq import BrokerHandle
from tests.fakeconnector import NOW, FakeConnector, Reply
from tests.waiting import waiter

pytestmark = pytest.mark.activemq


until = waiter(20.0)


@pytest.fixture
def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"Connector-{tag}", f"crm-{tag}"


async def start_fake(url: str, queue: str) -> FakeConnector:
    return await FakeConnector(open_transport(url), queue=f"/queue/{queue}").start()


@pytest.fixture
async def fake(activemq: BrokerHandle, names: tuple[str, str]) -> AsyncIterator[FakeConnector]:
    connector = await start_fake(activemq.stomp_url, names[0])
    yield connector
    await connector.stop()


def client_for(url: str, names: tuple[str, str], **options: Any) -> Client:
    options.setdefault("ttl", 5.0)
    options.setdefault("connect_timeout", 0.5)
    options.setdefault("handshake_timeout", 10.0)
    return Client(url, queue=names[0], client_destination=names[1], **options)


async def test_login_call_and_release(
    activemq: BrokerHandle, fake: FakeConnector, names: tuple[str, str]
) -> None:
    async with client_for(activemq.stomp_url, names) as client:
        assert client.in_service
        agent = client.agent("42031")
        stream = agent.events()
        assert isinstance(await agent.login(), AgentInfo)
        dialog = await agent.make_call("42032")
        assert isinstance(dialog, DialogState) and dialog.connection_id
        assert dialog.connection_id in agent.calls
        await agent.release(dialog.connection_id)
        assert agent.calls == {}
        assert agent.state == "READY"
        assert len(stream) >= 5
    login = fake.commands("Login")[0]
    assert login.reply_to == f"/topic/{names[1]}"
    assert login.args == (names[1],)
    assert int(login.headers["expires"]) > 0


async def test_error_timeout_and_late_reply(
    activemq: BrokerHandle, fake: FakeConnector, names: tuple[str, str]
) -> None:
    fake.script["MakeCall"] = lambda c: [Reply(f"{c.target}#Error#INVALID_PARTY")]
    async with client_for(activemq.stomp_url, names) as client:
        with pytest.raises(CommandError) as info:
            await client.agent("1").make_call("2")
        assert info.value.code == "INVALID_PARTY"
        fake.hold.add("GetState")
        with pytest.raises(CommandTimeout):
            await client.agent("1").get_state(ttl=0.5)
        fake.hold.clear()
        await fake.reply(fake.held[0], Reply(f"1#AgentState#TALKING#{NOW}"))
        await until(lambda: client.stats().late == 1)
        event = await client.agent("1").get_state()
        assert isinstance(event, AgentState) and event.state == "READY"


async def test_out_of_service_and_recovery(
    activemq: BrokerHandle, fake: FakeConnector, names: tuple[str, str]
) -> None:
    async with client_for(activemq.stomp_url, names) as client:
        fake.in_service = False
        await fake.push(f"/topic/{names[1]}", "System#OUT_OF_SERVICE")
        await until(lambda: not client.in_service)
        with pytest.raises(ServiceUnavailable):
            await client.agent("1").get_state()
        fake.in_service = True
        await until(lambda: client.in_service)
        assert isinstance(await client.agent("1").get_state(), AgentState)


async def test_many_agents_concurrently(
    activemq: BrokerHandle, fake: FakeConnector, names: tuple[str, str]
) -> None:
    async with client_for(activemq.stomp_url, names, max_in_flight=64) as client:
        agents = [client.agent(str(20_000 + i)) for i in range(300)]
        results = await asyncio.gather(*(a.login() for a in agents))
        assert all(isinstance(r, AgentInfo) for r in results)
        await until(lambda: all(a.state == "READY" for a in agents))
        assert client.stats().timeouts == 0


async def test_broker_restart_fails_in_flight_and_resyncs(
    fresh_activemq: BrokerHandle, names: tuple[str, str]
) -> None:
    url = fresh_activemq.stomp_url + "?max_backoff=0.5"
    fake = await start_fake(url, names[0])
    resynced: list[Client] = []
    try:
        async with client_for(url, names, on_resync=resynced.append) as client:
            agent = client.agent("42031")
            await agent.login()
            stream = client.events()
            fake.hold.add("MakeCall")
            task = asyncio.create_task(agent.make_call("42032"))
            await until(lambda: len(fake.held) == 1)
            fresh_activemq.restart()
            with pytest.raises(ConnectionLost):
                await task
            await until(lambda: bool(resynced), limit=60.0)
            assert client.in_service
            assert [c.target for c in fake.commands("GetState")] == ["42031"]
            assert len(fake.commands("MakeCall")) == 1
            notices = []
            while (item := stream.get_nowait()) is not None:
                notices.append(item)
            assert any(isinstance(item, EventsMayBeMissed) for item in notices)
    finally:
        await fake.stop()


async def test_emulator_call_flow_over_activemq(
    activemq: BrokerHandle, names: tuple[str, str]
) -> None:
    async with (
        Emulator(activemq.stomp_url, queue=names[0], extensions="1000-1099"),
        client_for(activemq.stomp_url, names) as client,
    ):
        caller, callee = client.agent("1000"), client.agent("1001")
        await asyncio.gather(caller.login(), callee.login())
        dialog = await caller.make_call("1001")
        assert isinstance(dialog, DialogState) and dialog.connection_id
        cid = dialog.connection_id
        await until(lambda: cid in callee.calls)
        assert callee.calls[cid].other_party == "1000"
        answered = await callee.answer(cid)
        assert isinstance(answered, DialogState) and answered.state == "ACTIVE"
        await caller.release(cid)
        await until(lambda: not callee.calls and not caller.calls)
        assert client.stats().timeouts == 0
