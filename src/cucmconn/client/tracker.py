"""What the client knows about one agent: state, calls, streams and its one-at-a-time turn.

The client keeps one :class:`AgentTracker` per extension and applies every event the agent owns
to it; :class:`~cucmconn.client.agent.AgentSession` is the application's view of it and reads
it through these public methods only.  An idle tracker must stay small because a server client
multiplexes 10,000 agents on one connection: ``__slots__``, and the streams are only created
when first needed.  The turn is a one-slot :class:`~cucmconn.client.slots.Slots` rather than an
``asyncio.Lock``: its waiter queue exists only while commands wait, and ``asyncio.Lock`` lets a
newcomer overtake a woken waiter, while Cisco Finesse's rule is strict order per agent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import msgspec

from ..codec.events import (
    AgentInfo,
    AgentState,
    AgentStatus,
    CallStatus,
    DialogState,
    Event,
    InboundCall,
)
from ..errors import ConnectionLost
from .slots import Slots
from .stats import StatsCounters
from .streams import EventStream, Overflow, StreamItem, StreamSet

__all__ = ["AgentTracker", "Call"]

_ENDED = frozenset({"DROPPED", "FAILED"})
_UP = frozenset({CallStatus.ACTIVE, CallStatus.INITIATED, CallStatus.INITIATING})
_ON_CALL = frozenset({AgentStatus.TALKING, AgentStatus.HOLD})
# Exact wire value -> member: the hot path's one dict lookup (parse() handles the rest).
_AGENT_STATES: dict[str, AgentStatus] = {member.value: member for member in AgentStatus}
_CALL_STATES: dict[str, CallStatus] = {member.value: member for member in CallStatus}
# Members as plain module constants: an Enum class attribute lookup costs more on this path.
_LOGOUT, _TALKING, _HOLD = AgentStatus.LOGOUT, AgentStatus.TALKING, AgentStatus.HOLD
_ALERTING, _HELD = CallStatus.ALERTING, CallStatus.HELD
E = TypeVar("E", bound=Event)


class Call(msgspec.Struct, frozen=True, gc=False):
    """One call of an agent as last reported; replaced (not mutated) on every update."""

    connection_id: str
    """The call's id, which every call command takes."""
    state: CallStatus | str
    """This agent's leg: a :class:`~cucmconn.CallStatus` value (``ALERTING``, ``ACTIVE``, ...)."""
    participants: tuple[str, ...] = ()
    """Every party on the call, as last reported."""
    other_party: str | None = None
    """The party at the other end (the first participant that is not this agent)."""
    changed_at: str | None = None
    """When the leg last changed (an ``InboundCall``: when the call started)."""
    inbound: bool = False
    """True for a call that rang in at this agent (it came as an ``InboundCall``)."""


class _Waiter:
    """One :meth:`AgentTracker.wait_for`: the event type, the test, the future, its deadline."""

    __slots__ = ("future", "kind", "predicate", "timer")

    def __init__(
        self,
        kind: type[Any],
        predicate: Callable[[Any], bool] | None,
        future: asyncio.Future[Any],
    ) -> None:
        self.kind = kind
        self.predicate = predicate
        self.future = future
        self.timer: asyncio.TimerHandle | None = None


_EMPTY: Mapping[str, Call] = MappingProxyType({})


