"""One agent (extension) on a client: the application's handle for its commands and state.

The state itself lives in an :class:`~cucmconn.client.tracker.AgentTracker` that the client keeps
current from events; a session reads it and sends commands through the client's public
:meth:`~cucmconn.client.client.Client.send`, so neither reaches into the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..codec.events import AgentInfo, Event
from .streams import EventStream
from .tracker import AgentTracker, Call

if TYPE_CHECKING:
    from .client import Client

__all__ = ["AgentSession", "Call"]


class AgentSession:
    """Commands for one extension, serialised: the next waits until the previous is answered."""

    __slots__ = ("_client", "_tracker", "extension")

    def __init__(self, client: Client, tracker: AgentTracker) -> None:
        self._client = client
        self._tracker = tracker
        self.extension = tracker.extension

    def __repr__(self) -> str:
        tracker = self._tracker
        return (
            f"AgentSession({self.extension!r}, state={tracker.state!r}, "
            f"calls={len(tracker.calls)}, logged_in={tracker.logged_in})"
        )

    # -- what the application reads -----------------------------------------------------------

    @property
    def state(self) -> str | None:
        """The last AgentState reported (READY, TALKING, ...), or None before any."""
        return self._tracker.state

    @property
    def info(self) -> AgentInfo | None:
        return self._tracker.info

    @property
    def logged_in(self) -> bool:
        return self._tracker.logged_in

    @property
    def calls(self) -> Mapping[str, Call]:
        """Connection id -> Call, kept current from events; ended calls are removed."""
        return self._tracker.calls

    def events(self, maxlen: int | None = None) -> EventStream:
        """A new bounded stream of this agent's events, from now on (one per reader).

        Nothing is buffered for an agent until a reader asks; a stream the reader drops is
        garbage-collected and stops receiving.
        """
        return self._tracker.open_stream(maxlen)

    # -- commands -----------------------------------------------------------------------------

    async def login(self, *, ttl: float | None = None) -> Event:
        event = await self._client.send("Login", self.extension, self._client.destination, ttl=ttl)
        self._tracker.mark_logged_in(True)
        return event

    async def logout(self, *, ttl: float | None = None) -> Event:
        event = await self._client.send("Logout", self.extension, ttl=ttl)
        self._tracker.mark_logged_in(False)
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
