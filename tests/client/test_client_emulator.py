"""End-to-end: the client against the connector emulator (``cucmconn.Emulator``) on memory://.

The unit tests use the scripted fake; these prove the two halves agree on the house profile
(correlation, first events, events for other parties, outages, both event formats).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cucmconn import (
    AgentState,
    Client,
    CommandError,
    CommandTimeout,
    DialogState,
    Emulator,
    InboundCall,
    ServiceUnavailable,
)
from tests.waiting import waiter

until = waiter(5.0)


@pytest.fixture(params=["default", "json"])
async def emulator(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    async with Emulator("memory://", extensions="1000-1099", event_format=request.param) as emu:
        yield emu


def client(**options: Any) -> Client:
    options.setdefault("connect_timeout", 0.1)
    return Client("memory://", client_destination="crm-e2e", **options)


async def test_call_answer_hold_release(emulator: Emulator) -> None:
    async with client() as c:
        caller, callee = c.agent("1000"), c.agent("1001")
        await asyncio.gather(caller.login(), callee.login())
        ringing = callee.events()
        dialog = await caller.make_call("1001")
        assert isinstance(dialog, DialogState) and dialog.state == "INITIATED"
        cid = dialog.connection_id
        assert cid is not None
        alert = await anext(ringing)
        assert isinstance(alert, InboundCall) and alert.connection_id == cid
        assert callee.calls[cid].other_party == "1000"
        answered = await callee.answer(cid)
        assert isinstance(answered, DialogState) and answered.state == "ACTIVE"
        await until(lambda: caller.calls[cid].state == "ACTIVE")
        assert (await callee.hold(cid)).state == "HELD"
        assert (await callee.retrieve(cid)).state == "ACTIVE"
        dropped = await caller.release(cid)
        assert isinstance(dropped, DialogState) and dropped.state == "DROPPED"
        await until(lambda: cid not in callee.calls)
        assert cid not in caller.calls
        assert c.stats().late == 0 and c.stats().timeouts == 0


async def test_consult_transfer_moves_the_caller(emulator: Emulator) -> None:
    async with client() as c:
        a, b, d = c.agent("1000"), c.agent("1001"), c.agent("1002")
        await asyncio.gather(a.login(), b.login(), d.login())
        first = await a.make_call("1001")
        cid = first.connection_id
        assert cid is not None
        await until(lambda: cid in b.calls)
        await b.answer(cid)
        consult = await b.consult(cid, other="1002")
        assert isinstance(consult, DialogState) and consult.state == "INITIATED"
        ccid = consult.connection_id
        assert ccid is not None and ccid != cid
        await until(lambda: ccid in d.calls and b.calls[cid].state == "HELD")
        await d.answer(ccid)
        done = await b.transfer(cid)
        assert isinstance(done, DialogState) and done.state == "DROPPED"
        await until(lambda: not b.calls)
        await until(lambda: any("1002" in call.participants for call in a.calls.values()))


async def test_inbound_customer_call(emulator: Emulator) -> None:
    async with client() as c:
        agent = c.agent("1005")
        await agent.login()
        stream = agent.events()
        cid = await emulator.place_call("5551234", "1005")
        event = await anext(stream)
        assert isinstance(event, InboundCall) and event.connection_id == cid
        assert agent.calls[cid].other_party == "5551234"
        await agent.answer(cid)
        await emulator.hangup(cid)
        await until(lambda: cid not in agent.calls)


async def test_errors_from_the_emulator(emulator: Emulator) -> None:
    async with client() as c:
        agent = c.agent("1000")
        await agent.login()
        with pytest.raises(CommandError) as info:
            await agent.make_call("1001")  # not logged in: cannot ring
        assert info.value.code
        assert info.value.advice
        with pytest.raises(CommandError):
            await c.agent("9999").login()  # not in the directory


async def test_cucm_outage_and_recovery(emulator: Emulator) -> None:
    async with client() as c:
        agent = c.agent("1000")
        await agent.login()
        await emulator.set_in_service(False)
        await until(lambda: not c.in_service)
        with pytest.raises(ServiceUnavailable):
            await agent.get_state()
        await emulator.set_in_service(True)
        await until(lambda: c.in_service)
        assert isinstance(await agent.get_state(), AgentState)


async def test_faulty_connector_every_command_ends() -> None:
    """Dropped, duplicated and reordered events: each command ends, nothing leaks."""
    async with (
        Emulator(
            "memory://", drop_rate=0.2, duplicate_rate=0.2, reorder_rate=0.2, seed=7
        ) as emulator,
        client(ttl=0.5, handshake_timeout=5.0) as c,
    ):
        agents = [c.agent(str(1000 + i)) for i in range(40)]
        outcomes = await asyncio.gather(
            *(a.get_state() for a in agents for _ in range(3)), return_exceptions=True
        )
        stats = c.stats()
        assert all(isinstance(o, (AgentState, CommandError, CommandTimeout)) for o in outcomes)
        assert any(isinstance(o, CommandTimeout) for o in outcomes)
        assert stats.in_flight == 0
        assert stats.answered + stats.errors + stats.timeouts >= len(outcomes)
        assert emulator.stats().events_dropped > 0
