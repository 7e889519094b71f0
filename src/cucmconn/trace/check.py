"""``cucmconn replay TRACE --check``: play a trace's client side against a connector and compare.

For each recorded command, in order, the checker sends the same command (fresh correlation id,
its own reply topic, recorded connection ids renamed to the live ones as they are learned) and
compares the events correlated to it with the recorded ones, field by field on the decoded
events.  Connection ids, correlation ids and event times are not compared (a live run cannot
reproduce them); everything else is.  Unsolicited events are counted, not compared: another
party (a customer, CUCM) caused them.  With the emulator in-process, a customer's call that
rang in is rung again at the same point, so the commands that handle it are compared.  The
default connector is the emulator on ``memory://``, so a trace from a real connector measures
the emulator's fidelity to it.

A list of **expected differences** (JSON: ``[{"command": i, "event": j, "field": f,
"reason": "..."}]``) marks known, explained differences, such as the vendor guide's own
inconsistencies that the emulator tolerates; they are reported but do not fail the check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from ..codec import decode_event
from ..codec.events import ErrorEvent, Event, InboundCall
from ..emulator import Emulator
from ..emulator.directory import DEFAULT_EXTENSIONS
from ..errors import CommandError, ProtocolError
from ..transport import Message, Transport, open_transport, topic
from ..transport.base import queue as queue_destination
from .format import Trace, read_trace
from .plan import CommandPlan, TracePlan, connection_id_of, plan_trace
from .remap import Remap

__all__ = [
    "IGNORED_FIELDS",
    "CheckReport",
    "CommandCheck",
    "ExpectedDifference",
    "FieldDifference",
    "check_trace",
    "load_expected",
]

IGNORED_FIELDS = frozenset({"connection_id", "changed_at", "start_time", "raw"})
"""Fields a live run cannot reproduce: ids and times (``raw`` repeats them for unknown events)."""
DEFAULT_TTL = 10.0


class FieldDifference(msgspec.Struct, frozen=True):
    """One field of one event that differs; ``field`` is ``Type.name``, or ``event`` when an
    event is missing or extra (then ``expected``/``observed`` give its type or None)."""

    event: int
    field: str
    expected: Any
    observed: Any
    reason: str | None = None
    """Set when the difference is a listed, expected one."""


class CommandCheck(msgspec.Struct):
    """One command: what the trace answered and what the live connector answered."""

    index: int
    command: str
    expected: list[dict[str, Any]]
    observed: list[dict[str, Any]]
    differences: list[FieldDifference]

    @property
    def identical(self) -> bool:
        return not self.differences

    @property
    def unexpected(self) -> list[FieldDifference]:
        return [d for d in self.differences if d.reason is None]


class CheckReport(msgspec.Struct):
    """The whole comparison; ``summary()`` is the line the CLI prints."""

    url: str
    commands: list[CommandCheck]
    unsolicited_not_compared: int

    @property
    def identical(self) -> int:
        return sum(1 for c in self.commands if c.identical)

    @property
    def different(self) -> int:
        return len(self.commands) - self.identical

    @property
    def expected_only(self) -> int:
        """Commands whose every difference is a listed, expected one."""
        return sum(1 for c in self.commands if c.differences and not c.unexpected)

    @property
    def ok(self) -> bool:
        """No difference other than listed ones."""
        return all(not c.unexpected for c in self.commands)

    def summary(self) -> str:
        text = (
            f"{len(self.commands)} commands, {self.identical} identical, {self.different} different"
        )
        if self.expected_only:
            text += f" ({self.expected_only} only in expected, listed ways)"
        return text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        out.update(
            identical=self.identical,
            different=self.different,
            expected_only=self.expected_only,
            ok=self.ok,
            summary=self.summary(),
        )
        return out


class ExpectedDifference(msgspec.Struct, frozen=True):
    """A known difference: command index, event index, ``Type.field``, and why it is fine."""

    command: int
    event: int
    field: str
    reason: str


def load_expected(path: str | os.PathLike[str]) -> list[ExpectedDifference]:
    """Read a JSON list of expected differences; ValueError names what is wrong."""
    try:
        with open(path, "rb") as source:
            return msgspec.json.decode(source.read(), type=list[ExpectedDifference])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"{os.fspath(path)}: not a list of expected differences: {exc}") from None


def event_fields(event: Event | None, body: str) -> dict[str, Any]:
    """The comparable view of an event: its type and every field but ids and times."""
    if event is None:
        return {"type": "Undecodable", "body": body}
    fields = msgspec.structs.asdict(event)
    out: dict[str, Any] = {"type": type(event).__name__}
    for name, value in fields.items():
        if name not in IGNORED_FIELDS:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def _compare(
    expected: Sequence[dict[str, Any]], observed: Sequence[dict[str, Any]]
) -> list[FieldDifference]:
    differences: list[FieldDifference] = []
    for number in range(max(len(expected), len(observed))):
        want = expected[number] if number < len(expected) else None
        got = observed[number] if number < len(observed) else None
        if want is None or got is None or want["type"] != got["type"]:
            differences.append(
                FieldDifference(
                    number,
                    "event",
                    want["type"] if want else None,
                    got["type"] if got else None,
                )
            )
            continue
        for name in sorted(set(want) | set(got)):
            if name != "type" and want.get(name) != got.get(name):
                differences.append(
                    FieldDifference(number, f"{want['type']}.{name}", want.get(name), got.get(name))
                )
    return differences


def default_extensions(plan: TracePlan) -> str:
    """The emulator's directory for a trace: the default range plus every agent the trace
    logged in without an error, so a real connector's extensions exist in the emulator."""
    agents = {
        p.target
        for p in plan.commands
        if p.name == "Login"
        and p.target.isdigit()
        and not any(isinstance(a.event, ErrorEvent) for a in p.answers)
    }
    return ",".join([DEFAULT_EXTENSIONS, *sorted(agents)])


