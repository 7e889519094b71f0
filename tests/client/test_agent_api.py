"""The typed, documented AgentSession API: return types, argument order, helpers, state.

Against the scripted fake connector (memory://) where the test must control what the connector
sends and when (a follow-up event in a later delivery, an answer of an unexpected type); against
the emulator where behaviour matters; and on a real ActiveMQ with its default transport options,
where a command's answer and the AgentState that follows it arrive in separate reads.
"""

from __future__ import annotations

import asyncio
import inspect
import pydoc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, get_type_hints

import msgspec
import pytest

import cucmconn
from cucmconn import (
    AgentInfo,
    AgentSession,
    AgentState,
    AgentStatus,
    CallStatus,
    Client,
    CommandTimeout,
    ConnectionLost,
    DialogState,
    Emulator,
    InboundCall,
)
from cucmconn.transport.memory import MemoryTransport
from tests.activemq import BrokerHandle
from tests.fakeconnector import NOW, FakeCommand, FakeConnector, Reply
from tests.waiting import waiter

DEST = "crm-api"
TOPIC = f"/topic/{DEST}"
until = waiter(5.0)


@pytest.fixture
async def client(fake: FakeConnector) -> AsyncIterator[Client]:
    async with Client(
        transport=MemoryTransport(),
        client_destination=DEST,
        ttl=2.0,
        connect_timeout=0.1,
        handshake_timeout=2.0,
    ) as c:
        yield c


def later(fake: FakeConnector, command: FakeCommand, delay: float, *bodies: str) -> None:
    """Send correlated ``bodies`` after ``delay`` s: a follow-up that comes in a later read."""

    async def send() -> None:
        await asyncio.sleep(delay)
        await fake.reply(command, *(Reply(body) for body in bodies))

    task = asyncio.get_running_loop().create_task(send())
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Task[None]] = set()


def dialog(ext: str, state: str, cid: str, *parties: str) -> str:
    return f"{ext}#DialogState#{state}#{NOW}#{cid}#{','.join((ext, *parties))}"


def state_now(agent: AgentSession) -> AgentStatus | str | None:
    """``agent.state`` read afresh: mypy would keep an earlier assert's narrowing of the property
    across the awaits that change it."""
    return agent.state


def call_state_now(agent: AgentSession, cid: str) -> CallStatus | str:
    """``agent.calls[cid].state`` read afresh, as :func:`state_now`."""
    return agent.calls[cid].state


# -- return types and docstrings -------------------------------------------------------------------

COMMANDS = {
    "login": AgentInfo,
    "logout": AgentState,
    "get_state": AgentState,
    "make_ready": AgentState,
    "make_not_ready": AgentState,
    "make_call": DialogState,
    "answer": DialogState,
    "release": DialogState,
    "hold": DialogState,
    "retrieve": DialogState,
    "blind_transfer": DialogState,
    "consult": DialogState,
    "transfer": DialogState,
    "conference": DialogState,
}


@pytest.mark.parametrize(("name", "kind"), COMMANDS.items())
def test_each_command_is_annotated_with_the_event_it_resolves_with(name: str, kind: type) -> None:
    method = getattr(AgentSession, name)
    assert get_type_hints(method)["return"] is kind


def test_every_public_name_of_the_session_and_every_event_has_a_docstring() -> None:
    public = [n for n in dir(AgentSession) if not n.startswith("_") and n != "extension"]
    missing = [n for n in public if not inspect.getdoc(getattr(AgentSession, n))]
    assert missing == []
    assert "extension" in (AgentSession.__doc__ or "")  # a slot: documented on the class
    generic = inspect.getdoc(msgspec.Struct)
    assert generic
    for name in cucmconn.__all__:
        obj = getattr(cucmconn, name)
        if isinstance(obj, type) and issubclass(obj, msgspec.Struct):
            assert obj.__doc__ and obj.__doc__ != msgspec.Struct.__doc__, name
            assert generic.splitlines()[0] not in pydoc.plain(pydoc.render_doc(obj))


