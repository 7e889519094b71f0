"""The typed event model: one frozen msgspec Struct per event of the guide and the house profile.

States and error codes are open sets: a newer connector may send a value this version does not
know, and it must pass through rather than fail.  So every ``state`` field holds a ``str``, and
the known values are string enums (:class:`AgentStatus`, :class:`CallStatus`,
:class:`ServiceStatus`) whose members *are* those strings: ``event.state == AgentStatus.READY``
works on any event, and :meth:`AgentStatus.parse` turns a received value into the member when it
is known (the value itself, upper-cased, when it is not).  Fields the wire did not carry are
``None``.  ``gc=False``: the structs hold only strings and tuples of strings, so they can never
form a cycle, and skipping GC tracking makes 10,000 resident agents cheaper.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeAlias, TypeVar

import msgspec

__all__ = [
    "AgentInfo",
    "AgentState",
    "AgentStatus",
    "CallStatus",
    "DialogState",
    "ErrorEvent",
    "Event",
    "InboundCall",
    "ServiceStatus",
    "SystemStatus",
    "TerminalStatus",
    "UnknownEvent",
]

_S = TypeVar("_S", bound="_OpenStrEnum")


class _OpenStrEnum(StrEnum):
    """A string enum of the *known* values of an open set; unknown values stay plain strings."""

    @classmethod
    def parse(cls: type[_S], value: str) -> _S | str:
        """The member for ``value`` (matched case-insensitively), else ``value`` upper-cased.

        Never raises for an unknown value: the set is open, and a newer connector's state must
        reach the application unchanged (only its case is normalised, as the guide's peers
        match states case-insensitively).
        """
        upper = value.upper()
        member = cls._value2member_map_.get(upper)
        return member if member is not None else upper  # type: ignore[return-value]


class AgentStatus(_OpenStrEnum):
    """The known values of :attr:`AgentState.state` (Cisco Finesse's agent states).

    The connector passes Finesse's states through, so a value not listed here may arrive; it
    is kept as a plain ``str``.  The emulator derives an agent's state from its calls:
    ``TALKING`` while any call is up or being dialled, ``HOLD`` while every call is held,
    otherwise the agent's idle state (``READY`` or ``NOT_READY``).
    """

    #: Not logged in (the answer to Logout, and to GetState for an agent nobody logged in).
    LOGOUT = "LOGOUT"
    #: Logged in, not taking calls (after MakeNotReady).
    NOT_READY = "NOT_READY"
    #: Logged in and available for calls (the state after Login and MakeReady).
    READY = "READY"
    #: Reserved for a routed call that has not rung yet (Finesse; the emulator never sends it).
    RESERVED = "RESERVED"
    #: On a call: one is active, or being dialled.
    TALKING = "TALKING"
    #: Every call of the agent is on hold.
    HOLD = "HOLD"
    #: Wrap-up after a call, then NOT_READY (Finesse; the emulator never sends it).
    WORK = "WORK"
    #: Wrap-up after a call, then READY (Finesse; the emulator never sends it).
    WORK_READY = "WORK_READY"
    #: The connector does not know (Finesse).
    UNKNOWN = "UNKNOWN"


class CallStatus(_OpenStrEnum):
    """The known values of a call leg's state: :attr:`DialogState.state`, :attr:`InboundCall.state`.

    A leg goes ``INITIATED`` -> ``ALERTING`` -> ``ACTIVE`` <-> ``HELD`` -> ``DROPPED``; the
    ringing party sees ``InboundCall`` ``ALERTING``, the caller ``DialogState`` ``ALERTING``.
    """

    #: The caller's phone is being set up (Finesse; the emulator goes straight to INITIATED).
    INITIATING = "INITIATING"
    #: The caller's leg of a new call (the answer to MakeCall and ConsultCall).
    INITIATED = "INITIATED"
    #: Ringing: at the callee (``InboundCall``), or as the caller hears it (``DialogState``).
    ALERTING = "ALERTING"
    #: Connected and talking (the answer to AnswerCall and RetrieveCall).
    ACTIVE = "ACTIVE"
    #: On hold (the answer to HoldCall).
    HELD = "HELD"
    #: The call could not be set up; it is over.
    FAILED = "FAILED"
    #: This party left the call, or the call ended (the answer to ReleaseCall and transfers).
    DROPPED = "DROPPED"
    #: House profile: "no current call", the DialogState that Login and GetState send when the
    #: agent has none (it carries no connection id).
    IDLE = "IDLE"


class ServiceStatus(_OpenStrEnum):
    """The values of :attr:`SystemStatus.status`."""

    #: The connector is connected to CUCM and processes commands.
    IN_SERVICE = "IN_SERVICE"
    #: CUCM is down for the connector: it processes no command until IN_SERVICE again.
    OUT_OF_SERVICE = "OUT_OF_SERVICE"


class SystemStatus(msgspec.Struct, frozen=True, gc=False):
    """``System#IN_SERVICE`` / ``System#OUT_OF_SERVICE``: is the connector connected to CUCM.

    The answer to Hello and Beat, and sent unsolicited when CUCM goes down or comes back.  The
    client handles it itself (see :attr:`cucmconn.Client.in_service`); a command answered with
    ``OUT_OF_SERVICE`` raises :class:`~cucmconn.ServiceUnavailable`.
    """

    status: ServiceStatus | str
    """A :class:`ServiceStatus` value."""

    @property
    def in_service(self) -> bool:
        """True for ``IN_SERVICE`` (any case)."""
        return self.status.upper() == "IN_SERVICE"


class TerminalStatus(msgspec.Struct, frozen=True, gc=False):
    """A phone went in or out of service: ``CiscoTermInServiceEv`` / ``CiscoTermOutOfServiceEv``.

    Unsolicited.  The guide's form carries no agent id (``Terminal#...``); the house profile's
    ``<agent>#Terminal#...`` does.
    """

    agent_id: str | None
    """The agent whose phone it is, when the event names one."""
    status: str
    """Cisco's JTAPI event name: ``CiscoTermInServiceEv``, ``CiscoTermOutOfServiceEv`` (or the
    guide's ``CiscoTermOutServiceEv``)."""

    @property
    def in_service(self) -> bool:
        """True for ``CiscoTermInServiceEv``."""
        return "INSERVICE" in self.status.upper()


class AgentInfo(msgspec.Struct, frozen=True, gc=False):
    """``<agent>#AgentInfo#<extension>#<device>``: who the agent is; the first answer to Login.

    :meth:`cucmconn.AgentSession.login` resolves with it; an ``AgentState`` and a
    ``DialogState`` per current call (``IDLE`` without one) follow.
    """

    agent_id: str
    """The agent's login id (its extension)."""
    extension: str | None = None
    """The phone's extension."""
    device_name: str | None = None
    """The phone's CUCM device name (``SEP`` + MAC address)."""


class AgentState(msgspec.Struct, frozen=True, gc=False):
    """``<agent>#AgentState#<state>#<time>``: the agent's state changed, or was asked for.

    The answer to GetState, Logout (``LOGOUT``), MakeReady and MakeNotReady; part of Login's
    answer; sent unsolicited whenever calls change the agent's state.
    """

    agent_id: str
    """The agent's login id."""
    state: AgentStatus | str
    """An :class:`AgentStatus` value (an unknown one passes through as a plain ``str``)."""
    changed_at: str | None = None
    """When the state last changed, ``yyyy-MM-dd HH:mm:ss`` as the connector sent it."""


class DialogState(msgspec.Struct, frozen=True, gc=False):
    """``<agent>#DialogState#<state>#<time>#<connection id>#<participants>``: one call leg changed.

    The answer to MakeCall (``INITIATED``), AnswerCall and RetrieveCall (``ACTIVE``), HoldCall
    (``HELD``), ReleaseCall and the transfers (``DROPPED``), ConsultCall (the new call,
    ``INITIATED``) and Conferencecall (``ACTIVE``); sent unsolicited as the other parties act.
    """

    agent_id: str
    """The agent whose leg this is."""
    state: CallStatus | str
    """A :class:`CallStatus` value (an unknown one passes through as a plain ``str``)."""
    changed_at: str | None = None
    """When the leg changed, ``yyyy-MM-dd HH:mm:ss``."""
    connection_id: str | None = None
    """The call's id, which every call command takes; ``None`` for ``IDLE`` (no call), and in
    the guide's own pattern, which carries none (the house profile appends it)."""
    participants: tuple[str, ...] | None = None
    """Every party on the call (extensions or outside numbers), when the event lists them."""


class InboundCall(msgspec.Struct, frozen=True, gc=False):
    """``<agent>#InboundCall#<state>#<start>#<connection id>#<caller>``: a call rings in.

    Unsolicited (``ALERTING``) to the agent being called: answer it with
    :meth:`cucmconn.AgentSession.answer`, or wait for one with
    :meth:`cucmconn.AgentSession.next_call`.
    """

    agent_id: str | None
    """The agent being called; ``None`` in the guide's own pattern, which names none."""
    state: CallStatus | str
    """A :class:`CallStatus` value, ``ALERTING`` while it rings."""
    start_time: str | None = None
    """When the call started, ``yyyy-MM-dd HH:mm:ss``."""
    connection_id: str | None = None
    """The call's id, to pass to ``answer()``."""
    other_party: str | None = None
    """Who is calling (an extension or an outside number)."""


class ErrorEvent(msgspec.Struct, frozen=True, gc=False):
    """``<target>#Error#<CODE>``: the connector refused a command.

    Commands never return it: the client turns it into :class:`~cucmconn.CommandError` (with
    the guide's advice for ``code``).  Event streams do carry it.
    """

    target: str
    """The command's target (an agent id, or the client destination)."""
    code: str
    """The error code, e.g. ``INVALID_PARTY``; see :data:`cucmconn.ERROR_CODES`."""
    message: str | None = None
    """Extra text, when the connector sent any (JSON format)."""


class UnknownEvent(msgspec.Struct, frozen=True, gc=False):
    """Anything well-formed that we do not model; kept whole so nothing is lost."""

    event_for: str
    """The first ``#`` field (or JSON ``agentId``/``type``)."""
    event_type: str
    """The event's type name as sent."""
    args: tuple[str, ...]
    """The remaining fields."""
    raw: str
    """The whole body as received."""


Event: TypeAlias = (
    SystemStatus
    | TerminalStatus
    | AgentInfo
    | AgentState
    | DialogState
    | InboundCall
    | ErrorEvent
    | UnknownEvent
)
"""Every event the codec decodes to (a union of the structs above)."""
