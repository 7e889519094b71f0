"""One agent (extension) on a client: the application's handle for its commands and state.

The state itself lives in an :class:`~cucmconn.client.tracker.AgentTracker` that the client keeps
current from events; a session reads it and sends commands through the client's public
:meth:`~cucmconn.client.client.Client.send`, so neither reaches into the other.

Each command method returns the event type the connector answers it with (the client matches
the first event carrying the command's correlation id).  Should that first event be of another
type (a connector that orders its answers differently, or an id-less event matched by the
fallback table), the method waits, within the command's TTL, for the agent's next event of the
promised type, so the annotation never lies.

Argument order, the same for every call command: the call's connection id first, positionally;
the other party, where there is one, is the keyword-only ``other=``.  The 0.1 forms
``consult(other, cid)``, ``blind_transfer(other, cid)``, ``transfer(cid, other)`` and
``conference(cid, other)`` still work in this release with a ``DeprecationWarning``.  The rule
that tells them apart never guesses from the values: two positional arguments are the old form.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar, overload

from ..codec.events import (
    AgentInfo,
    AgentState,
    AgentStatus,
    CallStatus,
    DialogState,
    ErrorEvent,
    Event,
    InboundCall,
    TerminalStatus,
)
from ..errors import CommandTimeout
from .streams import EventStream
from .tracker import AgentTracker, Call

if TYPE_CHECKING:
    from .client import Client

__all__ = ["AgentSession", "Call"]

E = TypeVar("E", bound=Event)
_AGENT_EVENTS = (AgentInfo, AgentState, DialogState, InboundCall, TerminalStatus, ErrorEvent)
"""The event types an agent receives (SystemStatus and UnknownEvent belong to no agent)."""


def _is_ringing(event: InboundCall) -> bool:
    return event.state.upper() == CallStatus.ALERTING


def _call_and_party(
    method: str,
    args: tuple[str, ...],
    connection_id: str | None,
    other: str | None,
    *,
    other_came_first: bool,
) -> tuple[str, str | None]:
    """``(connection_id, other)`` from a call command's arguments, old (0.1) forms included.

    The rule is positional count, never the values: two positional arguments are the 0.1 form,
    whose order was ``(other, connection_id)`` for consult/blind_transfer
    (``other_came_first``) and ``(connection_id, other)`` for transfer/conference.
    """
    if len(args) > 2:
        raise TypeError(f"{method}() takes a connection id and other=, not {len(args)} positionals")
    if len(args) == 2:
        if connection_id is not None or other is not None:
            raise TypeError(f"{method}() got the call and the party both positionally and by name")
        first, second = args
        old = "other, connection_id" if other_came_first else "connection_id, other"
        warnings.warn(
            f"{method}({old}) is deprecated; call {method}(connection_id, other=...) "
            "(the connection id first, the other party by keyword)",
            DeprecationWarning,
            stacklevel=3,
        )
        return (second, first) if other_came_first else (first, second)
    if len(args) == 1:
        if connection_id is not None:
            if not other_came_first or other is not None:
                raise TypeError(f"{method}() got multiple values for connection_id")
            # 0.1: consult("1002", connection_id=cid): the one positional was the other party.
            warnings.warn(
                f"{method}(other, connection_id=...) is deprecated; call "
                f"{method}(connection_id, other=...)",
                DeprecationWarning,
                stacklevel=3,
            )
            return connection_id, args[0]
        connection_id = args[0]
    if connection_id is None:
        raise TypeError(f"{method}() missing the call's connection_id")
    return connection_id, other


class AgentSession:
    """One extension's commands, state and events; get it with :meth:`Client.agent`.

    ``extension`` is the agent's extension (its login id), the target of every command.

    Commands of one agent are serialised: the next is sent once the previous was answered, in
    call order (Cisco Finesse's rule).  Every command method returns the event that answered
    it, typed, or raises:

    * :class:`~cucmconn.CommandError` -- the connector refused it (``<agent>#Error#<CODE>``;
      ``.code``, and ``.advice`` from the guide);
    * :class:`~cucmconn.CommandTimeout` -- no answer within ``ttl`` (default: the client's);
    * :class:`~cucmconn.ServiceUnavailable` -- the connector is OUT_OF_SERVICE (CUCM down);
    * :class:`~cucmconn.ConnectionLost` -- the link dropped while the command was in flight:
      its outcome is unknown and it is not re-sent;
    * ``ValueError`` before anything is sent, when an argument holds ``,`` ``#`` ``|`` or a
      control character (it would inject a field).

    When a command returns, :attr:`state` and :attr:`calls` already include what its answer
    says.
    """

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
    def state(self) -> AgentStatus | str | None:
        """The agent's state: an :class:`~cucmconn.AgentStatus` member, or ``None`` before any.

        It is what the connector last reported, brought forward by the agent's own call events:
        an answered, held, retrieved or ended call moves it to ``TALKING``, ``HOLD`` or back to
        the idle state the connector last reported (``READY``, ``NOT_READY``) at once, and the
        connector's ``AgentState`` that follows confirms (or corrects) it.  A state this version
        does not know stays a plain ``str``.
        """
        return self._tracker.state

    @property
    def info(self) -> AgentInfo | None:
        """The :class:`~cucmconn.AgentInfo` from the last login, or ``None`` before one."""
        return self._tracker.info

    @property
    def logged_in(self) -> bool:
        """True from a successful login until a logout (or an ``AgentState`` ``LOGOUT``)."""
        return self._tracker.logged_in

    @property
    def calls(self) -> Mapping[str, Call]:
        """Connection id -> :class:`Call`, kept current from events; ended calls are removed."""
        return self._tracker.calls

    def events(self, maxlen: int | None = None) -> EventStream:
        """A new bounded stream of this agent's events, from now on (one per reader).

        Nothing is buffered for an agent until a reader asks; a stream the reader drops is
        garbage-collected and stops receiving.  ``maxlen`` defaults to the client's
        ``agent_buffer``.  The stream ends when the client closes.
        """
        return self._tracker.open_stream(maxlen)

    def wait_for(
        self,
        kind: type[E],
        predicate: Callable[[E], bool] | None = None,
        *,
        timeout: float | None = None,
    ) -> asyncio.Future[E]:
        """A future of this agent's next event of type ``kind`` for which ``predicate`` is true.

        It watches from the moment it is *called*, so an event a command causes cannot slip
        past: call it before the command, await it after::

            ended = agent.wait_for(DialogState, lambda e: e.state == CallStatus.DROPPED)
            await agent.make_call("1002")
            await ended

        ``kind`` is one of the events an agent receives: ``AgentInfo``, ``AgentState``,
        ``DialogState``, ``InboundCall``, ``TerminalStatus`` or ``ErrorEvent`` (anything else
        raises ``TypeError`` at once; read ``client.events()`` for the others).  The future
        fails with ``TimeoutError`` after ``timeout`` seconds (``None``: no deadline; cancel it
        instead) and :class:`~cucmconn.ConnectionLost` when the client closes.  An exception
        from ``predicate`` fails the future with it.  Cancelling the future stops the watch.
        """
        if not (isinstance(kind, type) and issubclass(kind, _AGENT_EVENTS)):
            names = ", ".join(k.__name__ for k in _AGENT_EVENTS)
            raise TypeError(f"wait_for() takes an agent's event type ({names}), not {kind!r}")
        return self._tracker.wait_for(kind, predicate, timeout)

    async def next_call(self, *, timeout: float | None = None) -> Call:  # noqa: ASYNC109
        """The next call ringing in at this agent (an ``InboundCall`` ``ALERTING``).

        ``timeout`` mirrors :meth:`wait_for`'s (``asyncio.timeout`` around it works as well).

        A call already ringing that no earlier ``next_call()`` returned is returned at once, so
        a loop of ``next_call()`` / ``answer()`` misses none.  Sends nothing.  Raises
        ``TimeoutError`` after ``timeout`` seconds (``None``: no deadline) and
        :class:`~cucmconn.ConnectionLost` when the client closes.
        """
        tracker = self._tracker
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            call = tracker.take_ringing()
            if call is not None:
                return call
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            await tracker.wait_for(InboundCall, _is_ringing, remaining)

    # -- commands -----------------------------------------------------------------------------

    async def login(self, *, ttl: float | None = None) -> AgentInfo:
        """Log the agent in: sends ``Login#<ext>`` with this client's destination as body.

        Resolves with the :class:`~cucmconn.AgentInfo` that answers it, once the
        ``AgentState`` the guide says follows it has arrived too, so :attr:`state` is set
        (if it never comes, login returns at the TTL with :attr:`state` unchanged).  Raises
        ``CommandError`` ``PRIVILLEGE_VIOLATION`` when another client holds the agent,
        ``USER_NOT_FOUND`` / ``WRONG_EXTENSION`` for an unknown extension,
        ``LICENSES_EXCEEDED``, and the errors every command raises.
        """
        ttl = self._ttl(ttl)
        deadline = asyncio.get_running_loop().time() + ttl
        state_reported = self._tracker.wait_for(AgentState, None, ttl)
        try:
            answer = await self._client.send(
                "Login", self.extension, self._client.destination, ttl=ttl
            )
            info = await self._typed(answer, AgentInfo, "Login", deadline)
            self._tracker.mark_logged_in(True)
            with contextlib.suppress(TimeoutError):
                await state_reported
            return info
        finally:
            state_reported.cancel()

    async def logout(self, *, ttl: float | None = None) -> AgentState:
        """Log the agent out: sends ``Logout#<ext>``; resolves with ``AgentState`` ``LOGOUT``.

        Raises ``CommandError`` ``CF_INVALID_OBJECT_STATE`` while the agent has a call (release
        it first), ``PRIVILLEGE_VIOLATION`` when another client logged it in.
        """
        answer = await self._command("Logout", (), AgentState, ttl)
        self._tracker.mark_logged_in(False)
        return answer

    async def get_state(self, *, ttl: float | None = None) -> AgentState:
        """Ask for the agent's state: sends ``GetState#<ext>``; resolves with ``AgentState``.

        A ``DialogState`` per current call follows (``IDLE`` without one).  An agent nobody
        logged in answers ``LOGOUT``, not an error.
        """
        return await self._command("GetState", (), AgentState, ttl)

    async def make_ready(self, *, ttl: float | None = None) -> AgentState:
        """Make the agent available: sends ``MakeReady#<ext>``; resolves with ``AgentState``.

        The state is ``READY``, or ``TALKING`` / ``HOLD`` while a call is up (the agent becomes
        ready when it ends).  Raises ``CommandError`` ``CF_INVALID_OBJECT_STATE`` when the agent
        is not logged in.
        """
        return await self._command("MakeReady", (), AgentState, ttl)

    async def make_not_ready(
        self, reason: str | int | None = None, *, ttl: float | None = None
    ) -> AgentState:
        """Make the agent unavailable; resolves with ``AgentState`` (``NOT_READY``).

        Sends ``MakeNotReady#<ext>``, or ``MakeNotReadyWithReason#<ext>`` with ``reason`` (a
        reason code) as body.  While a call is up the state stays ``TALKING`` / ``HOLD`` and
        becomes ``NOT_READY`` when it ends.  Raises ``CommandError``
        ``CF_INVALID_OBJECT_STATE`` when the agent is not logged in.
        """
        if reason is None:
            return await self._command("MakeNotReady", (), AgentState, ttl)
        return await self._command("MakeNotReadyWithReason", (str(reason),), AgentState, ttl)

    async def make_call(self, other: str, *, ttl: float | None = None) -> DialogState:
        """Call ``other`` (an extension): sends ``MakeCall#<ext>`` with body ``other``.

        Resolves with the caller's ``DialogState`` ``INITIATED``, whose ``connection_id`` names
        the new call; ``ALERTING`` follows while it rings, and the callee gets an
        ``InboundCall``.  Raises ``CommandError`` ``INVALID_PARTY`` when ``other`` is not a
        logged-in agent free to ring (or is this agent), ``CF_INVALID_OBJECT_STATE`` when this
        agent is already on a call.
        """
        return await self._command("MakeCall", (other,), DialogState, ttl)

    async def answer(self, connection_id: str, *, ttl: float | None = None) -> DialogState:
        """Answer the call ringing here: sends ``AnswerCall#<ext>`` with the connection id.

        Resolves with ``DialogState`` ``ACTIVE``.  Raises ``CommandError``
        ``CF_INVALID_OBJECT_STATE`` when that call is not ringing at this agent (or the agent
        is busy on another).
        """
        return await self._command("AnswerCall", (connection_id,), DialogState, ttl)

    async def release(self, connection_id: str, *, ttl: float | None = None) -> DialogState:
        """Hang up: sends ``ReleaseCall#<ext>`` with the connection id.

        Resolves with ``DialogState`` ``DROPPED``; a two-party call ends for both, a conference
        goes on without this agent.  Raises ``CommandError`` ``CF_INVALID_OBJECT_STATE`` when
        the agent is not on that call.
        """
        return await self._command("ReleaseCall", (connection_id,), DialogState, ttl)

    async def hold(self, connection_id: str, *, ttl: float | None = None) -> DialogState:
        """Put the call on hold: sends ``HoldCall#<ext>``; resolves with ``DialogState`` ``HELD``.

        Raises ``CommandError`` ``CF_INVALID_OBJECT_STATE`` when the call is not active here
        (still ringing, or already held).
        """
        return await self._command("HoldCall", (connection_id,), DialogState, ttl)

    async def retrieve(self, connection_id: str, *, ttl: float | None = None) -> DialogState:
        """Take the call off hold: sends ``RetrieveCall#<ext>``; resolves with ``ACTIVE``.

        Raises ``CommandError`` ``CF_INVALID_OBJECT_STATE`` when the call is not held here, or
        another call of this agent is active.
        """
        return await self._command("RetrieveCall", (connection_id,), DialogState, ttl)

    @overload
    async def blind_transfer(
        self, connection_id: str, *, other: str, ttl: float | None = None
    ) -> DialogState: ...

    @overload
    async def blind_transfer(
        self, other: str, connection_id: str, /, *, ttl: float | None = None
    ) -> DialogState: ...

    async def blind_transfer(
        self,
        *args: str,
        connection_id: str | None = None,
        other: str | None = None,
        ttl: float | None = None,
    ) -> DialogState:
        """Transfer the call to ``other`` without consulting: ``blind_transfer(cid, other=ext)``.

        Sends ``Transfer_sst#<ext>`` with body ``other,connection_id``.  Resolves with this
        agent's ``DialogState`` ``DROPPED``: the remote party now rings at ``other``.  Raises
        ``CommandError`` ``INVALID_PARTY`` when ``other`` cannot take a call,
        ``CF_INVALID_OBJECT_STATE`` when the call is not a connected two-party call of this
        agent.  The 0.1 form ``blind_transfer(other, cid)`` works with a DeprecationWarning.
        """
        cid, party = _call_and_party(
            "blind_transfer", args, connection_id, other, other_came_first=True
        )
        if party is None:
            raise TypeError("blind_transfer() needs other=, the extension to transfer to")
        return await self._command("Transfer_sst", (party, cid), DialogState, ttl)

    @overload
    async def consult(
        self, connection_id: str, *, other: str, ttl: float | None = None
    ) -> DialogState: ...

    @overload
    async def consult(
        self, other: str, connection_id: str, /, *, ttl: float | None = None
    ) -> DialogState: ...

    async def consult(
        self,
        *args: str,
        connection_id: str | None = None,
        other: str | None = None,
        ttl: float | None = None,
    ) -> DialogState:
        """Start a consult call to ``other`` about a call: ``consult(cid, other=ext)``.

        Sends ``ConsultCall#<ext>`` with body ``other,connection_id``.  The call goes on hold
        and a new call rings at ``other``; resolves with that new call's ``DialogState``
        ``INITIATED`` (its ``connection_id`` is the consult call).  Finish with
        :meth:`transfer` or :meth:`conference` on the first call.  Raises ``CommandError``
        ``INVALID_PARTY`` when ``other`` cannot take a call, ``CF_INVALID_OBJECT_STATE`` when
        the call is not connected here or a consult is already running.  The 0.1 form
        ``consult(other, cid)`` works with a DeprecationWarning.
        """
        cid, party = _call_and_party("consult", args, connection_id, other, other_came_first=True)
        if party is None:
            raise TypeError("consult() needs other=, the extension to consult")
        return await self._command("ConsultCall", (party, cid), DialogState, ttl)

    @overload
    async def transfer(
        self, connection_id: str, *, other: str | None = None, ttl: float | None = None
    ) -> DialogState: ...

    @overload
    async def transfer(
        self, connection_id: str, other: str, /, *, ttl: float | None = None
    ) -> DialogState: ...

    async def transfer(
        self,
        *args: str,
        connection_id: str | None = None,
        other: str | None = None,
        ttl: float | None = None,
    ) -> DialogState:
        """Complete a consult transfer: ``transfer(cid)``, ``cid`` the first (customer) call.

        Sends ``TransferCall#<ext>`` with body ``connection_id`` (the guide's form), or
        ``other,connection_id`` with ``other=`` (Generic Connector 4.x's form; ``other`` must be
        the consulted party).  Resolves with this agent's ``DialogState`` ``DROPPED``: the
        customer now talks to the consulted agent.  Raises ``CommandError``
        ``CF_INVALID_OBJECT_STATE`` without an answered consult call, ``INVALID_PARTY`` when
        ``other`` is not the consulted party.  The 0.1 form ``transfer(cid, other)`` works with
        a DeprecationWarning.
        """
        cid, party = _call_and_party("transfer", args, connection_id, other, other_came_first=False)
        body = (party, cid) if party else (cid,)
        return await self._command("TransferCall", body, DialogState, ttl)

    @overload
    async def conference(
        self, connection_id: str, *, other: str | None = None, ttl: float | None = None
    ) -> DialogState: ...

    @overload
    async def conference(
        self, connection_id: str, other: str, /, *, ttl: float | None = None
    ) -> DialogState: ...

    async def conference(
        self,
        *args: str,
        connection_id: str | None = None,
        other: str | None = None,
        ttl: float | None = None,
    ) -> DialogState:
        """Join the consulted party into the call: ``conference(cid)``, ``cid`` the first call.

        Sends ``Conferencecall#<ext>`` (the guide's spelling) with body ``connection_id``, or
        ``other,connection_id`` with ``other=`` (Generic Connector 4.x).  Resolves with this
        agent's ``DialogState`` ``ACTIVE`` on the first call, now with three participants.
        Raises as :meth:`transfer`.  The 0.1 form ``conference(cid, other)`` works with a
        DeprecationWarning.
        """
        cid, party = _call_and_party(
            "conference", args, connection_id, other, other_came_first=False
        )
        body = (party, cid) if party else (cid,)
        return await self._command("Conferencecall", body, DialogState, ttl)

    # -- internals ----------------------------------------------------------------------------

    def _ttl(self, ttl: float | None) -> float:
        return self._client.ttl if ttl is None else ttl

    async def _command(
        self, name: str, args: tuple[str, ...], kind: type[E], ttl: float | None
    ) -> E:
        ttl = self._ttl(ttl)
        deadline = asyncio.get_running_loop().time() + ttl
        answer = await self._client.send(name, self.extension, *args, ttl=ttl)
        if isinstance(answer, kind):  # the usual case, without a coroutine for _typed
            return answer
        return await self._typed(answer, kind, name, deadline)

    async def _typed(self, answer: Event, kind: type[E], name: str, deadline: float) -> E:
        """``answer`` if it is a ``kind``; else the agent's next ``kind``, by ``deadline``."""
        if isinstance(answer, kind):
            return answer
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            if remaining <= 0:
                raise TimeoutError
            return await self._tracker.wait_for(kind, None, remaining)
        except TimeoutError:
            raise CommandTimeout(
                f"{name}#{self.extension}: answered with {type(answer).__name__}, "
                f"but no {kind.__name__} followed within its TTL"
            ) from None