def test_states_are_open_string_enums() -> None:
    assert AgentStatus.READY == "READY" and isinstance(AgentStatus.READY, str)
    assert AgentStatus.parse("talking") is AgentStatus.TALKING
    assert AgentStatus.parse("SOMETHING_NEW") == "SOMETHING_NEW"
    assert CallStatus.parse("held") is CallStatus.HELD
    assert {s.value for s in AgentStatus} >= {"LOGOUT", "NOT_READY", "READY", "TALKING", "HOLD"}
    assert {s.value for s in CallStatus} >= {"INITIATED", "ALERTING", "ACTIVE", "HELD", "DROPPED"}


async def test_state_is_a_member_when_known_and_a_plain_str_when_not(
    fake: FakeConnector, client: Client
) -> None:
    agent = client.agent("100")
    await agent.login()
    assert agent.state is AgentStatus.READY
    await fake.push(TOPIC, f"100#AgentState#NEWER_STATE#{NOW}")
    await until(lambda: agent.state == "NEWER_STATE")
    assert type(agent.state) is str


# -- state and calls when a command returns --------------------------------------------------------


async def test_login_returns_with_the_state_that_follows_in_a_later_read(
    fake: FakeConnector, client: Client
) -> None:
    def login(c: FakeCommand) -> list[Reply]:
        ext = c.target
        later(fake, c, 0.1, f"{ext}#AgentState#NOT_READY#{NOW}", f"{ext}#DialogState#IDLE#{NOW}")
        return [Reply(f"{c.target}#AgentInfo#{c.target}#SEP{c.target}")]

    fake.script["Login"] = login
    agent = client.agent("100")
    info = await agent.login()
    assert isinstance(info, AgentInfo) and info.device_name == "SEP100"
    assert agent.state is AgentStatus.NOT_READY
    assert agent.logged_in and agent.info == info


async def test_login_without_the_promised_state_returns_at_its_ttl(
    fake: FakeConnector, client: Client
) -> None:
    fake.script["Login"] = lambda c: [Reply(f"{c.target}#AgentInfo#{c.target}#SEP1")]
    agent = client.agent("100")
    loop = asyncio.get_running_loop()
    start = loop.time()
    info = await agent.login(ttl=0.3)
    assert isinstance(info, AgentInfo) and agent.state is None
    assert 0.25 <= loop.time() - start < 1.5


async def test_state_follows_each_call_command_before_the_agent_state_arrives(
    fake: FakeConnector, client: Client
) -> None:
    """The connector's AgentState comes 0.3 s after each DialogState: state must not lag."""
    delayed: dict[str, str] = {
        "MakeCall": "TALKING",
        "HoldCall": "HOLD",
        "RetrieveCall": "TALKING",
        "ReleaseCall": "READY",
    }
    legs = {
        "MakeCall": "INITIATED",
        "HoldCall": "HELD",
        "RetrieveCall": "ACTIVE",
        "ReleaseCall": "DROPPED",
    }

    def call_command(c: FakeCommand) -> list[Reply]:
        later(fake, c, 0.3, f"{c.target}#AgentState#{delayed[c.name]}#{NOW}")
        return [Reply(dialog(c.target, legs[c.name], "77", "200"))]

    for name in delayed:
        fake.script[name] = call_command
    agent = client.agent("100")
    await agent.login()
    assert state_now(agent) is AgentStatus.READY
    made = await agent.make_call("200")
    assert made.state == "INITIATED" and state_now(agent) is AgentStatus.TALKING
    assert call_state_now(agent, "77") is CallStatus.INITIATED
    await agent.hold("77")
    assert state_now(agent) is AgentStatus.HOLD and call_state_now(agent, "77") is CallStatus.HELD
    await agent.retrieve("77")
    assert (
        state_now(agent) is AgentStatus.TALKING and call_state_now(agent, "77") is CallStatus.ACTIVE
    )
    await agent.release("77")
    assert state_now(agent) is AgentStatus.READY and "77" not in agent.calls
    await asyncio.sleep(0.4)  # the connector's own AgentStates agree
    assert state_now(agent) is AgentStatus.READY


