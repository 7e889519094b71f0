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

import weakref
from collections.abc import Mapping
from types import MappingProxyType

import msgspec

from ..codec.events import AgentInfo, AgentState, DialogState, Event, InboundCall
from .slots import Slots
from .stats import StatsCounters
from .streams import EventStream, Overflow, StreamItem

__all__ = ["AgentTracker", "Call"]

_ENDED = frozenset({"DROPPED", "FAILED"})


class Call(msgspec.Struct, frozen=True, gc=False):
    """A call of one agent as last reported; replaced (not mutated) on every update."""

    connection_id: str
    state: str
    participants: tuple[str, ...] = ()
    other_party: str | None = None
    changed_at: str | None = None


_EMPTY: Mapping[str, Call] = MappingProxyType({})


class AgentTracker:
    """One extension's state as its events report it, its event streams and its command turn."""

    __slots__ = (
        "_buffer",
        "_calls",
        "_counters",
        "_overflow",
        "_streams",
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
        self.state: str | None = None
        """The last AgentState reported (READY, TALKING, ...), or None before any."""
        self.info: AgentInfo | None = None
        self.logged_in = False
        self.turn = Slots(1)
        """One command in flight per agent; the rest queue in arrival order."""
        self._calls: dict[str, Call] | None = None
        self._streams: weakref.WeakSet[EventStream] | None = None
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
            self._streams = weakref.WeakSet()
        self._streams.add(stream)
        return stream

    def mark_logged_in(self, logged_in: bool) -> None:
        """A Login or Logout command succeeded: believe it until an event says otherwise."""
        self.logged_in = logged_in

    def apply(self, event: Event) -> None:
        """Update state and calls from one of this agent's events, then hand it to its streams."""
        if isinstance(event, AgentState):
            self.state = event.state
            self.logged_in = event.state.upper() != "LOGOUT"
            if not self.logged_in:
                self._calls = None
        elif isinstance(event, DialogState):
            self._apply_dialog(event)
        elif isinstance(event, InboundCall):
            self._apply_inbound(event)
        elif isinstance(event, AgentInfo):
            self.info = event
        if self._streams:
            self.notify(event)

    def notify(self, item: StreamItem) -> None:
        """Give ``item`` (an event or a notice) to every open stream of this agent."""
        if self._streams:
            for stream in self._streams:
                stream.push(item)

    def close(self) -> None:
        """End every stream of this agent (readers finish once they drained them)."""
        if self._streams:
            for stream in list(self._streams):
                stream.close()
            self._streams = None

    def _apply_dialog(self, event: DialogState) -> None:
        cid = event.connection_id
        if cid is None:
            if event.state.upper() == "IDLE":
                self._calls = None  # "no current call" (Login / GetState without a call)
            return
        participants = event.participants or ()
        others = [p for p in participants if p != self.extension]
        previous = self._calls.get(cid) if self._calls else None
        other = others[0] if others else (previous.other_party if previous else None)
        self._store(Call(cid, event.state, participants, other, event.changed_at))

    def _apply_inbound(self, event: InboundCall) -> None:
        cid = event.connection_id
        if cid is None:
            return
        previous = self._calls.get(cid) if self._calls else None
        participants = previous.participants if previous else ()
        if not participants and event.other_party:
            participants = (event.other_party, self.extension)
        other = event.other_party or (previous.other_party if previous else None)
        self._store(Call(cid, event.state, participants, other, event.start_time))

    def _store(self, call: Call) -> None:
        if call.state.upper() in _ENDED:
            if self._calls:
                self._calls.pop(call.connection_id, None)
                if not self._calls:
                    self._calls = None
            return
        if self._calls is None:
            self._calls = {}
        self._calls[call.connection_id] = call
