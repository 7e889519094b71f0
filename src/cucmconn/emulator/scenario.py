"""Scenario control for tests: what the emulator received and sent, one-shot faults, waiting.

A test of an application needs to see the commands its code sent ("did it send MakeCall for
1001?"), to make the connector misbehave exactly once ("fail the next MakeCall with
INVALID_PARTY"), and to wait for either without sleeping.  ``Scenario`` does that from the
outside of the protocol front: ``Tap`` wraps the emulator's transport, so every command is seen
as it arrives and every event as it leaves, and the front and the call model stay untouched (a
load run, which does not enable it, pays nothing).

Faults act on the next command that matches (canonical name and/or agent):

* ``fail``: the command never reaches the connector; its sender gets ``<agent>#Error#<code>``;
* ``delay``: the command reaches the connector ``seconds`` later (its TTL still applies, so a
  delay past it is a command that times out);
* ``drop``: the command runs, but no correlated event (its answer) is sent;
* ``twice``: the command runs and every correlated event is sent twice.

Everything is bounded: the history is a ring buffer; fault rules and correlation marks have
caps.  It is glue between this project's transport interface and its front (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import msgspec

from ..codec import decode_event, encode_event
from ..codec.commands import canonical_command, parse_command
from ..codec.events import ErrorEvent, Event
from ..codec.text import decode_text
from ..errors import ConnectorError, ProtocolError
from ..transport.base import Message, MessageHandler, Transport
from ..transport.forwarding import ForwardingTransport

__all__ = [
    "CommandRecord",
    "EventRecord",
    "Fault",
    "FaultKind",
    "Scenario",
    "ScenarioTimeout",
    "Tap",
]

FaultKind = Literal["fail", "delay", "drop", "twice"]

MAX_FAULTS = 1000
"""Fault rules armed at once; arming more is refused (a test that needs more is looping)."""
MAX_MARKS = 4096
"""Correlation ids remembered for ``drop`` / ``twice`` (their answers may span several events)."""
SHOWN = 20
"""Entries a failure message shows by default."""
POLL = 0.02
"""Seconds between checks of a condition no command or event wakes."""
_TEXT_LIMIT = 160
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class ScenarioTimeout(AssertionError):
    """A ``wait_for`` ran out of time; the message shows what the emulator saw recently.

    An AssertionError because a test waiting for its application is asserting that the
    application did something; pytest then reports it as a failed assertion.
    """


class CommandRecord(msgspec.Struct, frozen=True, gc=False):
    """One command the emulator received, as it arrived (before it ran).

    ``name`` is canonical (``MakeCall``), ``agent`` the target after ``#``.  ``fault`` names the
    fault that acted on it, if any.  With aliases on, ``correlation_id`` and ``reply_to`` read
    ``c1``, ``c2`` ... and ``client-1`` ... in order of first appearance.  ``seq`` orders
    commands and events together; ``at`` is the emulator's clock.
    """

    seq: int
    at: float
    name: str
    agent: str
    args: tuple[str, ...]
    correlation_id: str | None
    reply_to: str | None
    fault: str | None = None
    malformed: bool = False

    def __str__(self) -> str:
        line = f"#{self.seq} -> {self.name}#{self.agent}"
        if self.args:
            line += " " + ",".join(self.args)
        line += f"  [{self.correlation_id or 'no id'} from {self.reply_to or 'no reply-to'}]"
        if self.malformed:
            line += "  (malformed)"
        if self.fault:
            line += f"  <- fault: {self.fault}"
        return line


class EventRecord(msgspec.Struct, frozen=True, gc=False):
    """One event the emulator sent (or a fault withheld): where, with which id, what.

    ``event`` is the decoded event (None if it could not be decoded), ``text`` the wire body.
    """

    seq: int
    at: float
    destination: str
    correlation_id: str | None
    event: Event | None
    text: str
    fault: str | None = None

    def __str__(self) -> str:
        text = self.text if len(self.text) <= _TEXT_LIMIT else self.text[:_TEXT_LIMIT] + "..."
        line = f"#{self.seq} <- {text}  [{self.correlation_id or 'no id'} to {self.destination}]"
        if self.fault:
            line += f"  <- fault: {self.fault}"
        return line


@dataclass(slots=True)
class Fault:
    """One armed fault: what it does, what it matches, how many more times it fires."""

    kind: FaultKind
    command: str | None = None
    agent: str | None = None
    code: str = "CF_INVALID_OBJECT_STATE"
    seconds: float = 0.0
    times: int = 1
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("fail", "delay", "drop", "twice"):
            raise ValueError(f"fault kind must be fail, delay, drop or twice, not {self.kind!r}")
        if self.times < 1:
            raise ValueError(f"times must be >= 1, not {self.times!r}")
        if self.kind == "delay" and not self.seconds > 0:
            raise ValueError(f"a delay needs seconds > 0, not {self.seconds!r}")
        # A fail code travels in an event body: refuse what would inject a field.
        if self.kind == "fail" and (
            not isinstance(self.code, str) or _CODE.fullmatch(self.code) is None
        ):
            raise ValueError(f"fault code must be a plain error code, not {self.code!r}")
        if self.command is not None:
            self.command = canonical_command(self.command)

    @property
    def spent(self) -> bool:
        """True once it has fired ``times`` times (it is then disarmed)."""
        return self.fired >= self.times

    def matches(self, name: str, agent: str) -> bool:
        """Does a command ``name`` (canonical) for ``agent`` fall under this fault?"""
        return (self.command is None or self.command == name) and (
            self.agent is None or self.agent == agent
        )

    def describe(self) -> str:
        """What it does and to what, as the history shows it (``fail INVALID_PARTY (MakeCall)``)."""
        what = {
            "fail": f"fail {self.code}",
            "delay": f"delay {self.seconds:g} s",
            "drop": "drop the answer",
            "twice": "answer twice",
        }[self.kind]
        scope = f"{self.command or 'any command'}" + (f"#{self.agent}" if self.agent else "")
        return f"{what} ({scope})"


class _Aliases:
    """Stable short names (``c1``, ``client-1``) for values that change every run; bounded."""

    __slots__ = ("_counter", "_limit", "_names", "_prefix")

    def __init__(self, prefix: str, limit: int) -> None:
        self._prefix = prefix
        self._limit = limit
        self._names: OrderedDict[str, str] = OrderedDict()
        self._counter = itertools.count(1)

    def __call__(self, value: str | None) -> str | None:
        if value is None:
            return None
        name = self._names.get(value)
        if name is None:
            name = self._names[value] = f"{self._prefix}{next(self._counter)}"
            if len(self._names) > self._limit:
                self._names.popitem(last=False)
        return name


class Scenario:
    """The history and the armed faults of one emulator; see the module docstring.

    ``history`` bounds the entries kept (commands and events together).  ``aliases`` replaces
    correlation ids and client destinations by ``c1``, ``client-1`` ... in the records, so a
    test can compare them with a literal.  ``clock`` stamps the records.
    """

    def __init__(
        self,
        *,
        history: int,
        event_format: str,
        clock: Callable[[], float],
        aliases: bool = False,
    ) -> None:
        if history < 1:
            raise ValueError(f"history must be >= 1, not {history!r}")
        self.history = history
        self.event_format = event_format
        self._clock = clock
        self._entries: deque[CommandRecord | EventRecord] = deque(maxlen=history)
        self._seq = itertools.count(1)
        self._faults: list[Fault] = []
        self._drop: OrderedDict[str, None] = OrderedDict()
        self._twice: OrderedDict[str, None] = OrderedDict()
        self._waiters: set[asyncio.Future[None]] = set()
        self._claimed: set[int] = set()
        self._cid_alias = _Aliases("c", 4 * history) if aliases else None
        self._dest_alias = _Aliases("client-", 4 * history) if aliases else None
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"Scenario(entries={len(self._entries)}/{self.history}, faults={len(self._faults)})"

    # -- what a test reads -----------------------------------------------------------------

    @property
    def commands(self) -> tuple[CommandRecord, ...]:
        """The commands still in the history, oldest first."""
        return tuple(e for e in self._entries if isinstance(e, CommandRecord))

    @property
    def events(self) -> tuple[EventRecord, ...]:
        """The events still in the history, oldest first."""
        return tuple(e for e in self._entries if isinstance(e, EventRecord))

    @property
    def faults(self) -> tuple[Fault, ...]:
        """Faults armed and not yet spent."""
        return tuple(self._faults)

    def transcript(self, limit: int = SHOWN) -> str:
        """The last ``limit`` commands and events, one per line, oldest first."""
        entries = list(self._entries)[-limit:] if limit > 0 else []
        if not entries:
            return "  (the emulator received no command and sent no event)"
        lines = [f"  {entry}" for entry in entries]
        older = len(self._entries) - len(entries)
        if older:
            lines.insert(0, f"  ... {older} older entr{'y' if older == 1 else 'ies'} not shown")
        return "\n".join(lines)

    # -- arming faults ---------------------------------------------------------------------

    def arm(self, fault: Fault) -> Fault:
        """Arm ``fault``; it acts on the next ``fault.times`` matching commands."""
        if len(self._faults) >= MAX_FAULTS:
            raise ValueError(f"{MAX_FAULTS} faults are already armed")
        self._faults.append(fault)
        return fault

    def disarm(self) -> None:
        """Forget every fault not yet fired."""
        self._faults.clear()

    def _take(self, name: str, agent: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(name, agent):
                fault.fired += 1
                if fault.spent:
                    self._faults.remove(fault)
                return fault
        return None

    # -- waiting ---------------------------------------------------------------------------

    async def until(
        self, check: Callable[[], bool], *, within: float = 5.0, what: str = "the condition"
    ) -> None:
        """Return once ``check()`` holds: tested after every command and event, and every
        ``POLL`` seconds for conditions on the application's own state.

        Raises ScenarioTimeout saying "expected ``what``" and showing the recent history
        otherwise.
        """
        __tracebackhide__ = True  # pytest: show the test's line, not ours
        if not within > 0:
            raise ValueError(f"within must be > 0 seconds, not {within!r}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not check():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ScenarioTimeout(
                    f"expected {what}: not seen within {within:g} s\n"
                    f"recent commands (->) and events (<-), oldest first:\n{self.transcript()}"
                )
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter, min(remaining, POLL))
            finally:
                self._waiters.discard(waiter)

    async def wait_for(
        self,
        command: str | None = None,
        agent: str | None = None,
        *,
        args: Iterable[str] | None = None,
        within: float = 5.0,
    ) -> CommandRecord:
        """The first matching command not already returned by a ``wait_for``.

        It may have arrived before the call (no race with the application).  ``command`` is
        any spelling of the name (``makecall`` too); ``args`` must then equal the arguments.
        """
        __tracebackhide__ = True  # pytest: show the test's line, not ours
        name = canonical_command(command) if command is not None else None
        wanted_args = tuple(args) if args is not None else None
        found: list[CommandRecord] = []

        def check() -> bool:
            self._prune_claims()
            for entry in self._entries:
                if (
                    isinstance(entry, CommandRecord)
                    and entry.seq not in self._claimed
                    and (name is None or entry.name == name)
                    and (agent is None or entry.agent == agent)
                    and (wanted_args is None or entry.args == wanted_args)
                ):
                    self._claimed.add(entry.seq)
                    found.append(entry)
                    return True
            return False

        what = f"{name or 'a command'}" + (f" for agent {agent}" if agent else "")
        if wanted_args is not None:
            what += f" with args {','.join(wanted_args)!r}"
        await self.until(check, within=within, what=what)
        return found[0]

    async def wait_for_event(
        self,
        event: str | None = None,
        agent: str | None = None,
        *,
        state: str | None = None,
        within: float = 5.0,
    ) -> EventRecord:
        """The first matching event sent (and not withheld) not already returned here.

        ``event`` is the event's class name (``InboundCall``, ``AgentState``, ...), ``agent`` its
        agent id (an error's target), ``state`` its state, status or error code.
        """
        __tracebackhide__ = True  # pytest: show the test's line, not ours
        found: list[EventRecord] = []

        def check() -> bool:
            self._prune_claims()
            for entry in self._entries:
                if (
                    isinstance(entry, EventRecord)
                    and entry.fault is None
                    and entry.seq not in self._claimed
                    and _event_matches(entry.event, event, agent, state)
                ):
                    self._claimed.add(entry.seq)
                    found.append(entry)
                    return True
            return False

        what = f"{event or 'an event'}" + (f" for agent {agent}" if agent else "")
        if state is not None:
            what += f" in state {state}"
        await self.until(check, within=within, what=what)
        return found[0]

    def _prune_claims(self) -> None:
        if self._claimed and self._entries:
            oldest = self._entries[0].seq
            if min(self._claimed) < oldest:
                self._claimed = {seq for seq in self._claimed if seq >= oldest}

    def _record(self, entry: CommandRecord | EventRecord) -> None:
        self._entries.append(entry)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- the tap's hooks -------------------------------------------------------------------

    def on_command(
        self,
        message: Message,
        deliver: MessageHandler,
        answer: Callable[[Message, str, str], None],
    ) -> None:
        """A command arrived: record it, apply a fault, hand it to the front (or not)."""
        seq, at = next(self._seq), self._clock()
        try:
            name, agent, args = parse_command(message.jms_type, decode_text(message.body))
        except ProtocolError:
            self._record(
                CommandRecord(
                    seq,
                    at,
                    message.jms_type[:64] or "(no type)",
                    "",
                    (),
                    self._cid(message.correlation_id),
                    self._dest(message.reply_to),
                    malformed=True,
                )
            )
            deliver(message)  # the front answers malformed input itself
            return
        fault = self._take(name, agent)
        self._record(
            CommandRecord(
                seq,
                at,
                name,
                agent,
                args,
                self._cid(message.correlation_id),
                self._dest(message.reply_to),
                fault.describe() if fault is not None else None,
            )
        )
        cid = message.correlation_id
        if fault is None:
            deliver(message)
        elif fault.kind == "fail":
            answer(message, agent, fault.code)
        elif fault.kind == "delay":

            def late() -> None:
                self._timers.discard(handle)
                deliver(message)

            handle = asyncio.get_running_loop().call_later(fault.seconds, late)
            self._timers.add(handle)
        else:
            if cid is not None:
                marks = self._drop if fault.kind == "drop" else self._twice
                marks[cid] = None
                if len(marks) > MAX_MARKS:
                    marks.popitem(last=False)
            deliver(message)

    def copies(self, destination: str, body: str, correlation_id: str | None) -> int:
        """An event is about to be sent: record it; how many copies to send (0, 1 or 2)."""
        copies, fault = 1, None
        if correlation_id is not None:
            if correlation_id in self._drop:
                copies, fault = 0, "answer dropped"
            elif correlation_id in self._twice:
                copies, fault = 2, None
        try:
            event: Event | None = decode_event(body)
        except (ProtocolError, ValueError):
            event = None
        for _ in range(max(copies, 1)):
            self._record(
                EventRecord(
                    next(self._seq),
                    self._clock(),
                    self._dest(destination) or destination,
                    self._cid(correlation_id),
                    event,
                    body,
                    fault,
                )
            )
        return copies

    def track(self, task: asyncio.Task[None]) -> None:
        """Keep a fault's own send alive until it is done (cancelled by ``close``)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        """Cancel delayed deliveries and fault answers still pending."""
        timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()

    def _cid(self, value: str | None) -> str | None:
        return self._cid_alias(value) if self._cid_alias is not None else value

    def _dest(self, value: str | None) -> str | None:
        return self._dest_alias(value) if self._dest_alias is not None else value


def _event_matches(
    event: Event | None, kind: str | None, agent: str | None, state: str | None
) -> bool:
    if event is None:
        return False
    if kind is not None and type(event).__name__ != kind:
        return False
    if agent is not None:
        named = event.target if isinstance(event, ErrorEvent) else getattr(event, "agent_id", None)
        if named != agent:
            return False
    if state is not None:
        value = getattr(event, "state", None) or getattr(event, "status", None)
        if isinstance(event, ErrorEvent):
            value = event.code
        if value != state:
            return False
    return True


class Tap(ForwardingTransport):
    """A transport that passes everything through, showing the scenario each command and event.

    Wraps the emulator's own transport; commands on ``command_queue`` go through
    ``Scenario.on_command`` before the front sees them, and every ``send`` through
    ``Scenario.copies``.
    """

    def __init__(self, inner: Transport, scenario: Scenario, command_queue: str) -> None:
        super().__init__(inner)
        self._scenario = scenario
        self._queue = command_queue

    async def close(self) -> None:
        """Cancel the scenario's pending deliveries, then close the wrapped transport."""
        self._scenario.close()
        await self.inner.close()

    async def send(
        self,
        destination: str,
        body: str,
        *,
        jms_type: str | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        ttl: float | None = None,
        persistent: bool = False,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> None:
        """Record the event, then send it as many times as a fault says (0, 1 or 2)."""
        for _ in range(self._scenario.copies(destination, body, correlation_id)):
            await self.inner.send(
                destination,
                body,
                jms_type=jms_type,
                correlation_id=correlation_id,
                reply_to=reply_to,
                ttl=ttl,
                persistent=persistent,
                deadline=deadline,
                headers=headers,
            )

    async def subscribe(
        self, destination: str, handler: MessageHandler, *, prefetch: int = 1000
    ) -> str:
        """Subscribe; commands on the command queue pass through the scenario first."""
        if destination == self._queue:
            scenario, answer = self._scenario, self._answer

            def tapped(message: Message) -> None:
                scenario.on_command(message, handler, answer)

            return await self.inner.subscribe(destination, tapped, prefetch=prefetch)
        return await self.inner.subscribe(destination, handler, prefetch=prefetch)

    def _answer(self, message: Message, target: str, code: str) -> None:
        """A ``fail`` fault: the sender gets ``<agent>#Error#<code>`` with its correlation id."""
        reply_to = message.reply_to
        if reply_to is None:
            return  # nowhere to answer, as the connector itself would have nowhere
        body = encode_event(ErrorEvent(target, code), self._scenario.event_format)
        task = asyncio.get_running_loop().create_task(
            self._send_error(reply_to, body, message.correlation_id),
            name="cucmconn-emulator-fault",
        )
        self._scenario.track(task)

    async def _send_error(self, reply_to: str, body: str, correlation_id: str | None) -> None:
        # A lost link loses this answer as it would have lost the command.
        with contextlib.suppress(ConnectorError, OSError):
            await self.send(reply_to, body, correlation_id=correlation_id)