async def test_after_the_last_call_the_state_is_the_idle_state_last_reported(
    fake: FakeConnector, client: Client
) -> None:
    agent = client.agent("100")
    await agent.login()
    await fake.push(TOPIC, f"100#AgentState#NOT_READY#{NOW}")
    await until(lambda: agent.state is AgentStatus.NOT_READY)
    await fake.push(TOPIC, dialog("100", "ACTIVE", "5", "200"))
    await until(lambda: agent.state is AgentStatus.TALKING)
    await agent.release("5")
    assert agent.state is AgentStatus.NOT_READY


async def test_the_connector_corrects_a_state_brought_forward(
    fake: FakeConnector, client: Client
) -> None:
    agent = client.agent("100")
    await agent.login()
    await fake.push(TOPIC, dialog("100", "ACTIVE", "5", "200"))
    await until(lambda: agent.state is AgentStatus.TALKING)
    await agent.release("5")
    assert agent.state is AgentStatus.READY
    await fake.push(TOPIC, f"100#AgentState#WORK_READY#{NOW}")  # wrap-up configured on CUCM
    await until(lambda: agent.state is AgentStatus.WORK_READY)


async def test_an_answer_of_another_type_waits_for_the_typed_one(
    fake: FakeConnector, client: Client
) -> None:
    def hold(c: FakeCommand) -> list[Reply]:
        later(fake, c, 0.1, dialog(c.target, "HELD", c.args[0], "200"))
        return [Reply(f"{c.target}#AgentState#HOLD#{NOW}")]

    fake.script["HoldCall"] = hold
    agent = client.agent("100")
    held = await agent.hold("9")
    assert isinstance(held, DialogState) and held.state == "HELD" and held.connection_id == "9"


async def test_an_answer_of_another_type_never_followed_times_out(
    fake: FakeConnector, client: Client
) -> None:
    fake.script["HoldCall"] = lambda c: [Reply(f"{c.target}#AgentState#HOLD#{NOW}")]
    agent = client.agent("100")
    with pytest.raises(CommandTimeout, match="no DialogState"):
        await agent.hold("9", ttl=0.2)


# -- argument order --------------------------------------------------------------------------------


async def test_new_argument_order_sends_the_guides_bodies(
    fake: FakeConnector, client: Client
) -> None:
    agent = client.agent("100")
    await agent.blind_transfer("9", other="300")
    await agent.consult("10", other="400")
    await agent.consult(connection_id="11", other="401")
    await agent.transfer("7")
    await agent.transfer("7", other="200")
    await agent.conference("8")
    await agent.conference(connection_id="8", other="200")
    assert [c.args for c in fake.commands("Transfer_sst")] == [("300", "9")]
    assert [c.args for c in fake.commands("ConsultCall")] == [("400", "10"), ("401", "11")]
    assert [c.args for c in fake.commands("TransferCall")] == [("7",), ("200", "7")]
    assert [c.args for c in fake.commands("Conferencecall")] == [("8",), ("200", "8")]


OLD_FORMS: list[tuple[str, Callable[[AgentSession], Awaitable[Any]], str, tuple[str, ...]]] = [
    ("consult(other, cid)", lambda a: a.consult("400", "10"), "ConsultCall", ("400", "10")),
    (
        "consult(other, connection_id=cid)",
        # The 0.1 form the overloads leave out on purpose (it warns); the test calls it anyway.
        lambda a: a.consult("400", connection_id="10"),  # type: ignore[call-overload]
        "ConsultCall",
        ("400", "10"),
    ),
    (
        "blind_transfer(other, cid)",
        lambda a: a.blind_transfer("300", "9"),
        "Transfer_sst",
        ("300", "9"),
    ),
    ("transfer(cid, other)", lambda a: a.transfer("7", "200"), "TransferCall", ("200", "7")),
    (
        "conference(cid, other)",
        lambda a: a.conference("8", "200"),
        "Conferencecall",
        ("200", "8"),
    ),
]


