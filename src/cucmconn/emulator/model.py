"""The virtual CUCM: phones, agents and calls as a sans-IO state machine.

House rules (h11's ``_state.py`` style): everything that changes a call or an agent lives in
this file; nothing here touches a transport, a task or the clock (``now`` is injected), so every
scenario is unit-testable as "command in, list of outputs out".  An output names the
destination the event goes to and whether it answers the command (carries its correlation id).

It follows Cisco's model closely enough that a client tested here behaves the same against the
real connector (why the model is ours: docs/architecture.md):

- a leg (one party's view of a call) is INITIATED -> ALERTING -> ACTIVE <-> HELD -> DROPPED;
  the ringing party sees ``InboundCall ALERTING`` and the caller ``DialogState ALERTING``;
- an agent's state is *derived* from its legs (TALKING when any leg is active or dialling,
  HOLD when all are held, else its idle state READY / NOT_READY) and an ``AgentState`` event
  is emitted only when the derived value changes;
- every handler validates first and mutates after, so a refused command changes nothing.

Routing (the contract): events for the commanding agent go to the requester with the
correlation id; events for other parties go, uncorrelated, to the destination that logged
that party in; a party with no agent (a customer's number) gets nothing.
"""

from __future__ import annotations

import itertools
import random
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from ..codec.commands import PROBES
from ..codec.events import (
    AgentInfo,
    AgentState,
    DialogState,
    ErrorEvent,
    Event,
    InboundCall,
    SystemStatus,
    TerminalStatus,
)
from ..errors import CommandError
from .directory import Directory

__all__ = ["AgentRecord", "CallRecord", "Command", "CucmModel", "Output"]

READY, NOT_READY, TALKING, HOLD, LOGOUT = "READY", "NOT_READY", "TALKING", "HOLD", "LOGOUT"
INITIATED, ALERTING, ACTIVE, HELD, DROPPED, IDLE = (
    "INITIATED",
    "ALERTING",
    "ACTIVE",
    "HELD",
    "DROPPED",
    "IDLE",
)
IN_SERVICE, OUT_OF_SERVICE = "IN_SERVICE", "OUT_OF_SERVICE"
TERM_IN, TERM_OUT = "CiscoTermInServiceEv", "CiscoTermOutOfServiceEv"

FIRST_CONNECTION_ID = 52129051
"""The guide's example connection id; ids are decimal strings counting up from here."""
MAX_KNOWN_CLIENTS = 10_000
"""Client destinations remembered for outage broadcasts (least recently heard from go first)."""

_PARTY_RE = re.compile(r"[^,#|\s\x00-\x1f\x7f-\x9f]{1,64}")
_PROBE_KEYS = frozenset(probe.lower() for probe in PROBES)  # handler keys are lower-cased names


class Command(NamedTuple):
    """One parsed command: canonical name, target, arguments, and where its answers go.

    ``requester`` is the command's JMSReplyTo, else the destination it names (Hello/Beat
    target, Login body); None when neither exists.  It is also *who asks*: an unknown
    requester owns no agent and has nowhere to be answered.
    """

    name: str
    target: str
    args: tuple[str, ...] = ()
    requester: str | None = None


class Output(NamedTuple):
    """One event to send: to ``destination`` (None: nowhere to send it), correlated or not."""

    destination: str | None
    event: Event
    correlated: bool


@dataclass(slots=True)
class AgentRecord:
    """A logged-in agent: whose destination owns it, its state, its calls in arrival order."""

    extension: str
    destination: str
    state: str = READY
    idle_state: str = READY
    changed_at: str = ""
    calls: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CallRecord:
    """A call: each party's leg state (insertion order is the participants' order)."""

    connection_id: str
    legs: dict[str, str]
    ringing: str | None
    started: str
    ring_since: float
    consult_of: str | None = None
    """For a consult call: the connection id of the call it consults about."""

    @property
    def participants(self) -> tuple[str, ...]:
        return tuple(self.legs)


