"""The test double an application's tests talk to: an emulated connector with scenario control.

``open_connector()`` starts an ``Emulator`` (with its history on) on a fresh ``memory://``
broker, or on a real broker when given its URL, and wraps it in a ``Connector``: what a test
needs to drive a scenario (a customer calls, CUCM goes down, the next MakeCall fails) and to
check what the application sent, with failures that show the recent commands and events.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from ..client import Client
from ..emulator import Emulator, Fault
from ..emulator.checks import ScenarioChecks
from ..emulator.directory import DEFAULT_EXTENSIONS
from ..transport import parse_url, redact_url
from ..transport.memory import MemoryBroker

__all__ = [
    "DETERMINISTIC_EPOCH",
    "CallHandle",
    "CallState",
    "ClientFactory",
    "Connector",
    "ConnectorOptions",
    "ManualClock",
    "open_connector",
]

DETERMINISTIC_EPOCH = 1_767_258_000.0
"""2026-01-01 09:00:00 UTC: where a deterministic connector's clock starts."""
DEFAULT_CALLER = "5550100"
MAX_HANDLES = 1000
"""Outbound calls remembered as already handed to the test (so each is returned once)."""

CallState = Literal["ringing", "connected", "ended"]


class ManualClock:
    """A clock that moves only when told: event timestamps a test can write down in advance."""

    __slots__ = ("now",)

    def __init__(self, start: float = DETERMINISTIC_EPOCH) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        """The current time, epoch seconds."""
        return self.now

    def __repr__(self) -> str:
        return f"ManualClock({self.now!r})"

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ValueError(f"a clock does not go back: {seconds!r}")
        self.now += seconds