class _Inbox:
    """Live events (decoded) by correlation id, plus a count of uncorrelated ones."""

    def __init__(self) -> None:
        self.by_id: dict[str, list[tuple[Message, Event | None]]] = {}
        self.uncorrelated = 0
        self.arrived = asyncio.Event()

    def __call__(self, message: Message) -> None:
        cid = message.correlation_id
        if cid is None or cid not in self.by_id:
            self.uncorrelated += 1
        else:
            try:
                event: Event | None = decode_event(message.body)
            except (ProtocolError, ValueError):
                event = None
            self.by_id[cid].append((message, event))
        self.arrived.set()

    async def collect(
        self, cid: str, want: int, settle: float, answer_wait: float
    ) -> list[tuple[Message, Event | None]]:
        """The events for ``cid``: at least ``want`` (or an error, which ends a command, or
        until ``answer_wait`` s), then until quiet for ``settle`` seconds (extra events are
        differences too)."""
        got = self.by_id[cid]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + answer_wait
        while True:
            enough = len(got) >= want or any(isinstance(e, ErrorEvent) for _, e in got)
            wait = settle if enough else deadline - loop.time()
            if wait <= 0:
                break
            before = len(got)
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), wait)
            if enough and len(got) == before:
                break
        return list(got)


async def check_trace(
    trace: Trace | str | os.PathLike[str],
    url: str = "memory://",
    *,
    queue: str = "Connector1",
    emulate: bool | None = None,
    emulator_options: Mapping[str, Any] | None = None,
    expected: Sequence[ExpectedDifference] = (),
    settle: float = 0.2,
    answer_wait: float = 5.0,
    transport: Transport | None = None,
) -> CheckReport:
    """Play ``trace``'s commands against the connector on ``url`` and compare the answers.

    ``emulate`` (default: only on memory://) runs the emulator in this process, in the trace's
    event format with the trace's agents in its directory; ``emulator_options`` override its
    constructor's arguments (e.g. ``{"licenses": 1}`` for an altered behaviour).  Each command
    waits up to ``answer_wait`` seconds for as many events as the trace recorded, then until no
    more came for ``settle`` seconds.
    """
    loaded = trace if isinstance(trace, Trace) else read_trace(trace)
    plan = plan_trace(loaded)
    if emulate is None:
        emulate = url.startswith("memory:")
    options: dict[str, Any] = {
        "event_format": plan.event_format,
        "extensions": default_extensions(plan),
        "queue": queue,
    }
    options.update(emulator_options or {})
    async with contextlib.AsyncExitStack() as stack:
        emulator = None
        if emulate:
            emulator = await stack.enter_async_context(Emulator(url, **options))
        link = transport or open_transport(url)
        if not link.connected:
            await link.connect()
        if transport is None:
            stack.push_async_callback(link.close)
        report = await _play(plan, link, queue, settle, answer_wait, emulator)
    _mark_expected(report, expected)
    return report


