"""``cucmconn.Replayer``: a recorded connector, answering live commands from a trace.

Put it where the connector would be (it consumes the command queue on any transport URL) and an
application that ran against a connector sees that run again, without the connector, CUCM or a
Cisco lab.  Each live command is matched to the next recorded command with the same name and
agent (keep-alives match any destination), and answered with the events that followed that
command in the trace, at their recorded delays divided by ``speed``; the events carry the live
command's correlation id.  Connection ids, client destinations and event times are renamed
consistently (``remap.py``).  Unsolicited events (calls ringing in, outages) play at their
recorded offsets from the command before them (see ``plan.py``).

A command the trace cannot answer is logged and counted, and gets ``<target>#Error#<code>``
(``unanswered``, default ``CF_INVALID_OBJECT_STATE``: the connector's "not in that state") or,
with ``unanswered=None``, silence.  Keep-alives past the end of the recorded ones are answered
with the last recorded keep-alive answer: they are status queries a long run keeps sending.

Why it is hand-written: docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import os
import time
from collections import deque
from types import TracebackType
from typing import Any

import msgspec

from ..codec import encode_event
from ..codec.commands import parse_command
from ..codec.events import ErrorEvent
from ..errors import ProtocolError
from ..transport import Message, Transport, open_transport
from ..transport.base import queue as queue_destination
from .format import Trace, read_trace
from .plan import KEEPALIVE, CommandPlan, PlannedEvent, TracePlan, command_key, plan_trace
from .remap import Remap

__all__ = ["Replayer", "ReplayerStats"]

log = logging.getLogger("cucmconn.replay")

DEFAULT_UNANSWERED = "CF_INVALID_OBJECT_STATE"
MAX_SCHEDULED = 100_000
"""Events waiting to be sent; past it (a flood of unanswerable commands) new ones are dropped."""
_LOGGED_UNANSWERED = 20


class ReplayerStats(msgspec.Struct, frozen=True, gc=False):
    """What the replayer did, and what of the trace is left."""

    commands_received: int
    commands_answered: int
    commands_unanswered: int
    keepalives_repeated: int
    commands_malformed: int
    events_sent: int
    unsolicited_sent: int
    events_unroutable: int
    events_dropped: int
    commands_left: int
    """Recorded commands no live command has matched yet."""
    scheduled: int
    """Events waiting for their time."""


class Replayer:
    """Plays a recorded connector on ``url`` (consuming ``queue``); use ``async with``.

    ``trace`` is a path or a read :class:`Trace`.  ``speed`` divides every recorded delay
    (2.0 plays twice as fast).  ``unanswered`` is the error code for a command the trace
    cannot answer, or None for silence.  ``connection_id_base`` is the first live connection id
    (default: one above the largest numeric id of the trace, so live and recorded ids never
    coincide).  ``transport`` replaces ``url``; ``transport_options`` go to ``open_transport``.
    """

    def __init__(
        self,
        trace: Trace | str | os.PathLike[str],
        url: str = "memory://",
        *,
        queue: str = "Connector1",
        speed: float = 1.0,
        unanswered: str | None = DEFAULT_UNANSWERED,
        connection_id_base: int | None = None,
        transport: Transport | None = None,
        **transport_options: Any,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, not {speed!r}")
        if unanswered is not None:
            encode_event(ErrorEvent("x", unanswered))  # refuse an injecting code now
        self.trace = trace if isinstance(trace, Trace) else read_trace(trace)
        self.plan: TracePlan = plan_trace(self.trace)
        self.speed = speed
        self.unanswered = unanswered
        self._url = url
        self._queue = queue_destination(queue)
        self._transport = transport
        self._transport_options = transport_options
        self._queues: dict[tuple[str, str], deque[CommandPlan]] = {}
        for plan in self.plan.commands:
            self._queues.setdefault(plan.key, deque()).append(plan)
        self._last_keepalive: CommandPlan | None = None
        self._remap = Remap(self.plan.destinations)
        self._allocate_connection_ids(connection_id_base)
        self._heap: list[tuple[float, int, str, str, str | None, bool]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._sender: asyncio.Task[None] | None = None
        self._subscription: str | None = None
        self._started_at: float | None = None
        self._horizon = 0.0
        self._live_topics: dict[str, None] = {}
        self.unanswered_commands: deque[str] = deque(maxlen=100)
        """The most recent commands the trace could not answer (JMSType), for reports."""
        self._counts = dict.fromkeys(
            (
                "received",
                "answered",
                "unanswered",
                "repeated",
                "malformed",
                "sent",
                "unsolicited",
                "unroutable",
                "dropped",
            ),
            0,
        )

    def _allocate_connection_ids(self, base: int | None) -> None:
        numeric = [int(c) for c in self.plan.connection_ids if c.isdigit()]
        start = base if base is not None else (max(numeric) + 1 if numeric else 1)
        fresh = itertools.count(start)
        for recorded in self.plan.connection_ids:
            live = str(next(fresh)) if recorded.isdigit() else f"{recorded}-r{next(fresh)}"
            self._remap.learn(recorded, live)

    def __repr__(self) -> str:
        where = self._transport.display_url if self._transport else self._url
        return (
            f"Replayer({where!r}, commands={len(self.plan.commands)}, speed={self.speed:g}, "
            f"answered={self._counts['answered']}, unanswered={self._counts['unanswered']})"
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Replayer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect and start consuming the command queue."""
        if self._sender is not None:
            return
        if self._transport is None:
            self._transport = open_transport(self._url, **self._transport_options)
        if not self._transport.connected:
            await self._transport.connect()
        self._sender = asyncio.get_running_loop().create_task(
            self._send_loop(), name="cucmconn-replay-sender"
        )
        self._subscription = await self._transport.subscribe(self._queue, self._on_command)
        log.info("replaying %d command(s) on %s", len(self.plan.commands), self.display_url)

    async def stop(self) -> None:
        """Stop consuming, drop what is still scheduled, disconnect (idempotent)."""
        sender, self._sender = self._sender, None
        if sender is None:
            return
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        transport = self._transport
        if transport is not None:
            if self._subscription is not None and transport.connected:
                with contextlib.suppress(Exception):
                    await transport.unsubscribe(self._subscription)
            await transport.close()

    @property
    def display_url(self) -> str:
        """The broker URL without credentials."""
        return self._transport.display_url if self._transport else self._url

    async def drain(self) -> None:
        """Wait until every event scheduled so far has been sent."""
        await self._idle.wait()

    def stats(self) -> ReplayerStats:
        """A snapshot of the counters and of what of the trace is left."""
        c = self._counts
        return ReplayerStats(
            commands_received=c["received"],
            commands_answered=c["answered"],
            commands_unanswered=c["unanswered"],
            keepalives_repeated=c["repeated"],
            commands_malformed=c["malformed"],
            events_sent=c["sent"],
            unsolicited_sent=c["unsolicited"],
            events_unroutable=c["unroutable"],
            events_dropped=c["dropped"],
            commands_left=sum(len(q) for q in self._queues.values()),
            scheduled=len(self._heap),
        )

    # -- commands in (the transport's handler: sync, must never raise) ---------------------

    def _on_command(self, message: Message) -> None:
        try:
            self._handle(message)
        except Exception:
            log.error("replay: internal error on a command", exc_info=True)

    def _handle(self, message: Message) -> None:
        self._counts["received"] += 1
        try:
            name, target, args = parse_command(message.jms_type, message.text())
        except ProtocolError as exc:
            self._counts["malformed"] += 1
            log.warning("replay: malformed command ignored: %s", exc)
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._started_at is None:
            self._started_at = now
            first = self.plan.commands[0].record.wall if self.plan.commands else time.time()
            self._remap.shift_seconds = round(time.time() - first)
            for planned in self.plan.leading:
                self._schedule_unsolicited(now, planned)
        reply_to = message.reply_to
        if reply_to is not None:
            self._live_topics.setdefault(reply_to, None)
        plan = self._match(name, target)
        if plan is None:
            self._unanswerable(message, target, reply_to)
            return
        self._counts["answered"] += 1
        self._learn(plan, target, args, reply_to)
        # In recorded order: the answers, and the unsolicited events sent before the next
        # command, are one burst of a connector that runs commands one at a time; nothing of a
        # later command's burst overtakes it, whatever the live timing.  Later unsolicited
        # events (a customer calling a while after) keep their own offsets.
        burst = sorted(
            [(p.record.seq, p, True) for p in plan.answers]
            + [(p.record.seq, p, False) for p in plan.unsolicited],
            key=lambda item: item[0],
        )
        for _, planned, answer in burst:
            if not answer:
                self._schedule_unsolicited(now, planned)
                continue
            dest = self._route(planned.record.dest, reply_to)
            if dest is None:
                self._counts["unroutable"] += 1
                continue
            due = max(now + planned.delay / self.speed, self._horizon)
            self._horizon = due
            self._push(due, dest, planned, message.correlation_id)

    def _match(self, name: str, target: str) -> CommandPlan | None:
        keepalive = name in KEEPALIVE
        waiting = self._queues.get(command_key(name, target))
        if waiting:
            plan = waiting.popleft()
            if keepalive:
                self._last_keepalive = plan
            return plan
        if keepalive and self._last_keepalive is not None:
            self._counts["repeated"] += 1
            return self._last_keepalive
        return None

    def _learn(
        self, plan: CommandPlan, target: str, args: tuple[str, ...], reply_to: str | None
    ) -> None:
        if plan.targets_destination:
            self._remap.learn(plan.target, target)
        if plan.name == "Login" and plan.args and args:
            self._remap.learn(plan.args[0], args[0])
        recorded = plan.record.reply_to
        if recorded and reply_to:
            self._remap.learn(recorded, reply_to)

    def _route(self, recorded: str, reply_to: str | None) -> str | None:
        if self._remap.known(recorded):
            return self._remap.live(recorded)
        if reply_to is not None:
            return reply_to
        if len(self._live_topics) == 1:
            return next(iter(self._live_topics))
        return None

    def _schedule_unsolicited(self, now: float, planned: PlannedEvent) -> None:
        dest = self._route(planned.record.dest, None)
        if dest is None:
            self._counts["unroutable"] += 1
            return
        due = now + planned.delay / self.speed
        if planned.before_next:  # part of its anchor's burst: later answers wait for it too
            due = max(due, self._horizon)
            self._horizon = due
        self._push(due, dest, planned, None, unsolicited=True)

    def _unanswerable(self, message: Message, target: str, reply_to: str | None) -> None:
        self._counts["unanswered"] += 1
        self.unanswered_commands.append(message.jms_type)
        loud = self._counts["unanswered"] <= _LOGGED_UNANSWERED
        level = logging.WARNING if loud else logging.DEBUG
        log.log(
            level,
            "replay: the trace has no answer for %s (%s)",
            message.jms_type,
            f"answering {self.unanswered}" if self.unanswered else "silence",
        )
        if self.unanswered is None or reply_to is None:
            return
        body = encode_event(ErrorEvent(target, self.unanswered), self.plan.event_format)
        self._push_raw(asyncio.get_running_loop().time(), reply_to, body, message.correlation_id)

    # -- events out: one task sends them in due order --------------------------------------

    def _push(
        self,
        due: float,
        dest: str,
        planned: PlannedEvent,
        correlation_id: str | None,
        *,
        unsolicited: bool = False,
    ) -> None:
        record = planned.record
        text = record.body
        if record.body_b64 is not None:
            text = record.raw_body().decode("utf-8", "replace")
        self._push_raw(due, dest, self._remap.body(text), correlation_id, unsolicited)

    def _push_raw(
        self, due: float, dest: str, body: str, cid: str | None, unsolicited: bool = False
    ) -> None:
        if len(self._heap) >= MAX_SCHEDULED:
            self._counts["dropped"] += 1
            return
        heapq.heappush(self._heap, (due, next(self._seq), dest, body, cid, unsolicited))
        self._idle.clear()
        self._wake.set()

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        heap = self._heap
        while True:
            if not heap:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            delay = heap[0][0] - loop.time()
            if delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            _, _, dest, body, cid, unsolicited = heapq.heappop(heap)
            assert self._transport is not None
            try:
                await self._transport.send(dest, body, correlation_id=cid)
            except Exception as exc:  # a lost link: count it, keep replaying
                self._counts["dropped"] += 1
                log.warning("replay: could not send an event to %s: %s", dest, exc)
                continue
            self._counts["sent"] += 1
            if unsolicited:
                self._counts["unsolicited"] += 1