@pytest.mark.parametrize(
    ("form", "call", "command", "body"), OLD_FORMS, ids=[form[0] for form in OLD_FORMS]
)
async def test_old_argument_order_still_works_with_a_deprecation_warning(
    fake: FakeConnector,
    client: Client,
    form: str,
    call: Callable[[AgentSession], Awaitable[Any]],
    command: str,
    body: tuple[str, ...],
) -> None:
    agent = client.agent("100")
    with pytest.warns(DeprecationWarning, match="other=") as caught:
        await call(agent)
    assert caught[0].filename == __file__  # points at the caller's line
    assert [c.args for c in fake.commands(command)] == [body]


async def test_argument_mistakes_raise_before_sending(fake: FakeConnector, client: Client) -> None:
    agent = client.agent("100")
    bad: list[Callable[[], Awaitable[Any]]] = [
        lambda: agent.consult("10"),  # type: ignore[call-overload]
        lambda: agent.blind_transfer("9"),  # type: ignore[call-overload]
        lambda: agent.consult("1", "2", "3"),  # type: ignore[call-overload]
        lambda: agent.consult("400", "10", other="5"),  # type: ignore[call-overload]
        lambda: agent.transfer("7", connection_id="7"),  # type: ignore[call-overload]
        lambda: agent.transfer(),  # type: ignore[call-overload]
    ]
    for attempt in bad:
        with pytest.raises(TypeError):
            await attempt()
    for name in ("ConsultCall", "Transfer_sst", "TransferCall"):
        assert fake.commands(name) == []


# -- make_ready / make_not_ready -------------------------------------------------------------------


async def test_make_ready_and_not_ready_on_the_wire(fake: FakeConnector, client: Client) -> None:
    def state_reply(state: str) -> Callable[[FakeCommand], list[Reply]]:
        return lambda c: [Reply(f"{c.target}#AgentState#{state}#{NOW}")]

    fake.script["MakeReady"] = state_reply("READY")
    fake.script["MakeNotReady"] = state_reply("NOT_READY")
    fake.script["MakeNotReadyWithReason"] = state_reply("NOT_READY")
    agent = client.agent("100")
    assert (await agent.make_not_ready()).state == "NOT_READY"
    assert state_now(agent) is AgentStatus.NOT_READY
    assert (await agent.make_ready()).state == "READY"
    assert state_now(agent) is AgentStatus.READY
    await agent.make_not_ready(reason=7)
    await agent.make_not_ready("12")
    assert [c.args for c in fake.commands("MakeNotReady")] == [()]
    assert [c.args for c in fake.commands("MakeReady")] == [()]
    assert [c.args for c in fake.commands("MakeNotReadyWithReason")] == [("7",), ("12",)]


@pytest.fixture
async def emulated() -> AsyncIterator[tuple[Emulator, Client]]:
    async with Emulator("memory://") as emulator, Client("memory://", ttl=5.0) as c:
        yield emulator, c


async def test_make_not_ready_then_ready_against_the_emulator(
    emulated: tuple[Emulator, Client],
) -> None:
    emulator, client = emulated
    agent, other = client.agent("1001"), client.agent("1002")
    await agent.login()
    await other.login()
    assert (await agent.make_not_ready(reason=3)).state == AgentStatus.NOT_READY
    assert emulator.model.agents["1001"].state == "NOT_READY"
    assert state_now(agent) is AgentStatus.NOT_READY
    assert (await agent.make_ready()).state == AgentStatus.READY
    assert state_now(agent) is AgentStatus.READY
    await agent.logout()
    await other.logout()


# -- next_call and wait_for ------------------------------------------------------------------------


async def test_next_call_returns_each_inbound_call_once(emulated: tuple[Emulator, Client]) -> None:
    emulator, client = emulated
    agent = client.agent("1001")
    await agent.login()
    cid = await emulator.place_call("5550001", "1001")
    await until(lambda: cid in agent.calls)  # already ringing when next_call is called
    call = await agent.next_call(timeout=1.0)
    assert call.connection_id == cid and call.inbound and call.other_party == "5550001"
    assert call.state is CallStatus.ALERTING
    with pytest.raises(TimeoutError):
        await agent.next_call(timeout=0.1)  # the same call is not returned twice
    waiting = asyncio.ensure_future(agent.next_call(timeout=5.0))
    await emulator.hangup(cid)  # the caller gives up: that call is gone
    await until(lambda: not agent.calls)
    second = await emulator.place_call("5550002", "1001")
    assert (await waiting).connection_id == second
    await agent.answer(second)
    assert agent.state is AgentStatus.TALKING
    await agent.release(second)
    await agent.logout()