async def _play(
    plan: TracePlan,
    link: Transport,
    queue: str,
    settle: float,
    answer_wait: float,
    emulator: Emulator | None,
) -> CheckReport:
    destination = f"cucmconn-check-{uuid.uuid4().hex[:8]}"
    reply_to = topic(destination)
    remap = Remap()
    for recorded in plan.destinations:
        remap.learn(recorded, destination)
        remap.learn(topic(recorded), reply_to)
    inbox = _Inbox()
    subscription = await link.subscribe(reply_to, inbox)
    results: list[CommandCheck] = []
    agents = {c.target for c in plan.commands if not c.targets_destination}
    try:
        for number, command in enumerate(plan.commands):
            one = _one(command, number, link, queue, reply_to, remap, inbox, settle, answer_wait)
            results.append(await one)
            if emulator is not None:
                await _ring_customers(emulator, command, agents, remap)
    finally:
        with contextlib.suppress(Exception):
            await link.unsubscribe(subscription)
    unsolicited = len(plan.leading) + sum(len(c.unsolicited) for c in plan.commands)
    return CheckReport(link.display_url, results, unsolicited)


async def _one(
    command: CommandPlan,
    number: int,
    link: Transport,
    queue: str,
    reply_to: str,
    remap: Remap,
    inbox: _Inbox,
    settle: float,
    answer_wait: float,
) -> CommandCheck:
    record = command.record
    cid = f"check-{number}-{uuid.uuid4().hex[:6]}"
    inbox.by_id[cid] = []
    expires = record.headers.get("expires", "")
    ttl = (int(expires) / 1000 - record.wall) if expires.isdigit() else DEFAULT_TTL
    ttl = min(max(ttl, 1.0), 60.0)
    await link.send(
        queue_destination(queue),
        remap.body(record.body),
        jms_type=remap.body(record.jms_type),
        correlation_id=cid,
        reply_to=reply_to,
        ttl=ttl,
    )
    arrived = await inbox.collect(cid, len(command.answers), settle, answer_wait)
    del inbox.by_id[cid]
    observed_events = [event for _, event in arrived]
    observed = [event_fields(event, message.text()) for message, event in arrived]
    expected = []
    for position, planned in enumerate(command.answers):
        live = observed_events[position] if position < len(observed_events) else None
        recorded_id, live_id = connection_id_of(planned.event), connection_id_of(live)
        if recorded_id and live_id:
            remap.learn(recorded_id, live_id)
        fields = event_fields(planned.event, planned.record.body)
        expected.append({k: _rename(remap, v) for k, v in fields.items()})
    return CommandCheck(number, record.jms_type, expected, observed, _compare(expected, observed))


async def _ring_customers(
    emulator: Emulator, command: CommandPlan, agents: set[str], remap: Remap
) -> None:
    """With the emulator in-process, a customer's call that rang in after ``command`` in the
    trace rings again (the emulator cannot know a customer called), so the commands that
    handle it can be compared; its live connection id replaces the recorded one."""
    for planned in command.unsolicited:
        event = planned.event
        if not (
            isinstance(event, InboundCall)
            and event.state.upper() == "ALERTING"
            and event.agent_id
            and event.other_party
            and event.other_party not in agents
        ):
            continue
        with contextlib.suppress(CommandError):
            live = await emulator.place_call(event.other_party, event.agent_id)
            if event.connection_id:
                remap.learn(event.connection_id, live)


def _rename(remap: Remap, value: Any) -> Any:
    """Recorded destinations in event fields (an error for a Hello) become the live one."""
    if isinstance(value, str) and remap.known(value):
        return remap.live(value)
    return value


def _mark_expected(report: CheckReport, expected: Sequence[ExpectedDifference]) -> None:
    reasons = {(e.command, e.event, e.field): e.reason for e in expected}
    for command in report.commands:
        command.differences = [
            msgspec.structs.replace(d, reason=reasons.get((command.index, d.event, d.field)))
            for d in command.differences
        ]


def render(report: CheckReport, *, verbose: bool = False) -> list[str]:
    """Human lines: each differing command with its fields, then the summary."""
    lines: list[str] = []
    for command in report.commands:
        if command.identical and not verbose:
            continue
        verdict = "identical" if command.identical else "different"
        lines.append(f"#{command.index} {command.command}: {verdict}")
        for d in command.differences:
            note = f"  (expected: {d.reason})" if d.reason else ""
            lines.append(
                f"    event {d.event} {d.field}: expected {json.dumps(d.expected)}, "
                f"observed {json.dumps(d.observed)}{note}"
            )
    lines.append(report.summary())
    if report.unsolicited_not_compared:
        lines.append(
            f"({report.unsolicited_not_compared} unsolicited events in the trace not compared)"
        )
    return lines
