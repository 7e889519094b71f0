"""The emulator's protocol front: the command queue in, events out, over any Transport.

It is everything the real connector does that is not telephony: parse JMSType/body, answer on
JMSReplyTo (else the topic named at Hello/Login) with the command's correlation id, skip a
command whose ``expires`` has passed (checked when it would run, so added latency can never
execute it late), turn malformed input into ``PLEASE_RETRY`` without ever crashing, and inject
faults (latency, dropped / duplicated / reordered events).  The call model behind it is
swappable: the front only needs ``handle(Command) -> list[Output]``.

With a :class:`~cucmconn.emulator.senders.SenderPolicy` (``cucmconn emulate --require-sender``)
it also refuses a command whose authenticated sender (``JMSXUserID``, stamped by a broker with
``populateJMSXUserID``) does not own the destination it would be answered on: the command is
not executed and nothing is sent there, not even an error; the refusal is logged (at most once
a second, with a count) and counted as ``refused_sender``.

Why it is hand-written: docs/architecture.md.  One worker
task drains one FIFO, so the events of each command leave in the order the model produced them
and commands execute in arrival order, as on the single-threaded connector.  The FIFO is
bounded: past ``max_backlog`` waiting commands, a new one is answered ``PLEASE_RETRY`` at once
(the guide's answer for "request timeout") instead of growing memory.  Unsubscribing to push
back on the broker was tried and rejected: with STOMP ``ack:auto`` the messages already
prefetched to an unsubscribed consumer are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..codec import encode_event, parse_command
from ..codec.commands import ALIASES, is_probe
from ..codec.events import ErrorEvent, Event, SystemStatus
from ..codec.text import decode_text
from ..errors import ConnectorError, ProtocolError
from ..transport.base import Message, Transport, queue, topic
from .model import Command, Output
from .senders import USER_HEADER, SenderPolicy

__all__ = ["CallModel", "Faults", "Front", "FrontCounters"]

log = logging.getLogger("cucmconn.emulator")

MAX_BODY = 4096
"""Longest command body accepted; the longest real one (``other,cid``) is a few dozen bytes."""
MAX_HEADER = 512
MAX_TRACKED_CLIENTS = 10_000
MAX_OVERLOAD_ANSWERS = 10_000
"""PLEASE_RETRY answers waiting to be sent for shed commands; past this, shedding is silent."""
REFUSAL_LOG_INTERVAL = 1.0
"""Seconds between two log lines about refused senders (a flood must not flood the log)."""

_EMPTY_TARGET = re.compile(r"\s*([A-Za-z0-9_]+)\s*#\s*")
_SAFE_TARGET = re.compile(r"[A-Za-z0-9_.:@/-]{1,128}")
_SAFE_NAME = re.compile(r"\s*([A-Za-z_]{1,32})\s*")
_DESTINATION = re.compile(r"/(topic|queue|temp-topic|temp-queue)/[^\x00-\x1f\x7f]{1,250}")


class CallModel(Protocol):
    """What the front needs from the telephony side (the emulator's model, or a real one)."""

    def handle(self, command: Command) -> list[Output]: ...


@dataclass(slots=True)
class Faults:
    """Fault injection, all off by default; ``seed`` makes a faulty run reproducible."""

    latency: float = 0.0
    """Seconds each command waits before it executes (its TTL is checked after the wait)."""
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.latency < 0:
            raise ValueError(f"latency must be >= 0, not {self.latency!r}")
        for name in ("drop_rate", "duplicate_rate", "reorder_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], not {value!r}")

    @property
    def mangles(self) -> bool:
        """True when any delivery fault (drop, duplicate, reorder) is switched on."""
        return bool(self.drop_rate or self.duplicate_rate or self.reorder_rate)


@dataclass(slots=True)
class FrontCounters:
    """What the front did; the Emulator adds the model's figures for ``stats()``."""

    received: int = 0
    executed: int = 0
    expired: int = 0
    malformed: int = 0
    refused_out_of_service: int = 0
    errors_sent: int = 0
    events_sent: int = 0
    events_dropped: int = 0
    events_duplicated: int = 0
    events_reordered: int = 0
    unroutable: int = 0
    unauthorised: int = 0
    """Commands refused PRIVILLEGE_VIOLATION (an agent owned by another destination)."""
    send_failures: int = 0
    internal_errors: int = 0
    shed: int = 0
    """Commands refused with PLEASE_RETRY because ``max_backlog`` commands were waiting."""
    shed_unanswered: int = 0
    """Of those, how many could not even be answered (no reply path, or a flood)."""
    restarts: int = 0
    lost_in_restart: int = 0
    links_lost: int = 0
    """Times the link to the broker dropped (the transport reconnects on its own)."""
    reconnects: int = 0
    """Times it came back; each is logged, so a "connection lost" line always gets its end."""
    executed_by_command: dict[str, int] = field(default_factory=dict)
    """``executed`` by canonical command name (metrics: commands handled by command)."""
    errors_by_code: dict[str, int] = field(default_factory=dict)
    """``errors_sent`` by the ``#Error#`` code sent."""
    refused_sender: int = 0
    """Commands refused because their sender (``JMSXUserID``) does not own the destination
    they would be answered on: not executed, not answered (``--require-sender``)."""


class _LinkLog:
    """The transport's listener: counts lost links and logs the reconnect that ends each one.

    The transport logs "connection ... lost" itself; without this the emulator's log never said
    that it was serving again, nor on which broker of a failover list.  WARNING like the loss,
    so the pair shows up under the default logging of ``cucmconn emulate``.
    """

    def __init__(self, transport: Transport, counters: FrontCounters) -> None:
        self._transport = transport
        self._counters = counters
        self._lost_at: float | None = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._counters.links_lost += 1
        self._lost_at = time.monotonic()

    def connection_restored(self) -> None:
        self._counters.reconnects += 1
        lost_at, self._lost_at = self._lost_at, None
        after = f" after {time.monotonic() - lost_at:.1f} s" if lost_at is not None else ""
        endpoint = getattr(self._transport, "endpoint", None) or self._transport.display_url
        log.warning(
            "emulator reconnected to %s%s; serving the command queue again "
            "(commands sent meanwhile may have expired or gone to another connector)",
            endpoint,
            after,
        )


class _Outbound:
    """Events produced outside any command (a call placed, an outage), with a done future."""

    __slots__ = ("done", "outputs")

    def __init__(self, outputs: list[Output], done: asyncio.Future[None]) -> None:
        self.outputs = outputs
        self.done = done


_Work = tuple[float, Message] | _Outbound


class Front:
    """Consumes the command queue for one model and sends what it answers."""

    def __init__(
        self,
        transport: Transport,
        model: CallModel,
        *,
        queue_name: str = "Connector1",
        event_format: str = "default",
        faults: Faults | None = None,
        max_backlog: int = 10_000,
        clock: Callable[[], float] = time.time,
        senders: SenderPolicy | None = None,
    ) -> None:
        if event_format not in ("default", "json"):
            raise ValueError(f"event_format must be 'default' or 'json', not {event_format!r}")
        if max_backlog < 1:
            raise ValueError("max_backlog must be at least 1")
        self.transport = transport
        self.model = model
        self.queue = queue(queue_name)
        self.event_format = event_format
        self.faults = faults or Faults()
        self.counters = FrontCounters()
        self.max_backlog = max_backlog
        self._clock = clock
        self._rng = random.Random(self.faults.seed)
        self._inbox: deque[_Work] = deque()
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._subscription: str | None = None
        self._queued = 0
        self._overload: deque[tuple[str | None, str | None, str]] = deque()
        self._clients: OrderedDict[str, int] = OrderedDict()
        self._verdicts: dict[str, bool] = {}  # destination -> routable?
        self.senders = senders
        self._refusal_logged_at = -REFUSAL_LOG_INTERVAL
        self._refusals_unlogged = 0

    def __repr__(self) -> str:
        return (
            f"Front({self.transport.display_url!r}, queue={self.queue!r}, "
            f"format={self.event_format!r}, backlog={len(self._inbox)})"
        )

    @property
    def backlog(self) -> int:
        """Commands received and not yet executed (the inbox): how far behind the emulator is."""
        return len(self._inbox)

    @property
    def clients(self) -> Mapping[str, int]:
        """Commands received per client destination (the most recent ``MAX_TRACKED_CLIENTS``)."""
        return dict(self._clients)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect if needed, subscribe to the command queue, then start executing commands."""
        if not self.transport.connected:
            await self.transport.connect()
        self.transport.set_listener(_LinkLog(self.transport, self.counters))
        # Subscribe first: commands arriving before the worker starts simply wait in the inbox.
        self._subscription = await self.transport.subscribe(self.queue, self._on_message)
        self._worker = asyncio.get_running_loop().create_task(
            self._run(), name="cucmconn-emulator-front"
        )

    async def stop(self) -> None:
        """Stop executing, fail what was queued for delivery, unsubscribe and close the link."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._fail_outbound()
        self._inbox.clear()
        self._overload.clear()
        self._queued = 0
        if self._subscription is not None and self.transport.connected:
            with contextlib.suppress(ConnectorError, OSError):
                await self.transport.unsubscribe(self._subscription)
        self._subscription = None
        await self.transport.close()

    def restart(self, model: CallModel) -> None:
        """The connector restarts: commands not yet executed are lost, state is the new model's."""
        lost = sum(1 for work in self._inbox if not isinstance(work, _Outbound))
        self.counters.lost_in_restart += lost
        self.counters.restarts += 1
        kept = [work for work in self._inbox if isinstance(work, _Outbound)]
        self._inbox.clear()
        self._inbox.extend(kept)
        self._queued = 0
        self.model = model

    def submit(self, outputs: list[Output]) -> asyncio.Future[None]:
        """Send events the model produced on its own; the future resolves once they are sent."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not outputs:
            done.set_result(None)
            return done
        self._inbox.append(_Outbound(outputs, done))
        self._wake.set()
        return done

    async def drain(self) -> None:
        """Wait until everything received or submitted so far has been processed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inbox.append(_Outbound([], done))
        self._wake.set()
        await done

    # -- receiving ---------------------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        self.counters.received += 1
        if self._queued < self.max_backlog:
            self._queued += 1
            self._inbox.append((self._clock() + self.faults.latency, message))
        elif (reply_to := message.reply_to) is not None and not self._sender_owns(
            message, reply_to
        ):
            return  # even a PLEASE_RETRY must not go to a topic its sender does not own
        elif len(self._overload) < MAX_OVERLOAD_ANSWERS:
            self.counters.shed += 1  # answered PLEASE_RETRY, as an overloaded connector does
            self._overload.append(_overload_answer(message))
        else:
            self.counters.shed += 1
            self.counters.shed_unanswered += 1
            return
        self._wake.set()

    # -- the worker ------------------------------------------------------------------------

    async def _run(self) -> None:
        inbox, overload = self._inbox, self._overload
        while True:
            if overload:  # cheap answers first, so the overload queue stays short
                await self._send_overload(overload.popleft())
                continue
            if not inbox:
                self._wake.clear()
                await self._wake.wait()
                continue
            work = inbox.popleft()
            try:
                if isinstance(work, _Outbound):
                    await self._send(work.outputs, None)
                    if not work.done.done():
                        work.done.set_result(None)
                else:
                    self._queued -= 1
                    await self._execute(*work)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad command must never stop the connector
                self.counters.internal_errors += 1
                log.exception("emulator failed on a command")

    async def _send_overload(self, answer: tuple[str | None, str | None, str]) -> None:
        reply_to, correlation_id, target = answer
        if reply_to is None or not self._routable(reply_to):
            self.counters.unroutable += 1
            self.counters.shed_unanswered += 1
            return
        output = Output(reply_to, ErrorEvent(target, "PLEASE_RETRY"), True)
        await self._send([output], correlation_id)

    def _fail_outbound(self) -> None:
        for work in self._inbox:
            if isinstance(work, _Outbound) and not work.done.done():
                work.done.cancel()

    async def _execute(self, due: float, message: Message) -> None:
        wait = due - self._clock()
        if wait > 0:
            await asyncio.sleep(wait)
        expires = message.expires
        if expires is not None and expires <= self._clock() * 1000:
            self.counters.expired += 1  # the broker may deliver it; the connector must not run it
            return
        parsed = self._parse(message)
        if isinstance(parsed, Command):
            self._track(parsed.requester)
            outputs = self.model.handle(parsed)
            self.counters.executed += 1
            by_command = self.counters.executed_by_command
            by_command[parsed.name] = by_command.get(parsed.name, 0) + 1
            if _refused(parsed, outputs):
                self.counters.refused_out_of_service += 1
            elif _unauthorised(outputs):
                self._on_unauthorised(parsed)
        elif parsed is None:
            return
        else:
            outputs = [parsed]
        await self._send(outputs, message.correlation_id)

    def _on_unauthorised(self, command: Command) -> None:
        self.counters.unauthorised += 1
        if command.requester is None:
            # Not answered (the model routes it nowhere, so ``_send`` counts it unroutable):
            # the owner's topic is no place for it, and the sender gave no address.  Logged
            # here so an operator sees the attempt; name and extension only, never the body.
            log.info(
                "refused %s on agent %s: no reply-to, so not its owner (PRIVILLEGE_VIOLATION)",
                command.name,
                command.target,
            )

    def _track(self, destination: str | None) -> None:
        if destination is None:
            return
        clients = self._clients
        clients[destination] = clients.pop(destination, 0) + 1
        if len(clients) > MAX_TRACKED_CLIENTS:
            clients.popitem(last=False)

    # -- parsing -----------------------------------------------------------------------------

    def _parse(self, message: Message) -> Command | Output | None:
        """The command; else the PLEASE_RETRY to send, or None when there is nowhere to send it."""
        reply_to = message.reply_to
        if reply_to is not None and not self._routable(reply_to):
            self.counters.malformed += 1
            self.counters.unroutable += 1
            return None
        if reply_to is not None and not self._sender_owns(message, reply_to):
            return None
        jms_type = message.jms_type
        try:
            if len(message.body) > MAX_BODY or len(jms_type) > MAX_HEADER:
                raise ProtocolError("command too large")
            name, target, args = _parse(jms_type, decode_text(message.body))
        except ProtocolError:
            self.counters.malformed += 1
            return self._reject_malformed(message, reply_to)
        requester = self._requester(reply_to, name, target, args)
        if reply_to is None and requester is not None and not self._sender_owns(message, requester):
            return None  # the topic named at Hello/Login is checked like a reply-to
        return Command(name, target, args, requester)

    def _sender_owns(self, message: Message, destination: str) -> bool:
        """True when no sender check is on, or the authenticated sender owns ``destination``;
        otherwise the refusal is counted and (rate-limited) logged."""
        senders = self.senders
        if senders is None:
            return True
        user = message.headers.get(USER_HEADER)
        if senders.owns(user, destination):
            return True
        self.counters.refused_sender += 1
        now = time.monotonic()
        if now - self._refusal_logged_at < REFUSAL_LOG_INTERVAL:
            self._refusals_unlogged += 1
            return False
        more, self._refusals_unlogged = self._refusals_unlogged, 0
        self._refusal_logged_at = now
        name = _SAFE_NAME.fullmatch(message.jms_type.partition("#")[0])
        log.warning(
            "refused %s on %r from sender %r: it does not own %r (not executed, not answered)%s",
            name.group(1) if name else "a command",
            _echo_target(message),
            (user or "(none)")[:64],
            destination[:128],
            f"; {more} more refused since the last report" if more else "",
        )
        if user is None:
            log.warning(
                "the command carried no %s: --require-sender needs a broker with "
                "authentication and populateJMSXUserID (cucmconn broker start --secure)",
                USER_HEADER,
            )
        return False

    def _requester(
        self, reply_to: str | None, name: str, target: str, args: Sequence[str]
    ) -> str | None:
        if reply_to is not None:
            return reply_to
        lowered = name.lower()
        named = target if lowered in ("hello", "beat") else args[0] if args else ""
        if lowered in ("hello", "beat", "login") and named:
            destination = topic(named)
            return destination if self._routable(destination) else None
        return None

    def _routable(self, destination: str) -> bool:
        """A destination we may send to: well-formed, and never our own command queue.

        Every event is checked, and a handful of destinations recur, so verdicts are cached
        (bounded: a flood of distinct names just restarts the cache).
        """
        verdict = self._verdicts.get(destination)
        if verdict is None:
            verdict = _DESTINATION.fullmatch(destination) is not None and destination != self.queue
            if len(self._verdicts) >= MAX_TRACKED_CLIENTS:
                self._verdicts.clear()
            self._verdicts[destination] = verdict
        return verdict

    def _reject_malformed(self, message: Message, reply_to: str | None) -> Output | None:
        """PLEASE_RETRY to the sender, addressed to the target when it is safe to echo."""
        if reply_to is None:
            self.counters.unroutable += 1
            return None
        return Output(reply_to, ErrorEvent(_echo_target(message), "PLEASE_RETRY"), True)

    # -- sending -----------------------------------------------------------------------------

    async def _send(self, outputs: list[Output], correlation_id: str | None) -> None:
        if self.faults.mangles:
            outputs = self._mangle(outputs)
        for output in outputs:
            destination = output.destination
            if destination is None or not self._routable(destination):
                self.counters.unroutable += 1
                continue
            body = self._encode(output.event)
            if body is None:
                continue
            cid = correlation_id if output.correlated else None
            try:
                await self.transport.send(destination, body, correlation_id=cid)
            except (ConnectorError, OSError) as exc:
                self.counters.send_failures += 1
                log.warning("emulator could not send to %s: %s", destination, exc)
                continue
            self.counters.events_sent += 1
            if isinstance(output.event, ErrorEvent):
                self.counters.errors_sent += 1
                by_code = self.counters.errors_by_code
                by_code[output.event.code] = by_code.get(output.event.code, 0) + 1

    def _encode(self, event: Event) -> str | None:
        try:
            return encode_event(event, self.event_format)
        except (ValueError, TypeError):
            if isinstance(event, ErrorEvent) and event.target:
                return self._encode(ErrorEvent("", event.code))
            self.counters.internal_errors += 1
            log.warning("emulator could not encode %s", type(event).__name__)
            return None

    def _mangle(self, outputs: list[Output]) -> list[Output]:
        faults, rng, counters = self.faults, self._rng, self.counters
        kept: list[Output] = []
        for output in outputs:
            if faults.drop_rate and rng.random() < faults.drop_rate:
                counters.events_dropped += 1
                continue
            kept.append(output)
            if faults.duplicate_rate and rng.random() < faults.duplicate_rate:
                kept.append(output)
                counters.events_duplicated += 1
        if faults.reorder_rate:
            for index in range(len(kept) - 1):
                if rng.random() < faults.reorder_rate:
                    kept[index], kept[index + 1] = kept[index + 1], kept[index]
                    counters.events_reordered += 1
        return kept


def _overload_answer(message: Message) -> tuple[str | None, str | None, str]:
    """(reply-to, correlation id, target to echo) of a shed command: a few short strings."""
    return message.reply_to, message.correlation_id, _echo_target(message)


def _echo_target(message: Message) -> str:
    """The command's target if it is a plain token safe to echo in an error, else ``""``."""
    _, _, raw_target = message.jms_type.partition("#")
    target = raw_target.strip()
    return target if _SAFE_TARGET.fullmatch(target) is not None else ""


def _refused(command: Command, outputs: list[Output]) -> bool:
    """Was this the model's "CUCM is down" answer to a command other than Hello/Beat?"""
    if len(outputs) != 1 or is_probe(command.name):
        return False
    event = outputs[0].event
    return isinstance(event, SystemStatus) and not event.in_service


def _unauthorised(outputs: list[Output]) -> bool:
    """Was this the model's refusal of a command on an agent the requester does not own?"""
    if len(outputs) != 1:
        return False
    event = outputs[0].event
    return isinstance(event, ErrorEvent) and event.code == "PRIVILLEGE_VIOLATION"


def _parse(jms_type: str, body: str) -> tuple[str, str, tuple[str, ...]]:
    """``parse_command``, plus an empty target (``Login#``) passed on so the model can answer
    MISSING_EXTENSION instead of the generic PLEASE_RETRY."""
    try:
        return parse_command(jms_type, body)
    except ProtocolError:
        match = _EMPTY_TARGET.fullmatch(jms_type)
        if match is None or is_probe(match.group(1)):
            raise
        name = match.group(1)
        return ALIASES.get(name.lower(), name), "", ()
