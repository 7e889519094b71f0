"""The client's observer interface and its single routing decision (memory:// + fake connector)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cucmconn import (
    AgentState,
    Client,
    CommandError,
    CommandTimeout,
    ConnectionLost,
    DialogState,
    ErrorEvent,
    ServiceUnavailable,
    SystemStatus,
)
from cucmconn.client import ClientObserver, CommandFinished, EventFate
from cucmconn.client.correlation import DEFAULT_EXPECTATIONS, PROBES, owner_of
from cucmconn.codec.commands import COMMANDS
from cucmconn.codec.events import Event, UnknownEvent
from cucmconn.transport.memory import MemoryTransport
from tests.client.clients import memory_client
from tests.fakeconnector import NOW, FakeConnector, Reply
from tests.waiting import waiter

DEST = "crm-obs"
TOPIC = f"/topic/{DEST}"
until = waiter(5.0)


class Recorder(ClientObserver):
    def __init__(self) -> None:
        self.issued: list[tuple[str, str, str]] = []
        self.finished: list[CommandFinished] = []
        self.events: list[tuple[Event | None, EventFate]] = []
        self.lost: list[str] = []
        self.reconnects: list[str] = []
        self.service: list[tuple[bool, str]] = []

    def command_issued(self, command: str, target: str, correlation_id: str) -> None:
        self.issued.append((command, target, correlation_id))

    def command_finished(self, finished: CommandFinished) -> None:
        self.finished.append(finished)

    def event_received(self, event: Event | None, fate: EventFate) -> None:
        self.events.append((event, fate))

    def connection_lost(self, reason: str) -> None:
        self.lost.append(reason)

    def reconnected(self, url: str) -> None:
        self.reconnects.append(url)

    def service_changed(self, in_service: bool, reason: str) -> None:
        self.service.append((in_service, reason))

    def outcomes(self, command: str) -> list[str]:
        return [f.outcome for f in self.finished if f.command == command]


def make_client(**options: Any) -> Client:
    return memory_client(DEST, **options)


def test_owner_of_is_the_one_routing_decision() -> None:
    assert owner_of(SystemStatus("IN_SERVICE"), DEST) == DEST
    assert owner_of(ErrorEvent("1001", "INVALID_PARTY"), DEST) == "1001"
    assert owner_of(AgentState("1002", "READY"), DEST) == "1002"
    assert owner_of(DialogState("1003", "ACTIVE"), DEST) == "1003"
    assert owner_of(UnknownEvent("x", "y", (), "x#y"), DEST) is None


def test_probes_come_from_the_command_table() -> None:
    assert {"Hello", "Beat"} == PROBES
    assert all(COMMANDS[name].target == "destination" for name in PROBES)
    assert all(DEFAULT_EXPECTATIONS[name][0].kind is SystemStatus for name in PROBES)


async def test_observer_sees_each_outcome_once(fake: FakeConnector) -> None:
    recorder = Recorder()
    async with make_client() as client:
        client.add_observer(recorder)
        client.add_observer(recorder)  # twice: still one
        agent = client.agent("7")
        assert isinstance(await agent.get_state(), AgentState)
        fake.script["MakeCall"] = lambda c: [Reply(f"{c.target}#Error#INVALID_PARTY")]
        with pytest.raises(CommandError):
            await agent.make_call("8")
        fake.hold.add("HoldCall")
        with pytest.raises(CommandTimeout):
            await agent.hold("c1", ttl=0.1)
        task = asyncio.create_task(agent.retrieve("c1"))
        fake.hold.add("RetrieveCall")
        await until(lambda: len(fake.commands("RetrieveCall")) == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        fake.in_service = False
        await fake.push(TOPIC, "System#OUT_OF_SERVICE")
        await until(lambda: not client.in_service)
        with pytest.raises(ServiceUnavailable):
            await agent.release("c1")
        assert recorder.outcomes("GetState") == ["answered"]
        assert recorder.outcomes("MakeCall") == ["error"]
        assert [f.error_code for f in recorder.finished if f.command == "MakeCall"] == [
            "INVALID_PARTY"
        ]
        assert recorder.outcomes("HoldCall") == ["timeout"]
        assert recorder.outcomes("RetrieveCall") == ["cancelled"]
        released = [f for f in recorder.finished if f.command == "ReleaseCall"]
        assert [(f.outcome, f.correlation_id) for f in released] == [("unavailable", None)]
        issued = {cid for _, _, cid in recorder.issued}
        assert {f.correlation_id for f in recorder.finished if f.correlation_id} <= issued
        assert all(f.duration >= 0 for f in recorder.finished)
        assert (False, "System#OUT_OF_SERVICE") in recorder.service
        fates = {fate for _, fate in recorder.events}
        assert {"resolved", "update"} <= fates
        client.remove_observer(recorder)
        with pytest.raises(ValueError):
            client.remove_observer(recorder)
        count = len(recorder.finished)
        fake.in_service = True
        await until(lambda: client.in_service)
        await agent.get_state()
        assert len(recorder.finished) == count  # detached: no more callbacks


async def test_observer_sees_connection_lost_and_reconnect(fake: FakeConnector) -> None:
    transport = MemoryTransport()
    recorder = Recorder()
    async with make_client(transport=transport) as client:
        client.add_observer(recorder)
        fake.hold.add("GetState")
        task = asyncio.create_task(client.agent("1").get_state())
        await until(lambda: len(fake.held) == 1)
        transport.simulate_disconnect()
        with pytest.raises(ConnectionLost):
            await task
        transport.simulate_reconnect()
        await until(lambda: client.in_service)
        assert recorder.outcomes("GetState") == ["connection_lost"]
        assert len(recorder.lost) == 1 and recorder.reconnects == [client.display_url]
        assert [up for up, _ in recorder.service] == [False, True]


async def test_observer_sees_malformed_late_and_unmatched_events(fake: FakeConnector) -> None:
    recorder = Recorder()
    async with make_client() as client:
        client.add_observer(recorder)
        await fake.push(TOPIC, "\x00\x01 not an event")
        await fake.push(TOPIC, f"5#AgentState#READY#{NOW}", correlation_id="not-ours")
        fake.hold.add("GetState")
        with pytest.raises(CommandTimeout):
            await client.agent("9").get_state(ttl=0.1)
        await fake.reply(fake.held[0], Reply(f"9#AgentState#READY#{NOW}"))
        await until(lambda: len(recorder.events) >= 3)
        fates = [fate for _, fate in recorder.events]
        assert "malformed" in fates and "unmatched" in fates and "late" in fates
        assert any(event is None for event, fate in recorder.events if fate == "malformed")


async def test_failing_observer_never_breaks_the_client(
    fake: FakeConnector, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(ClientObserver):
        def command_issued(self, command: str, target: str, correlation_id: str) -> None:
            raise RuntimeError("observer bug: issued")

        def command_finished(self, finished: CommandFinished) -> None:
            raise RuntimeError("observer bug: finished")

        def event_received(self, event: Event | None, fate: EventFate) -> None:
            raise RuntimeError("observer bug: event")

    after = Recorder()  # attached after the broken one: still sees everything
    async with make_client() as client:
        client.add_observer(Broken())
        client.add_observer(after)
        assert isinstance(await client.agent("3").get_state(), AgentState)
        for which in ("issued", "finished", "event"):
            assert f"observer bug: {which}" in caplog.text
        assert "GetState" in [c for c, _, _ in after.issued]
        assert after.outcomes("GetState") == ["answered"]
        assert after.events