@dataclass(frozen=True, slots=True)
class ConnectorOptions:
    """How a test's connector is set up; the pytest marker ``cucmconn(...)`` sets these.

    ``extensions`` is the CUCM directory (``"1001-1010"``), ``licenses`` caps concurrent logins,
    ``event_format`` is ``"default"`` or ``"json"``.  ``deterministic`` fixes the event
    timestamps (a ``ManualClock`` at ``DETERMINISTIC_EPOCH``) and shows correlation ids and
    client destinations as ``c1``/``client-1`` in the history; connection ids always count up
    from the guide's 52129051 on a fresh connector.  ``history`` bounds the commands and events
    kept.  ``queue`` is the command queue (default: Connector1 on memory://, a unique name on a
    real broker so that tests never meet another run's commands).  ``latency`` delays every
    command, as a slow connector would.  ``dial_out`` lets agents call numbers outside the
    directory (customers; see ``Connector.outbound_call``).
    """

    extensions: str = DEFAULT_EXTENSIONS
    event_format: str = "default"
    licenses: int | None = None
    deterministic: bool = False
    history: int = 500
    queue: str | None = None
    latency: float = 0.0
    dial_out: bool = True

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names (what the ``cucmconn`` marker accepts)."""
        return tuple(f.name for f in fields(cls))

    def updated(self, settings: Mapping[str, Any]) -> ConnectorOptions:
        """These options with ``settings`` applied; TypeError naming an unknown setting."""
        unknown = sorted(set(settings) - set(self.names()))
        if unknown:
            raise TypeError(
                f"unknown cucmconn option(s) {', '.join(unknown)}; known: {', '.join(self.names())}"
            )
        return replace(self, **settings)


class CallHandle:
    """One call with a customer in it, to drive from the customer's side (or the phone).

    ``answer()`` is the ringing party picking up: the agent at its phone for a call the test
    placed, the customer for a call an agent dialled.  ``abandon()`` is the customer hanging up
    while it rings, ``release()`` the customer hanging up a connected call.
    """

    __slots__ = ("_connector", "caller", "connection_id", "customer", "to")

    def __init__(
        self, connector: Connector, connection_id: str, to: str, caller: str, customer: str
    ) -> None:
        self._connector = connector
        self.connection_id = connection_id
        self.to = to
        self.caller = caller
        self.customer = customer

    def __repr__(self) -> str:
        return f"CallHandle({self.connection_id!r}, {self.caller} -> {self.to}, {self.state})"

    @property
    def state(self) -> CallState:
        """``ringing`` until someone answers, then ``connected``, ``ended`` once it is gone."""
        call = self._connector.emulator.model.calls.get(self.connection_id)
        if call is None:
            return "ended"
        return "ringing" if call.ringing is not None else "connected"

    async def answer(self) -> None:
        """The agent picks up at its phone (its client sees the call become ACTIVE)."""
        self._expect("ringing", "answered")
        await self._connector.emulator.answer(self.connection_id)

    async def abandon(self) -> None:
        """The customer hangs up before anyone answered."""
        self._expect("ringing", "abandoned")
        await self._connector.emulator.hangup(self.connection_id, self.customer)

    async def release(self) -> None:
        """The customer hangs up a connected call."""
        self._expect("connected", "released by the customer")
        await self._connector.emulator.hangup(self.connection_id, self.customer)

    async def wait_until(self, state: CallState, *, within: float = 5.0) -> None:
        """Wait until the call is ``state`` (e.g. the application answered it)."""
        __tracebackhide__ = True  # pytest: show the test's line, not ours
        if state not in ("ringing", "connected", "ended"):
            raise ValueError(f"state must be ringing, connected or ended, not {state!r}")
        await self._connector.until(
            lambda: self.state == state,
            within=within,
            what=f"call {self.connection_id} from {self.caller} to {self.to} {state}",
        )

    def _expect(self, state: CallState, action: str) -> None:
        if self.state != state:
            raise RuntimeError(
                f"call {self.connection_id} is {self.state}: only a {state} call can be {action}"
            )


class Connector(ScenarioChecks):
    """An emulated CUCM Connector for one test, with scenario control; see ``open_connector``.

    The application under test connects to ``url`` and ``queue`` (``client()`` builds such a
    client).  Everything a test drives or reads is here; ``emulator`` is the full Emulator.
    """

    def __init__(
        self, emulator: Emulator, *, url: str, queue: str, clock: ManualClock | None
    ) -> None:
        self.emulator = emulator
        self.url = url
        self.queue = queue
        self._clock = clock
        self._handed_out: OrderedDict[str, None] = OrderedDict()

    def __repr__(self) -> str:
        return f"Connector({self.display_url!r}, queue={self.queue!r})"

    @property
    def display_url(self) -> str:
        """``url`` without credentials, for messages."""
        return redact_url(self.url)

    @property
    def deterministic(self) -> bool:
        """True when event timestamps come from :attr:`clock` (``cucmconn(deterministic=True)``)."""
        return self._clock is not None

    @property
    def clock(self) -> ManualClock:
        """A deterministic connector's clock: ``clock()`` reads it, ``clock.advance(s)`` moves it.

        Typed as always there, so a test reads it without a None check; a connector on the wall
        clock has nothing to move and raises ``RuntimeError`` saying how to get one.
        """
        if self._clock is None:
            raise RuntimeError(
                "this connector runs on the wall clock: mark the test "
                "@pytest.mark.cucmconn(deterministic=True) for a clock it can move"
            )
        return self._clock

    def client(self, **options: Any) -> Client:
        """A new (not yet connected) Client for this connector; ``options`` go to Client."""
        return Client(self.url, queue=self.queue, **options)

    # -- scenario ----------------------------------------------------------------------------

    async def place_call(
        self, to: str, caller: str = DEFAULT_CALLER, *, within: float = 5.0
    ) -> CallHandle:
        """A customer at ``caller`` calls agent ``to``; returns the call to drive.

        Waits (up to ``within`` seconds) until the agent is logged in and free, so a test
        need not race its application's Login.  Raises CommandError when CUCM refuses the
        call (OUT_OF_SERVICE, WRONG_EXTENSION).
        """
        __tracebackhide__ = True  # pytest: show the test's line, not ours

        def free() -> bool:
            agent = self.emulator.model.agents.get(to)
            return agent is not None and not agent.calls

        if self.emulator.in_service:
            await self.until(free, within=within, what=f"agent {to} logged in and free")
        connection_id = await self.emulator.place_call(caller, to)
        return CallHandle(self, connection_id, to, caller, customer=caller)

    async def outbound_call(self, to: str, *, within: float = 5.0) -> CallHandle:
        """Wait until an agent dials the outside number ``to``; the call, to drive as that
        customer (answer, abandon, release).  Needs ``dial_out`` (the default here).  Each
        call is returned once."""
        __tracebackhide__ = True  # pytest: show the test's line, not ours
        found: list[str] = []

        def dialled() -> bool:
            for cid, call in self.emulator.model.calls.items():
                if to in call.legs and cid not in self._handed_out:
                    found.append(cid)
                    return True
            return False

        await self.until(dialled, within=within, what=f"an agent dialling {to}")
        connection_id = found[0]
        self._handed_out[connection_id] = None
        if len(self._handed_out) > MAX_HANDLES:
            self._handed_out.popitem(last=False)
        caller = next(iter(self.emulator.model.calls[connection_id].legs))
        return CallHandle(self, connection_id, to, caller, customer=to)

    async def set_in_service(self, up: bool) -> None:
        """CUCM goes down (False) or comes back (True); returns once every client was told."""
        await self.emulator.set_in_service(up)

    def restart(self) -> None:
        """The connector restarts: agents, calls and known clients are forgotten."""
        self.emulator.restart()

    def fail_next(
        self,
        command: str | None = None,
        agent: str | None = None,
        *,
        code: str = "CF_INVALID_OBJECT_STATE",
        times: int = 1,
    ) -> Fault:
        """The next matching command is answered ``<agent>#Error#<code>`` without running."""
        return self.emulator.fail_next(command, agent, code=code, times=times)

    def delay_next(
        self,
        command: str | None = None,
        agent: str | None = None,
        *,
        seconds: float,
        times: int = 1,
    ) -> Fault:
        """The next matching command reaches the connector ``seconds`` late (its TTL applies)."""
        return self.emulator.delay_next(command, agent, seconds=seconds, times=times)

    def drop_next_answer(
        self, command: str | None = None, agent: str | None = None, *, times: int = 1
    ) -> Fault:
        """The next matching command runs, but its answer never comes."""
        return self.emulator.drop_next_answer(command, agent, times=times)

    def answer_next_twice(
        self, command: str | None = None, agent: str | None = None, *, times: int = 1
    ) -> Fault:
        """The next matching command runs and each event of its answer comes twice."""
        return self.emulator.answer_next_twice(command, agent, times=times)

    def _scenario_control(self) -> Emulator:
        return self.emulator