async def test_next_call_ignores_outbound_calls(emulated: tuple[Emulator, Client]) -> None:
    _, client = emulated
    a, b = client.agent("1001"), client.agent("1002")
    await a.login()
    await b.login()
    made = await a.make_call("1002")
    assert made.connection_id is not None
    assert (await b.next_call(timeout=2.0)).connection_id == made.connection_id
    with pytest.raises(TimeoutError):
        await a.next_call(timeout=0.1)
    await a.release(made.connection_id)
    await a.logout()
    await b.logout()


async def test_wait_for_sees_what_a_command_causes_and_filters(
    emulated: tuple[Emulator, Client],
) -> None:
    _, client = emulated
    a, b = client.agent("1001"), client.agent("1002")
    await a.login()
    await b.login()
    alerting = a.wait_for(DialogState, lambda e: e.state == CallStatus.ALERTING, timeout=2.0)
    ringing = b.wait_for(InboundCall, timeout=2.0)
    made = await a.make_call("1002")
    assert (await alerting).connection_id == made.connection_id
    inbound = await ringing
    assert inbound.other_party == "1001" and inbound.state == "ALERTING"
    assert made.connection_id is not None
    await a.release(made.connection_id)
    await a.logout()
    await b.logout()


async def test_wait_for_timeout_predicate_error_and_close(
    fake: FakeConnector, client: Client
) -> None:
    agent = client.agent("100")
    with pytest.raises(TimeoutError):
        await agent.wait_for(AgentState, timeout=0.05)
    with pytest.raises(TypeError, match="agent's event type"):
        agent.wait_for(cucmconn.SystemStatus)  # never reaches an agent: refused, not hung

    def broken(event: AgentState) -> bool:
        raise RuntimeError("predicate bug")

    failing = agent.wait_for(AgentState, broken, timeout=2.0)
    cancelled = agent.wait_for(AgentState, timeout=2.0)
    cancelled.cancel()
    await fake.push(TOPIC, f"100#AgentState#READY#{NOW}")
    with pytest.raises(RuntimeError, match="predicate bug"):
        await failing
    forever = agent.wait_for(DialogState)
    pending_call = asyncio.ensure_future(agent.next_call())
    await asyncio.sleep(0)
    await client.close()
    with pytest.raises(ConnectionLost):
        await forever
    with pytest.raises(ConnectionLost):
        await pending_call


# -- on a real ActiveMQ with its default transport options -----------------------------------------


async def test_state_when_commands_return_on_a_default_activemq(
    default_activemq: BrokerHandle,
) -> None:
    """The issue's report: state None after login, HOLD after retrieve, on a real broker."""
    url = default_activemq.stomp_url
    async with Emulator(url, extensions="5000-5099"), Client(url, ttl=10.0) as client:
        a, b = client.agent("5001"), client.agent("5002")
        await a.login()
        assert state_now(a) is AgentStatus.READY
        await b.login()
        made = await a.make_call("5002")
        assert state_now(a) is AgentStatus.TALKING
        call = await b.next_call(timeout=5.0)
        assert call.connection_id == made.connection_id
        await b.answer(call.connection_id)
        assert state_now(b) is AgentStatus.TALKING
        await a.hold(call.connection_id)
        assert state_now(a) is AgentStatus.HOLD
        await a.retrieve(call.connection_id)
        assert state_now(a) is AgentStatus.TALKING
        await a.release(call.connection_id)
        assert state_now(a) is AgentStatus.READY and not a.calls
        await a.logout()
        assert state_now(a) is AgentStatus.LOGOUT and not a.logged_in
        await b.logout()
