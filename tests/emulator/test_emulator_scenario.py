"""The emulator's scenario control (``history`` > 0): the command and event history, waiting,
one-shot faults (fail, delay, drop the answer, answer twice), an agent answering at its phone,
aliases for snapshot assertions, and the bounds on all of it.

Driven through a real ``Client`` on memory://, as an application's test would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cucmconn import Client, CommandError, CommandTimeout, Emulator
from cucmconn.emulator import CommandRecord, EventRecord, Fault, ScenarioTimeout
from cucmconn.emulator.model import FIRST_CONNECTION_ID
from tests.waiting import waiter

CID = str(FIRST_CONNECTION_ID)
until = waiter(5.0)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator("memory://scenario", extensions="1001-1005", history=200) as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[Client]:
    async with Client("memory://scenario", ttl=2.0) as connected:
        yield connected


async def test_history_records_each_command_and_event_in_order(
    emu: Emulator, client: Client
) -> None:
    await client.agent("1001").login()
    await emu.drain()
    names = [(c.name, c.agent, c.args) for c in emu.commands]
    assert names == [("Hello", client.destination, ()), ("Login", "1001", (client.destination,))]
    login = emu.commands[1]
    assert login.reply_to == f"/topic/{client.destination}"
    assert login.correlation_id is not None and login.fault is None
    answers = [e for e in emu.events if e.correlation_id == login.correlation_id]
    assert [type(e.event).__name__ for e in answers] == ["AgentInfo", "AgentState", "DialogState"]
    entries: list[CommandRecord | EventRecord] = [*emu.commands, *emu.events]
    seqs = [entry.seq for entry in entries]
    assert sorted(seqs) == list(range(1, len(seqs) + 1))
    assert "-> Login#1001" in emu.transcript()


async def test_wait_for_returns_a_command_that_arrived_before_the_call(
    emu: Emulator, client: Client
) -> None:
    await client.agent("1002").login()
    await client.agent("1001").login()
    # Out of order on purpose: each wait_for finds its own command, each only once.
    second = await emu.wait_for("login", agent="1001")
    first = await emu.wait_for("Login", agent="1002")
    assert (first.agent, second.agent) == ("1002", "1001")
    assert first.seq < second.seq
    with pytest.raises(ScenarioTimeout):
        await emu.wait_for("Login", agent="1001", within=0.1)


async def test_wait_for_waits_until_the_command_was_answered(emu: Emulator, client: Client) -> None:
    session = client.agent("1001")
    await session.login()
    task = asyncio.create_task(session.make_call("1002"))
    with pytest.raises(CommandError):  # 1002 is not logged in: INVALID_PARTY
        await task
    record = await emu.wait_for("MakeCall", agent="1001", args=["1002"])
    assert record.args == ("1002",)
    assert any(e.text.endswith("#Error#INVALID_PARTY") for e in emu.events)


async def test_a_timed_out_wait_shows_recent_commands_and_events(
    emu: Emulator, client: Client
) -> None:
    await client.agent("1001").login()
    with pytest.raises(ScenarioTimeout) as failed:
        await emu.wait_for("MakeCall", agent="1001", within=0.2)
    message = str(failed.value)
    assert isinstance(failed.value, AssertionError)
    assert message.startswith("expected MakeCall for agent 1001: not seen within 0.2 s")
    assert "recent commands (->) and events (<-)" in message
    assert "-> Login#1001" in message
    assert "<- 1001#AgentInfo#1001" in message


async def test_fail_next_refuses_one_matching_command_without_running_it(
    emu: Emulator, client: Client
) -> None:
    await client.agent("1001").login()
    await client.agent("1002").login()
    fault = emu.fail_next("MakeCall", agent="1001", code="INVALID_PARTY")
    with pytest.raises(CommandError) as refused:
        await client.agent("1001").make_call("1002")
    assert refused.value.code == "INVALID_PARTY"
    assert not emu.model.calls  # it never ran
    assert fault.fired == 1 and fault.spent
    record = await emu.wait_for("MakeCall")
    assert record.fault == "fail INVALID_PARTY (MakeCall#1001)"
    await client.agent("1001").make_call("1002")  # the next one runs
    assert list(emu.model.calls) == [CID]


async def test_faults_match_only_their_command_and_agent(emu: Emulator, client: Client) -> None:
    fault = emu.fail_next("Login", agent="1002", code="LICENSES_EXCEEDED")
    await client.agent("1001").login()
    assert fault.fired == 0
    with pytest.raises(CommandError) as refused:
        await client.agent("1002").login()
    assert refused.value.code == "LICENSES_EXCEEDED"
    assert emu.model.agents.keys() == {"1001"}


async def test_delay_next_holds_the_command_and_its_ttl_still_applies(
    emu: Emulator, client: Client
) -> None:
    await client.agent("1001").login()
    emu.delay_next("GetState", agent="1001", seconds=0.3)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await client.agent("1001").get_state()
    # uvloop's timers and clock tick in whole milliseconds: a 0.3 s delay can read 0.29999 s.
    assert loop.time() - start >= 0.3 - 0.002
    emu.delay_next("GetState", seconds=1.0)
    with pytest.raises(CommandTimeout):
        await client.agent("1001").get_state(ttl=0.3)
    # Delivered late, then skipped as expired (never executed).
    await until(lambda: emu.stats().commands_expired == 1, what="the late command expires")
    assert emu.stats().commands_executed == 3  # Hello, Login, the first GetState


async def test_drop_next_answer_runs_the_command_but_sends_no_answer(
    emu: Emulator, client: Client
) -> None:
    await client.agent("1001").login()
    await client.agent("1002").login()
    emu.drop_next_answer("MakeCall")
    with pytest.raises(CommandTimeout):
        await client.agent("1001").make_call("1002", ttl=0.3)
    assert list(emu.model.calls) == [CID]  # it ran: the far end rings
    withheld = [e for e in emu.events if e.fault == "answer dropped"]
    assert [type(e.event).__name__ for e in withheld] == [
        "DialogState",
        "DialogState",
        "AgentState",
    ]
    await emu.wait_for_event("InboundCall", agent="1002", state="ALERTING")


async def test_answer_next_twice_sends_each_answer_twice(emu: Emulator, client: Client) -> None:
    stream = client.events()
    emu.answer_next_twice("Login", agent="1001")
    await client.agent("1001").login()
    login = (await emu.wait_for("Login")).correlation_id
    answers = [type(e.event).__name__ for e in emu.events if e.correlation_id == login]
    assert answers == ["AgentInfo"] * 2 + ["AgentState"] * 2 + ["DialogState"] * 2
    seen: list[str] = []
    while len(seen) < 6:
        async with asyncio.timeout(5):
            seen.append(type(await anext(stream)).__name__)
    assert seen == answers  # the application really receives each one twice


async def test_agent_answers_at_the_phone_and_the_customer_hangs_up(
    emu: Emulator, client: Client
) -> None:
    session = client.agent("1001")
    await session.login()
    cid = await emu.place_call("5550100", "1001")
    await until(lambda: cid in session.calls, what="the call rings")
    await emu.answer(cid)
    await until(lambda: session.state == "TALKING", what="answered at the phone")
    event = await emu.wait_for_event("DialogState", agent="1001", state="ACTIVE")
    assert event.correlation_id is None  # nobody sent a command for it
    await emu.hangup(cid)
    await until(lambda: session.state == "READY", what="the customer hung up")
    with pytest.raises(CommandError):
        await emu.answer(cid)


async def test_aliases_make_the_history_comparable_with_a_literal() -> None:
    async with (
        Emulator("memory://aliased", history=50, aliases=True, clock=lambda: 1e9) as emu,
        Client("memory://aliased") as client,
    ):
        await client.agent("1001").login()
        await emu.drain()
        assert [(c.name, c.correlation_id, c.reply_to, c.at) for c in emu.commands] == [
            ("Hello", "c1", "client-1", 1e9),
            ("Login", "c2", "client-1", 1e9),
        ]
        assert {e.destination for e in emu.events} == {"client-1"}


def faults_now(emu: Emulator) -> tuple[Fault, ...]:
    """``emu.faults`` read afresh: mypy would keep the ``len()`` assert's narrowing of the
    property (to one fault) across the call that clears them."""
    return emu.faults


async def test_history_and_faults_are_bounded() -> None:
    async with (
        Emulator("memory://small", history=5) as emu,
        Client("memory://small") as client,
    ):
        for _ in range(10):
            await client.agent("1001").get_state()
        assert len(emu.commands) + len(emu.events) == 5
        assert "older entries not shown" in emu.transcript(limit=2)
        # A wait_for over an evicted command cannot find it (and says so).
        with pytest.raises(ScenarioTimeout):
            await emu.wait_for("Hello", within=0.05)
        emu.fail_next("Logout", times=2)
        assert len(emu.faults) == 1
        emu.clear_faults()
        assert faults_now(emu) == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "fail", "code": "X#Y"}, "plain error code"),
        ({"kind": "fail", "code": ""}, "plain error code"),
        ({"kind": "delay"}, "seconds > 0"),
        ({"kind": "drop", "times": 0}, "times must be >= 1"),
        ({"kind": "explode"}, "fault kind"),
    ],
)
def test_bad_faults_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fault(**kwargs)  # type: ignore[arg-type]


async def test_scenario_control_is_off_by_default() -> None:
    async with Emulator("memory://plain") as emu:
        with pytest.raises(RuntimeError, match="history > 0"):
            emu.fail_next("MakeCall")
        with pytest.raises(RuntimeError, match="history > 0"):
            _ = emu.commands
    with pytest.raises(ValueError, match="history"):
        Emulator("memory://plain", history=-1)


def test_records_read_as_one_line_each() -> None:
    record = CommandRecord(3, 0.0, "MakeCall", "1001", ("5550100",), "c2", "client-1")
    assert str(record) == "#3 -> MakeCall#1001 5550100  [c2 from client-1]"