class ClientFactory:
    """Makes connected Clients for a connector and closes them all at the end."""

    def __init__(self, connector: Connector) -> None:
        self._connector = connector
        self._clients: list[Client] = []

    async def __call__(self, **options: Any) -> Client:
        """A connected Client (``options`` go to Client: ttl, client_destination, ...).

        On a deterministic connector, clients are named ``client-1``, ``client-2`` ... unless
        ``client_destination`` is given, so their names can be written down in a test.
        """
        if self._connector.deterministic and "client_destination" not in options:
            options["client_destination"] = f"client-{len(self._clients) + 1}"
        client = self._connector.client(**options)
        await client.connect()
        self._clients.append(client)
        return client

    async def close(self) -> None:
        """Close every client made here (newest first)."""
        clients, self._clients = self._clients, []
        for client in reversed(clients):
            await client.close()


@contextlib.asynccontextmanager
async def open_connector(
    url: str | None = None, options: ConnectorOptions | None = None, **settings: Any
) -> AsyncIterator[Connector]:
    """An emulated connector for one test: on a fresh memory:// broker, or on ``url``.

    ``options`` (or keyword ``settings``) are ConnectorOptions.  On a real broker the command
    queue is unique to this connector unless ``queue`` is set.  The pytest plugin's
    ``connector`` fixture is this; use it directly outside pytest.
    """
    options = (options or ConnectorOptions()).updated(settings)
    token = uuid.uuid4().hex[:12]
    memory_name: str | None = None
    if url is None:
        memory_name = f"cucmconn-test-{token}"
        url = f"memory://{memory_name}"
        queue = options.queue or "Connector1"
    else:
        parse_url(url)  # a bad URL fails here, before anything starts
        queue = options.queue or f"cucmconn-test-{token}"
    clock = ManualClock() if options.deterministic else None
    emulator = Emulator(
        url,
        queue=queue,
        extensions=options.extensions,
        licenses=options.licenses,
        event_format=options.event_format,
        latency=options.latency,
        clock=clock,
        history=options.history,
        aliases=options.deterministic,
        dial_out=options.dial_out,
    )
    try:
        async with emulator:
            yield Connector(emulator, url=url, queue=queue, clock=clock)
    finally:
        if memory_name is not None:
            MemoryBroker.reset(memory_name)
