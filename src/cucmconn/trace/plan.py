"""What a trace means: each command with the events that answered it, and the unsolicited rest.

Shared by the replayer (which answers live commands from it) and the checker (which sends the
commands and compares the answers), so both read a trace the same way:

* an event whose correlation id is a command's belongs to that command, at its recorded delay
  after the command;
* an event without one (or with an id no command of the trace carried) is unsolicited: it is
  anchored to the last command before it that was not a keep-alive (Hello/Beat, which timers
  send), at its recorded delay after that command, or to the trace's first command when none
  came before.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from ..codec import decode_event
from ..codec.commands import COMMANDS, PROBES, parse_command
from ..codec.events import DialogState, Event, InboundCall
from ..errors import ProtocolError
from .format import Trace, TraceRecord

__all__ = [
    "KEEPALIVE",
    "CommandPlan",
    "PlannedEvent",
    "TracePlan",
    "command_key",
    "plan_trace",
]

KEEPALIVE = PROBES
"""Commands sent by timers; they share one answer queue and never anchor unsolicited events."""

TIMESTAMP = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})([ T])(\d{2}):(\d{2}):(\d{2})\b")
"""The connector's event times (``yyyy-MM-dd HH:mm:ss``; ISO's ``T`` also accepted)."""


def command_key(name: str, target: str) -> tuple[str, str]:
    """Matching key of a command: (name, agent); keep-alives match whatever destination they
    name, and so do other commands addressed to a destination."""
    if name in KEEPALIVE:
        return ("keepalive", "*")
    spec = COMMANDS.get(name)
    if spec is not None and spec.target == "destination":
        return (name.lower(), "*")
    return (name.lower(), target)


@dataclass(slots=True)
class PlannedEvent:
    """One recorded event, ``delay`` seconds after its anchor command."""

    delay: float
    record: TraceRecord
    event: Event | None
    """The decoded event, None when the body is not one (it is still replayed as it was)."""
    before_next: bool = False
    """An unsolicited event that arrived before the next command was sent: the connector sent
    it while still busy with its anchor, so it precedes any answer to a later command."""


@dataclass(slots=True)
class CommandPlan:
    """One recorded command and what followed it."""

    index: int
    record: TraceRecord
    name: str
    target: str
    args: tuple[str, ...]
    answers: list[PlannedEvent] = field(default_factory=list)
    unsolicited: list[PlannedEvent] = field(default_factory=list)

    @property
    def keepalive(self) -> bool:
        return self.name in KEEPALIVE

    @property
    def targets_destination(self) -> bool:
        spec = COMMANDS.get(self.name)
        return spec is not None and spec.target == "destination"

    @property
    def key(self) -> tuple[str, str]:
        return command_key(self.name, self.target)

    def describe(self) -> str:
        return self.record.jms_type


@dataclass(slots=True)
class TracePlan:
    commands: list[CommandPlan]
    leading: list[PlannedEvent]
    """Unsolicited events before any non-keep-alive command, timed from the first command."""
    event_format: str
    connection_ids: list[str]
    """Every connection id the trace's events name, in order of first appearance."""
    destinations: list[str]
    """Client destinations the trace names (Hello/Beat targets, reply-to topics)."""
    malformed_commands: int = 0


def _decode(record: TraceRecord) -> Event | None:
    try:
        return decode_event(record.raw_body())
    except (ProtocolError, ValueError):
        return None


def connection_id_of(event: Event | None) -> str | None:
    """The call an event names, if it names one (DialogState, InboundCall)."""
    if isinstance(event, (DialogState, InboundCall)):
        return event.connection_id
    return None


def plan_trace(trace: Trace) -> TracePlan:
    """Attribute every event of ``trace`` to a command (or to no command: unsolicited)."""
    commands: list[CommandPlan] = []
    by_cid: dict[str, CommandPlan] = {}
    leading: list[PlannedEvent] = []
    anchor: CommandPlan | None = None
    first: CommandPlan | None = None
    malformed = 0
    json_events = default_events = 0
    cids: dict[str, None] = {}
    destinations: dict[str, None] = {}
    for record in trace.records:
        if record.is_command:
            try:
                name, target, args = parse_command(record.jms_type, record.body)
            except ProtocolError:
                malformed += 1
                continue
            plan = CommandPlan(len(commands), record, name, target, args)
            commands.append(plan)
            if first is None:
                first = plan
            if record.correlation_id:
                by_cid[record.correlation_id] = plan
            if plan.targets_destination:
                destinations[target] = None
            if record.reply_to and record.reply_to.startswith("/topic/"):
                destinations[record.reply_to.removeprefix("/topic/")] = None
            if not plan.keepalive:
                anchor = plan
            continue
        if not record.is_event:
            continue
        event = _decode(record)
        if record.body.lstrip().startswith("{"):
            json_events += 1
        else:
            default_events += 1
        cid = connection_id_of(event)
        if cid:
            cids.setdefault(cid, None)
        owner = by_cid.get(record.correlation_id or "")
        if owner is not None:
            owner.answers.append(PlannedEvent(record.mono - owner.record.mono, record, event))
        elif anchor is not None:
            anchor.unsolicited.append(PlannedEvent(record.mono - anchor.record.mono, record, event))
        else:
            base = first.record.mono if first is not None else trace.header.mono
            leading.append(PlannedEvent(max(0.0, record.mono - base), record, event))
    for plan, following in itertools.pairwise(commands):
        for planned in plan.unsolicited:
            planned.before_next = planned.record.mono <= following.record.mono
    for plan in commands:  # a connection id a command names (AnswerCall <id>) is one too
        spec = COMMANDS.get(plan.name)
        if spec is not None and spec.args[-1:] == ("connection_id",) and plan.args:
            cids.setdefault(plan.args[-1], None)
    return TracePlan(
        commands,
        leading,
        "json" if json_events > default_events else "default",
        list(cids),
        list(destinations),
        malformed,
    )