class AgentTracker:
    """One extension's state as its events report it, its event streams and its command turn."""

    __slots__ = (
        "_buffer",
        "_calls",
        "_counters",
        "_idle",
        "_overflow",
        "_streams",
        "_taken",
        "_waiters",
        "extension",
        "info",
        "logged_in",
        "state",
        "turn",
    )

    def __init__(
        self, extension: str, buffer: int, overflow: Overflow, counters: StatsCounters
    ) -> None:
        self.extension = extension
        self.state: AgentStatus | str | None = None
        """The last AgentState reported (READY, TALKING, ...), brought forward by the agent's
        own call events (see :meth:`apply`), or None before any."""
        self.info: AgentInfo | None = None
        self.logged_in = False
        self.turn = Slots(1)
        """One command in flight per agent; the rest queue in arrival order."""
        self._calls: dict[str, Call] | None = None
        self._idle: AgentStatus | str | None = None  # the last state reported with no call up
        self._taken: set[str] | None = None  # ringing calls next_call() already returned
        self._waiters: list[_Waiter] | None = None
        self._streams: StreamSet | None = None
        self._buffer = buffer
        self._overflow: Overflow = overflow
        self._counters = counters

    @property
    def calls(self) -> Mapping[str, Call]:
        """Connection id -> Call, kept current from events; ended calls are removed."""
        return MappingProxyType(self._calls) if self._calls else _EMPTY

    @property
    def streaming(self) -> bool:
        """True while at least one reader holds a stream of this agent's events."""
        return bool(self._streams)

    def open_stream(self, maxlen: int | None = None) -> EventStream:
        """A new bounded stream of this agent's events from now on (dropped readers vanish)."""
        stream = EventStream(maxlen or self._buffer, self._overflow, self._counters)
        if self._streams is None:
            self._streams = StreamSet()
        self._streams.add(stream)
        return stream

    def mark_logged_in(self, logged_in: bool) -> None:
        """A Login or Logout command succeeded: believe it until an event says otherwise."""
        self.logged_in = logged_in

    def apply(self, event: Event) -> None:
        """Update state and calls from one of this agent's events, then hand it on.

        A call event of the agent also brings :attr:`state` forward at once, by Cisco
        Finesse's rule (the emulator's too): ``TALKING`` while a call is up or being dialled,
        ``HOLD`` while every call is held, else the idle state last reported.  So a command
        answered by a ``DialogState`` returns with :attr:`state` already saying what the
        connector's ``AgentState``, which may arrive in a later read, will confirm or correct.
        Then the event goes to the agent's streams and :meth:`wait_for` waiters.
        """
        if isinstance(event, AgentState):
            state = _AGENT_STATES.get(event.state) or AgentStatus.parse(event.state)
            self.state = state
            self.logged_in = state != _LOGOUT
            if state not in _ON_CALL:
                self._idle = state
            if not self.logged_in:
                self._calls = None
                self._taken = None
        elif isinstance(event, DialogState):
            self._apply_dialog(event)
            self._bring_state_forward()
        elif isinstance(event, InboundCall):
            self._apply_inbound(event)
            self._bring_state_forward()
        elif isinstance(event, AgentInfo):
            self.info = event
        if self._streams:
            self.notify(event)
        if self._waiters:
            self._wake(event)

    def wait_for(
        self, kind: type[E], predicate: Callable[[E], bool] | None, timeout: float | None
    ) -> asyncio.Future[E]:
        """A future of the next ``kind`` event of this agent that ``predicate`` accepts.

        Registered now (events already applied are not seen); ``TimeoutError`` after
        ``timeout`` seconds, ``ConnectionLost`` when the tracker closes, the predicate's own
        exception if it raises.  A cancelled or finished waiter is forgotten at once.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[E] = loop.create_future()
        waiter = _Waiter(kind, predicate, future)
        if timeout is not None:
            waiter.timer = loop.call_later(timeout, _expire, future, kind, timeout)
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        future.add_done_callback(lambda _: self._forget(waiter))
        return future

    def take_ringing(self) -> Call | None:
        """The oldest call ringing in here that this method has not returned yet, or None."""
        if not self._calls:
            return None
        for call in self._calls.values():
            if call.inbound and call.state == CallStatus.ALERTING:
                taken = self._taken
                if taken is None:
                    taken = self._taken = set()
                if call.connection_id not in taken:
                    taken.add(call.connection_id)
                    return call
        return None

    def _wake(self, event: Event) -> None:
        for waiter in list(self._waiters or ()):
            future = waiter.future
            if future.done() or not isinstance(event, waiter.kind):
                continue
            try:
                accepted = waiter.predicate is None or waiter.predicate(event)
            except Exception as exc:
                future.set_exception(exc)
                continue
            if accepted:
                future.set_result(event)

    def _forget(self, waiter: _Waiter) -> None:
        if waiter.timer is not None:
            waiter.timer.cancel()
        waiters = self._waiters
        if waiters is not None:
            with contextlib.suppress(ValueError):
                waiters.remove(waiter)
            if not waiters:
                self._waiters = None

    def _bring_state_forward(self) -> None:
        state = self.state
        if state is None or state is _LOGOUT:
            return
        held = False
        if self._calls:
            for call in self._calls.values():
                leg = call.state
                if leg in _UP or (leg is _ALERTING and not call.inbound):
                    self.state = _TALKING
                    return
                if leg is _HELD:
                    held = True
        if held:
            self.state = _HOLD
        elif state in _ON_CALL and self._idle is not None:
            self.state = self._idle

    def notify(self, item: StreamItem) -> None:
        """Give ``item`` (an event or a notice) to every open stream of this agent."""
        if self._streams:
            self._streams.push(item)

    def close(self) -> None:
        """End every stream of this agent (readers finish once they drained them); fail every
        :meth:`wait_for` waiter with ConnectionLost."""
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.future.done():
                waiter.future.set_exception(ConnectionLost(f"agent {self.extension}: closed"))
        if self._streams:
            for stream in self._streams.streams():
                stream.close()
            self._streams = None

    def _apply_dialog(self, event: DialogState) -> None:
        cid = event.connection_id
        if cid is None:
            if event.state.upper() == "IDLE":
                self._calls = None  # "no current call" (Login / GetState without a call)
                self._taken = None
            return
        participants = event.participants or ()
        previous = self._calls.get(cid) if self._calls else None
        other = previous.other_party if previous else None
        for party in participants:  # the first one that is not this agent
            if party != self.extension:
                other = party
                break
        inbound = previous.inbound if previous else False
        state = _CALL_STATES.get(event.state) or CallStatus.parse(event.state)
        self._store(Call(cid, state, participants, other, event.changed_at, inbound))

    def _apply_inbound(self, event: InboundCall) -> None:
        cid = event.connection_id
        if cid is None:
            return
        previous = self._calls.get(cid) if self._calls else None
        participants = previous.participants if previous else ()
        if not participants and event.other_party:
            participants = (event.other_party, self.extension)
        other = event.other_party or (previous.other_party if previous else None)
        state = _CALL_STATES.get(event.state) or CallStatus.parse(event.state)
        self._store(Call(cid, state, participants, other, event.start_time, True))

    def _store(self, call: Call) -> None:
        if call.state in _ENDED:
            if self._calls:
                self._calls.pop(call.connection_id, None)
                if not self._calls:
                    self._calls = None
            if self._taken:
                self._taken.discard(call.connection_id)
            return
        if self._calls is None:
            self._calls = {}
        self._calls[call.connection_id] = call


def _expire(future: asyncio.Future[Any], kind: type[Any], timeout: float) -> None:
    if not future.done():
        future.set_exception(TimeoutError(f"no {kind.__name__} within {timeout:g} s"))
