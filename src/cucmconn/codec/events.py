"""The typed event model: one frozen msgspec Struct per event of the guide and the house profile.

States and error codes stay plain strings because both are open sets (an unknown value from a
newer connector must pass through, not fail). Fields the wire did not carry are ``None``.
``gc=False``: the structs hold only strings and tuples of strings, so they can never form a
cycle, and skipping GC tracking makes 10,000 resident agents cheaper.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

__all__ = [
    "AgentInfo",
    "AgentState",
    "DialogState",
    "ErrorEvent",
    "Event",
    "InboundCall",
    "SystemStatus",
    "TerminalStatus",
    "UnknownEvent",
]


class SystemStatus(msgspec.Struct, frozen=True, gc=False):
    """``System#IN_SERVICE`` / ``System#OUT_OF_SERVICE``: is the connector connected to CUCM."""

    status: str

    @property
    def in_service(self) -> bool:
        return self.status.upper() == "IN_SERVICE"


class TerminalStatus(msgspec.Struct, frozen=True, gc=False):
    """A phone went in or out of service: ``CiscoTermInServiceEv`` / ``CiscoTermOutOfServiceEv``."""

    agent_id: str | None
    status: str

    @property
    def in_service(self) -> bool:
        return "INSERVICE" in self.status.upper()


class AgentInfo(msgspec.Struct, frozen=True, gc=False):
    agent_id: str
    extension: str | None = None
    device_name: str | None = None


class AgentState(msgspec.Struct, frozen=True, gc=False):
    agent_id: str
    state: str
    changed_at: str | None = None


class DialogState(msgspec.Struct, frozen=True, gc=False):
    agent_id: str
    state: str
    changed_at: str | None = None
    connection_id: str | None = None
    participants: tuple[str, ...] | None = None


class InboundCall(msgspec.Struct, frozen=True, gc=False):
    agent_id: str | None
    state: str
    start_time: str | None = None
    connection_id: str | None = None
    other_party: str | None = None


class ErrorEvent(msgspec.Struct, frozen=True, gc=False):
    target: str
    code: str
    message: str | None = None


class UnknownEvent(msgspec.Struct, frozen=True, gc=False):
    """Anything well-formed that we do not model; kept whole so nothing is lost."""

    event_for: str
    event_type: str
    args: tuple[str, ...]
    raw: str


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