class _Reject(Exception):
    """A refused command: becomes ``<target>#Error#<code>`` to the requester."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class _FreeAgents:
    """READY agents with no call, with O(1) add, discard and random choice (for traffic)."""

    __slots__ = ("_index", "_items")

    def __init__(self) -> None:
        self._items: list[str] = []
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def add(self, extension: str) -> None:
        if extension not in self._index:
            self._index[extension] = len(self._items)
            self._items.append(extension)

    def discard(self, extension: str) -> None:
        index = self._index.pop(extension, None)
        if index is None:
            return
        last = self._items.pop()
        if last != extension:
            self._items[index] = last
            self._index[last] = index

    def choice(self, rng: random.Random) -> str | None:
        return rng.choice(self._items) if self._items else None


class _Emit:
    """Collects the outputs of one operation and the agents whose state may have changed."""

    __slots__ = ("commander", "model", "out", "requester", "touched")

    def __init__(self, model: CucmModel, commander: str | None, requester: str | None) -> None:
        self.model = model
        self.commander = commander
        self.requester = requester
        self.out: list[Output] = []
        self.touched: dict[str, None] = {}

    def reply(self, event: Event) -> None:
        self.out.append(Output(self.requester, event, True))

    def party(self, party: str, event: Event) -> None:
        """To a party of a call: correlated if it is the commander, else to its own topic."""
        self.touched[party] = None
        if party == self.commander:
            self.reply(event)
            return
        agent = self.model._agents.get(party)
        if agent is not None:
            self.out.append(Output(agent.destination, event, False))

    def dialog(self, party: str, state: str, call: CallRecord, who: Iterable[str]) -> None:
        event = DialogState(
            party, state, self.model._time(), call.connection_id, tuple(who) or None
        )
        self.party(party, event)

    def settle(self) -> list[Output]:
        for party in self.touched:
            self.model._settle(party, self)
        return self.out


class CucmModel:
    """The virtual CUCM behind the connector.  Not thread-safe; one event loop drives it."""

    def __init__(
        self,
        directory: Directory | None = None,
        *,
        now: Callable[[], float] = time.time,
        first_connection_id: int = FIRST_CONNECTION_ID,
        max_known_clients: int = MAX_KNOWN_CLIENTS,
        dial_out: bool = False,
    ) -> None:
        self.directory = directory or Directory()
        self._now = now
        self._stamp: tuple[int, str] = (-1, "")  # (second, its text): formatting is not free
        self._cids = itertools.count(first_connection_id)
        self._max_clients = max_known_clients
        self.dial_out = dial_out
        """MakeCall (transfer, consult) to a number outside the directory rings that outside
        number (a customer) instead of failing INVALID_PARTY."""
        self._in_service = True
        self._agents: dict[str, AgentRecord] = {}
        self._calls: dict[str, CallRecord] = {}
        self._clients: OrderedDict[str, None] = OrderedDict()
        self._free = _FreeAgents()
        self._handlers: dict[str, Callable[[Command, _Emit], None]] = {
            **{probe.lower(): self._hello for probe in PROBES},
            "login": self._login,
            "logout": self._logout,
            "getstate": self._get_state,
            "makecall": self._make_call,
            "answercall": self._answer,
            "releasecall": self._release,
            "holdcall": self._hold,
            "retrievecall": self._retrieve,
            "transfer_sst": self._blind_transfer,
            "consultcall": self._consult,
            "transfercall": self._transfer,
            "conferencecall": self._conference,
            "makeready": self._make_ready,
            "makenotready": self._make_not_ready,
            "makenotreadywithreason": self._make_not_ready,
        }

    def __repr__(self) -> str:
        return (
            f"CucmModel(in_service={self._in_service}, agents={len(self._agents)}, "
            f"calls={len(self._calls)}, clients={len(self._clients)})"
        )

    # -- what tests, stats and the traffic generator read ---------------------------------------

    @property
    def in_service(self) -> bool:
        """True while the virtual CUCM is up (Hello/Beat answer IN_SERVICE); False after an
        outage is set, when agent commands are refused as the real connector does."""
        return self._in_service

    @property
    def agents(self) -> Mapping[str, AgentRecord]:
        """Logged-in agents by extension (live records: read, never mutate)."""
        return MappingProxyType(self._agents)

    @property
    def calls(self) -> Mapping[str, CallRecord]:
        """Calls in progress by connection id (live records: read, never mutate)."""
        return MappingProxyType(self._calls)

    @property
    def known_clients(self) -> tuple[str, ...]:
        """Client destinations that sent a command, least recent first (bounded): whom an
        IN_SERVICE / OUT_OF_SERVICE change is announced to."""
        return tuple(self._clients)

    @property
    def free_agents(self) -> int:
        """How many logged-in agents are READY with no call (who can take a customer's call)."""
        return len(self._free)

    def pick_free_agent(self, rng: random.Random) -> str | None:
        """A random READY agent with no call, or None."""
        return self._free.choice(rng)

    def next_connection_id(self) -> int:
        """The id the next call would get (a restarted model continues from it)."""
        value = next(self._cids)
        self._cids = itertools.count(value)
        return value

    # -- commands ----------------------------------------------------------------------------

    def handle(self, command: Command) -> list[Output]:
        """Execute one command; the outputs are in the order they must be sent."""
        name = command.name.strip().lower()
        if command.requester is not None:
            self._remember(command.requester)
        if not self._in_service and name not in _PROBE_KEYS:
            return [Output(command.requester, SystemStatus(OUT_OF_SERVICE), True)]
        handler = self._handlers.get(name)
        emit = _Emit(self, command.target or None, command.requester)
        try:
            if handler is None:
                raise _Reject("PLEASE_RETRY")
            handler(command, emit)
        except _Reject as refused:
            return [self._error(command, refused.code)]
        return emit.settle()

    @staticmethod
    def _error(command: Command, code: str) -> Output:
        # To the requester only (None: nowhere).  Never to the agent owner's topic: there, an
        # error carrying a stranger's correlation id could be matched by the owner's client
        # to one of its own pending commands.
        return Output(command.requester, ErrorEvent(command.target, code), True)

    def _remember(self, destination: str) -> None:
        clients = self._clients
        if destination in clients:
            clients.move_to_end(destination)
            return
        clients[destination] = None
        if len(clients) > self._max_clients:
            clients.popitem(last=False)

    def _hello(self, command: Command, emit: _Emit) -> None:
        if emit.requester is None:
            raise _Reject("PLEASE_RETRY")
        emit.reply(SystemStatus(IN_SERVICE if self._in_service else OUT_OF_SERVICE))

    def _login(self, command: Command, emit: _Emit) -> None:
        extension = self._checked_target(command)
        destination = _topic(command.args[0]) if command.args else emit.requester
        if destination is None:
            raise _Reject("PLEASE_RETRY")
        agent = self._agents.get(extension)
        if agent is not None and agent.destination != destination:
            raise _Reject("PRIVILLEGE_VIOLATION")
        licenses = self.directory.licenses
        if agent is None and licenses is not None and len(self._agents) >= licenses:
            raise _Reject("LICENSES_EXCEEDED")
        if emit.requester is None:
            emit.requester = destination
        self._remember(destination)
        if agent is None:
            agent = AgentRecord(extension, destination, changed_at=self._time())
            self._agents[extension] = agent
            self._free.add(extension)
        emit.reply(AgentInfo(extension, extension, _device_name(extension)))
        self._report_state(agent, emit)

    def _report_state(self, agent: AgentRecord, emit: _Emit) -> None:
        """AgentState, then a DialogState per call (or IDLE without one): Login and GetState."""
        emit.reply(AgentState(agent.extension, agent.state, agent.changed_at))
        if not agent.calls:
            emit.reply(DialogState(agent.extension, IDLE, self._time()))
        for cid in agent.calls:
            call = self._calls[cid]
            emit.reply(
                DialogState(
                    agent.extension,
                    call.legs[agent.extension],
                    self._time(),
                    cid,
                    call.participants,
                )
            )

    def _logout(self, command: Command, emit: _Emit) -> None:
        agent = self._owned(command, emit)
        if agent.calls:
            raise _Reject("CF_INVALID_OBJECT_STATE")
        del self._agents[agent.extension]
        self._free.discard(agent.extension)
        emit.reply(AgentState(agent.extension, LOGOUT, self._time()))

    def _get_state(self, command: Command, emit: _Emit) -> None:
        extension = self._checked_target(command)
        agent = self._agents.get(extension)
        if emit.requester is None:
            if agent is None:
                raise _Reject("PLEASE_RETRY")
            # A query needs no ownership; the owner's topic learns only its own agent's state.
            emit.requester = agent.destination
        if agent is None:  # a query, so a logged-out agent is an answer, not an error
            emit.reply(AgentState(extension, LOGOUT, self._time()))
            return
        self._report_state(agent, emit)

    def _make_ready(self, command: Command, emit: _Emit) -> None:
        self._set_idle(self._owned(command, emit), READY, emit)

    def _make_not_ready(self, command: Command, emit: _Emit) -> None:
        self._set_idle(self._owned(command, emit), NOT_READY, emit)

    def _set_idle(self, agent: AgentRecord, idle: str, emit: _Emit) -> None:
        agent.idle_state = idle
        before = len(emit.out)
        self._settle(agent.extension, emit)
        if len(emit.out) == before:  # unchanged (or on a call): still answer with the state
            emit.reply(AgentState(agent.extension, agent.state, agent.changed_at))

    # -- calls -------------------------------------------------------------------------------

    def _make_call(self, command: Command, emit: _Emit) -> None:
        agent = self._owned(command, emit)
        other = self._callee(command, 0, agent.extension)
        if self._busy(agent):
            raise _Reject("CF_INVALID_OBJECT_STATE")
        call = self._new_call(agent.extension, other)
        emit.dialog(agent.extension, INITIATED, call, call.participants)
        self._ring(call, other, agent.extension, emit)
        call.legs[agent.extension] = ALERTING
        emit.dialog(agent.extension, ALERTING, call, call.participants)

    def _answer(self, command: Command, emit: _Emit) -> None:
        agent = self._owned(command, emit)
        call = self._call_of(agent, command, 0)
        if call.ringing != agent.extension or self._busy(agent, besides=call):
            raise _Reject("CF_INVALID_OBJECT_STATE")
        self._pick_up(call, agent.extension, emit)

    def _pick_up(self, call: CallRecord, party: str, emit: _Emit) -> None:
        """The ringing ``party`` answers: every leg still setting up becomes ACTIVE."""
        call.ringing = None
        for other, state in call.legs.items():
            if state in (INITIATED, ALERTING):
                call.legs[other] = ACTIVE
        emit.dialog(party, ACTIVE, call, call.participants)
        for other in call.legs:
            if other != party:
                emit.dialog(other, call.legs[other], call, call.participants)

    def _hold(self, command: Command, emit: _Emit) -> None:
        agent = self._owned(command, emit)
        call = self._call_of(agent, command, 0)
        if call.legs[agent.extension] != ACTIVE:
            raise _Reject("CF_INVALID_OBJECT_STATE")
        call.legs[agent.extension] = HELD
        emit.dialog(agent.extension, HELD, call, call.participants)

    def _retrieve(self, command: Command, emit: _Emit) -> None:
        agent = self._owned(command, emit)
        call = self._call_of(agent, command, 0)
        if call.legs[agent.extension] != HELD or self._busy(agent, besides=call):
            raise _Reject("CF_INVALID_OBJECT_STATE")
        call.legs[agent.extension] = ACTIVE
        emit.dialog(agent.extension, ACTIVE, call, call.participants)

    def _release(self, command: Command, emit: _Emit) -> None:
        agent = self._owned(command, emit)
        call = self._call_of(agent, command, 0)
        self._leave(call, agent.extension, emit)

    def _leave(self, call: CallRecord, party: str, emit: _Emit) -> None:
        """``party`` hangs up: a two-party or unanswered call ends; a conference shrinks."""
        before = call.participants
        if len(call.legs) <= 2 or call.ringing is not None:
            emit.dialog(party, DROPPED, call, before)
            for other in before:
                if other != party:
                    emit.dialog(other, DROPPED, call, before)
            self._end_call(call)
            return
        self._drop_leg(call, party)
        emit.dialog(party, DROPPED, call, before)
        for other, state in call.legs.items():
            emit.dialog(other, state, call, call.participants)

    def _blind_transfer(self, command: Command, emit: _Emit) -> None:
        agent = self._owned(command, emit)
        other = self._callee(command, 0, agent.extension)
        call = self._call_of(agent, command, 1)
        remote = self._single_remote(call, agent.extension)
        before = call.participants
        self._drop_leg(call, agent.extension)
        call.legs[remote] = ALERTING
        emit.dialog(agent.extension, DROPPED, call, before)
        call.legs[other] = ALERTING
        emit.dialog(remote, ALERTING, call, call.participants)
        self._ring(call, other, remote, emit, register=True)

    def _consult(self, command: Command, emit: _Emit) -> None:
        agent = self._owned(command, emit)
        other = self._callee(command, 0, agent.extension)
        call = self._call_of(agent, command, 1)
        if (
            call.ringing is not None
            or call.legs[agent.extension] not in (ACTIVE, HELD)
            or self._busy(agent, besides=call)
            or self._consult_for(agent, call) is not None
        ):
            raise _Reject("CF_INVALID_OBJECT_STATE")
        consult = self._new_call(agent.extension, other, consult_of=call.connection_id)
        emit.dialog(agent.extension, INITIATED, consult, consult.participants)
        call.legs[agent.extension] = HELD
        emit.dialog(agent.extension, HELD, call, call.participants)
        self._ring(consult, other, agent.extension, emit)
        consult.legs[agent.extension] = ALERTING
        emit.dialog(agent.extension, ALERTING, consult, consult.participants)

    def _transfer(self, command: Command, emit: _Emit) -> None:
        agent, main, consult, target = self._consult_pair(command, emit)
        before, consulted = main.participants, consult.participants
        self._end_call(consult)
        self._drop_leg(main, agent.extension)
        self._add_leg(main, target, ACTIVE)
        emit.dialog(agent.extension, DROPPED, main, before)
        emit.dialog(agent.extension, DROPPED, consult, consulted)
        emit.dialog(target, DROPPED, consult, consulted)
        for party, state in main.legs.items():
            emit.dialog(party, state, main, main.participants)

    def _conference(self, command: Command, emit: _Emit) -> None:
        agent, main, consult, target = self._consult_pair(command, emit)
        consulted = consult.participants
        self._end_call(consult)
        main.legs[agent.extension] = ACTIVE
        self._add_leg(main, target, ACTIVE)
        emit.dialog(agent.extension, ACTIVE, main, main.participants)
        emit.dialog(agent.extension, DROPPED, consult, consulted)
        emit.dialog(target, DROPPED, consult, consulted)
        for party, state in main.legs.items():
            if party != agent.extension:
                emit.dialog(party, state, main, main.participants)

    def _consult_pair(
        self, command: Command, emit: _Emit
    ) -> tuple[AgentRecord, CallRecord, CallRecord, str]:
        """(agent, main call, consult call, consulted party) for TransferCall/Conferencecall.

        Accepts the guide's body ``cid`` and GC 4.x's ``other,cid``; ``cid`` may name either
        the main call (as documented) or the consult call.
        """
        agent = self._owned(command, emit)
        args = command.args
        if not args or len(args) > 2:
            raise _Reject("PLEASE_RETRY")
        named = self._extension_arg(args[0]) if len(args) == 2 else None
        call = self._call_of(agent, command, len(args) - 1)
        main: CallRecord | None = call
        consult = self._consult_for(agent, call)
        if consult is None and call.consult_of is not None:
            consult, main = call, self._calls.get(call.consult_of)
        if main is None or consult is None or agent.extension not in main.legs:
            raise _Reject("CF_INVALID_OBJECT_STATE")
        if consult.ringing is not None or main.ringing is not None:
            raise _Reject("CF_INVALID_OBJECT_STATE")
        target = self._single_remote(consult, agent.extension)
        if named is not None and named != target:
            raise _Reject("INVALID_PARTY")
        if target in main.legs:
            raise _Reject("INVALID_PARTY")
        return agent, main, consult, target

    # -- unsolicited: a customer calling in, hanging up, abandoning ----------------------------

    def place_call(self, caller: str, callee: str) -> tuple[str, list[Output]]:
        """A call from ``caller`` (an external number or an extension) to agent ``callee``.

        Raises CommandError (INVALID_PARTY, WRONG_EXTENSION, ...) when it cannot ring;
        OUT_OF_SERVICE as the code while CUCM is down.
        """
        if not self._in_service:
            raise CommandError(OUT_OF_SERVICE, callee, "CUCM is out of service")
        if not isinstance(caller, str) or _PARTY_RE.fullmatch(caller) is None:
            raise CommandError("INVALID_PARTY", callee, "caller must be a number without , # |")
        emit = _Emit(self, None, None)
        try:
            target = self._extension_arg(callee)
            self._check_reachable(target, caller)
            if caller in self._agents and self._busy(self._agents[caller]):
                raise _Reject("INVALID_PARTY")
        except _Reject as refused:
            raise CommandError(refused.code, callee, "the call cannot be placed") from None
        call = self._new_call(caller, target)
        call.legs[caller] = ALERTING
        if caller in self._agents:
            emit.dialog(caller, INITIATED, call, call.participants)
        self._ring(call, target, caller, emit)
        if caller in self._agents:
            emit.dialog(caller, ALERTING, call, call.participants)
        return call.connection_id, emit.settle()

    def answer(self, connection_id: str) -> list[Output]:
        """The party a call rings picks up: an agent at its phone (not through the connector),
        or the outside number an agent dialled (``dial_out``).

        The same events as an ``AnswerCall`` command, all uncorrelated (each to the topic of
        the destination that logged its party in).  Raises CommandError
        CF_INVALID_OBJECT_STATE when the call is gone or no longer ringing, or when the agent
        is busy on another call.
        """
        call = self._calls.get(connection_id)
        ringing = call.ringing if call is not None else None
        agent = self._agents.get(ringing) if ringing is not None else None
        if (
            call is None
            or ringing is None
            or (agent is not None and self._busy(agent, besides=call))
        ):
            raise CommandError("CF_INVALID_OBJECT_STATE", connection_id, "the call is not ringing")
        emit = _Emit(self, None, None)
        self._pick_up(call, ringing, emit)
        return emit.settle()

    def hangup(self, connection_id: str, party: str | None = None) -> list[Output]:
        """``party`` (default: the call's first party without an agent) hangs up."""
        call = self._calls.get(connection_id)
        if call is None:
            return []
        if party is None:
            party = next((p for p in call.legs if p not in self._agents), None)
        if party is None or party not in call.legs:
            return []
        emit = _Emit(self, None, None)
        self._leave(call, party, emit)
        return emit.settle()

    def abandon_ringing(self, older_than: float) -> tuple[int, list[Output]]:
        """Callers give up on calls that rang for more than ``older_than`` seconds.

        Returns how many calls were abandoned, and the events that caused.
        """
        deadline = self._now() - older_than
        stale = [
            call.connection_id
            for call in self._calls.values()
            if call.ringing is not None and call.ring_since <= deadline
        ]
        out: list[Output] = []
        for cid in stale:
            call = self._calls.get(cid)
            if call is not None:
                caller = next(p for p in call.legs if p != call.ringing)
                out.extend(self.hangup(cid, caller))
        return len(stale), out

    # -- outage --------------------------------------------------------------------------------

    def set_in_service(self, up: bool) -> list[Output]:
        """CUCM goes down or comes back: System status to every client, Terminal per agent."""
        if up == self._in_service:
            return []
        self._in_service = up
        status = SystemStatus(IN_SERVICE if up else OUT_OF_SERVICE)
        out = [Output(dest, status, False) for dest in self._clients]
        term = TERM_IN if up else TERM_OUT
        out.extend(
            Output(agent.destination, TerminalStatus(ext, term), False)
            for ext, agent in self._agents.items()
        )
        for ext, agent in self._agents.items():
            if up and not agent.calls and agent.state == READY:
                self._free.add(ext)
            elif not up:
                self._free.discard(ext)
        return out

    # -- helpers -------------------------------------------------------------------------------

    def _time(self) -> str:
        second = int(self._now())
        if second != self._stamp[0]:
            self._stamp = (second, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second)))
        return self._stamp[1]

    def _checked_target(self, command: Command) -> str:
        extension = self._extension_arg(command.target)
        if extension not in self.directory:
            raise _Reject("USER_NOT_FOUND")
        return extension

    @staticmethod
    def _extension_arg(value: str) -> str:
        value = value.strip()
        if not value:
            raise _Reject("MISSING_EXTENSION")
        if not (value.isascii() and value.isdigit()):
            raise _Reject("WRONG_EXTENSION")
        return value

    def _owned(self, command: Command, emit: _Emit) -> AgentRecord:
        """The logged-in agent the command targets, if the requester owns it.

        An unknown requester (no reply-to) owns nothing: anyone can write to the command
        queue, so leaving reply-to out must not pass for the owner.
        """
        extension = self._checked_target(command)
        agent = self._agents.get(extension)
        if agent is None:
            raise _Reject("CF_INVALID_OBJECT_STATE")
        if emit.requester is None or emit.requester != agent.destination:
            raise _Reject("PRIVILLEGE_VIOLATION")
        return agent

    def _callee(self, command: Command, index: int, caller: str) -> str:
        value = command.args[index] if index < len(command.args) else ""
        other = self._extension_arg(value)
        if not (self.dial_out and other != caller and other not in self.directory):
            self._check_reachable(other, caller)
        return other

    def _check_reachable(self, other: str, caller: str) -> None:
        agent = self._agents.get(other)
        if other == caller or agent is None or agent.calls:
            raise _Reject("INVALID_PARTY")

    def _busy(self, agent: AgentRecord, besides: CallRecord | None = None) -> bool:
        """True when the agent is talking or dialling on a call other than ``besides``."""
        for cid in agent.calls:
            call = self._calls[cid]
            if call is besides or call.ringing == agent.extension:
                continue
            if call.legs[agent.extension] != HELD:
                return True
        return False

    def _call_of(self, agent: AgentRecord, command: Command, index: int) -> CallRecord:
        if index >= len(command.args) or not command.args[index]:
            raise _Reject("PLEASE_RETRY")
        call = self._calls.get(command.args[index])
        if call is None or agent.extension not in call.legs:
            raise _Reject("CF_INVALID_OBJECT_STATE")
        return call

    def _single_remote(self, call: CallRecord, party: str) -> str:
        others = [p for p in call.legs if p != party]
        if len(others) != 1 or call.ringing is not None:
            raise _Reject("CF_INVALID_OBJECT_STATE")
        if call.legs[party] not in (ACTIVE, HELD):
            raise _Reject("CF_INVALID_OBJECT_STATE")
        return others[0]

    def _consult_for(self, agent: AgentRecord, call: CallRecord) -> CallRecord | None:
        for cid in agent.calls:
            other = self._calls[cid]
            if other.consult_of == call.connection_id:
                return other
        return None

    def _new_call(self, caller: str, callee: str, consult_of: str | None = None) -> CallRecord:
        cid = str(next(self._cids))
        call = CallRecord(cid, {}, None, self._time(), self._now(), consult_of=consult_of)
        self._calls[cid] = call
        self._add_leg(call, caller, INITIATED)
        self._add_leg(call, callee, ALERTING)
        call.ringing = callee
        return call

    def _ring(
        self, call: CallRecord, party: str, caller: str, emit: _Emit, *, register: bool = False
    ) -> None:
        if register:
            self._add_leg(call, party, ALERTING)
        call.ringing = party
        call.ring_since = self._now()
        emit.party(party, InboundCall(party, ALERTING, self._time(), call.connection_id, caller))

    def _add_leg(self, call: CallRecord, party: str, state: str) -> None:
        call.legs[party] = state
        agent = self._agents.get(party)
        if agent is not None and call.connection_id not in agent.calls:
            agent.calls.append(call.connection_id)
            self._free.discard(party)

    def _drop_leg(self, call: CallRecord, party: str) -> None:
        call.legs.pop(party, None)
        agent = self._agents.get(party)
        if agent is not None and call.connection_id in agent.calls:
            agent.calls.remove(call.connection_id)

    def _end_call(self, call: CallRecord) -> None:
        for party in list(call.legs):
            self._drop_leg(call, party)
        self._calls.pop(call.connection_id, None)

    def _derived(self, agent: AgentRecord) -> str:
        held = False
        for cid in agent.calls:
            call = self._calls[cid]
            if call.ringing == agent.extension:
                continue
            if call.legs[agent.extension] == HELD:
                held = True
            else:
                return TALKING
        return HOLD if held else agent.idle_state

    def _settle(self, extension: str, emit: _Emit) -> None:
        """Recompute an agent's state; emit AgentState when it changed; keep the free set."""
        agent = self._agents.get(extension)
        if agent is None:
            return
        state = self._derived(agent)
        if state != agent.state:
            agent.state = state
            agent.changed_at = self._time()
            emit.party(extension, AgentState(extension, state, agent.changed_at))
        if state == READY and not agent.calls and self._in_service:
            self._free.add(extension)
        else:
            self._free.discard(extension)


def _topic(name: str) -> str:
    return name if name.startswith("/") else f"/topic/{name}"


def _device_name(extension: str) -> str:
    """A Cisco-style device name (``SEP`` + 12 hex digits), stable per extension."""
    return f"SEP{int(extension) % 16**12:012X}"
