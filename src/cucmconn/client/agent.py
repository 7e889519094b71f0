"""One agent (extension) on a client: its commands, its state and calls, its event streams.

An idle session must stay small because a server client multiplexes 10,000 of them on one
connection: ``__slots__``, and the streams are only created when first needed.  The per-agent
turn is a one-slot :class:`~cucmconn.client.slots.Slots` rather than an ``asyncio.Lock``: its
waiter queue exists only while commands wait, and ``asyncio.Lock`` lets a newcomer overtake a
woken waiter, while Cisco Finesse's rule is strict order per agent.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import msgspec

from ..codec.events import (
    AgentInfo,
    AgentState,
    DialogState,
    Event,
    InboundCall,
)
from .slots import Slots
from .streams import EventStream, StreamItem

if TYPE_CHECKING:
    from .client import Client

__all__ = ["AgentSession", "Call"]

_ENDED = frozenset({"DROPPED", "FAILED"})
_EMPTY: Mapping[str, Call] = MappingProxyType({})


class Call(msgspec.Struct, frozen=True, gc=False):
    """A call of one agent as last reported; replaced (not mutated) on every update."""

    connection_id: str
    state: str
    participants: tuple[str, ...] = ()
    other_party: str | None = None
    changed_at: str | None = None


class AgentSession:
    """Commands for one extension, serialised: the next waits until the previous is answered."""

    __slots__ = (
        "_calls",
        "_client",
        "_info",
        "_logged_in",
        "_state",
        "_streams",
        "_turn",
        "extension",
    )

    def __init__(self, client: Client, extension: str) -> None:
        self._client = client
        self.extension = extension
        self._state: str | None = None
        self._info: AgentInfo | None = None
        self._logged_in = False
        self._calls: dict[str, Call] | None = None
        self._turn = Slots(1)  # one command in flight per agent; the rest queue in order
        self._streams: weakref.WeakSet[EventStream] | None = None

    def __repr__(self) -> str:
        return (
            f"AgentSession({self.extension!r}, state={self._state!r}, "
            f"calls={len(self._calls or ())}, logged_in={self._logged_in})"
        )

    # -- what the application reads -----------------------------------------------------------

    @property
    def state(self) -> str | None:
        """The last AgentState reported (READY, TALKING, ...), or None before any."""
        return self._state

    @property
    def info(self) -> AgentInfo | None:
        return self._info

    @property
    def logged_in(self) -> bool:
        return self._logged_in

    @property
    def calls(self) -> Mapping[str, Call]:
        """Connection id -> Call, kept current from events; ended calls are removed."""
        return MappingProxyType(self._calls) if self._calls else _EMPTY

    def events(self, maxlen: int | None = None) -> EventStream:
        """A new bounded stream of this agent's events, from now on (one per reader).

        Nothing is buffered for an agent until a reader asks; a stream the reader drops is
        garbage-collected and stops receiving.
        """
        client = self._client
        stream = EventStream(maxlen or client.agent_buffer, client.overflow, client._stats)
        if self._streams is None:
            self._streams = weakref.WeakSet()
        self._streams.add(stream)
        return stream

    # -- commands -----------------------------------------------------------------------------

    async def login(self, *, ttl: float | None = None) -> Event:
        event = await self._client.send("Login", self.extension, self._client.destination, ttl=ttl)
        self._logged_in = True
        return event

    async def logout(self, *, ttl: float | None = None) -> Event:
        event = await self._client.send("Logout", self.extension, ttl=ttl)
        self._logged_in = False
        return event

    async def get_state(self, *, ttl: float | None = None) -> Event:
        return await self._client.send("GetState", self.extension, ttl=ttl)

    async def make_call(self, other: str, *, ttl: float | None = None) -> Event:
        return await self._client.send("MakeCall", self.extension, other, ttl=ttl)

    async def answer(self, connection_id: str, *, ttl: float | None = None) -> Event:
        return await self._client.send("AnswerCall", self.extension, connection_id, ttl=ttl)

    async def release(self, connection_id: str, *, ttl: float | None = None) -> Event:
        return await self._client.send("ReleaseCall", self.extension, connection_id, ttl=ttl)

    async def hold(self, connection_id: str, *, ttl: float | None = None) -> Event:
        return await self._client.send("HoldCall", self.extension, connection_id, ttl=ttl)

    async def retrieve(self, connection_id: str, *, ttl: float | None = None) -> Event:
        return await self._client.send("RetrieveCall", self.extension, connection_id, ttl=ttl)

    async def blind_transfer(
        self, other: str, connection_id: str, *, ttl: float | None = None
    ) -> Event:
        return await self._client.send(
            "Transfer_sst", self.extension, other, connection_id, ttl=ttl
        )

    async def consult(self, other: str, connection_id: str, *, ttl: float | None = None) -> Event:
        return await self._client.send("ConsultCall", self.extension, other, connection_id, ttl=ttl)

    async def transfer(
        self, connection_id: str, other: str | None = None, *, ttl: float | None = None
    ) -> Event:
        """Complete a consult transfer; ``other`` selects the GC 4.x body ``other,cid``."""
        args = (other, connection_id) if other else (connection_id,)
        return await self._client.send("TransferCall", self.extension, *args, ttl=ttl)

    async def conference(
        self, connection_id: str, other: str | None = None, *, ttl: float | None = None
    ) -> Event:
        args = (other, connection_id) if other else (connection_id,)
        return await self._client.send("Conferencecall", self.extension, *args, ttl=ttl)

    # -- applying events (called by the client's delivery callback) ---------------------------

    def _apply(self, event: Event) -> None:
        if isinstance(event, AgentState):
            self._state = event.state
            self._logged_in = event.state.upper() != "LOGOUT"
            if not self._logged_in:
                self._calls = None
        elif isinstance(event, DialogState):
            self._apply_dialog(event)
        elif isinstance(event, InboundCall):
            self._apply_inbound(event)
        elif isinstance(event, AgentInfo):
            self._info = event
        if self._streams:
            self._push(event)

    def _push(self, item: StreamItem) -> None:
        if self._streams:
            for stream in self._streams:
                stream.push(item)

    def _close_streams(self) -> None:
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
