"""The pending-command table: correlation id -> future, deadlines, and late-reply accounting.

This is the part comparable clients get wrong (docs/architecture.md).  Here every command has a
fresh id and a deadline, and a reply is only ever matched by id (or, for a connector that drops
the id, by agent and expected event type).  Deadlines live in 50 ms time buckets swept by ONE
task, so a command costs a dict entry, not a timer handle, and finishing early removes it in
O(1).  Ids of commands that failed (timeout, cancel, lost link) are remembered in a bounded set
so their replies are counted as "late" and dropped instead of being confused with anything else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

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
from ..errors import CommandError, CommandTimeout, ServiceUnavailable
from .observe import EventFate, Outcome
from .stats import StatsCounters

__all__ = [
    "DEFAULT_EXPECTATIONS",
    "PROBES",
    "Expect",
    "FinishHook",
    "Pending",
    "PendingTable",
    "owner_of",
]

log = logging.getLogger("cucmconn.client")

BUCKET_SECONDS = 0.05
"""Deadline resolution: a command times out between ``ttl`` and ``ttl + 2 * BUCKET_SECONDS``."""

FINISHED_MEMORY = 65_536
"""How many finished command ids are remembered to classify their stragglers."""


def _agent_of(event: Any, destination: str) -> str | None:
    agent_id: str | None = event.agent_id
    return agent_id


_OWNERS: dict[type, Callable[[Any, str], str | None]] = {
    SystemStatus: lambda event, destination: destination,
    ErrorEvent: lambda event, destination: event.target,
    AgentInfo: _agent_of,
    AgentState: _agent_of,
    DialogState: _agent_of,
    InboundCall: _agent_of,
    TerminalStatus: _agent_of,
}


def owner_of(event: Event, destination: str) -> str | None:
    """Who an event belongs to: the agent id it concerns, ``destination`` (the client's own
    topic) for the connector's status, or None for an event nobody owns (``UnknownEvent``).

    The one place that decides it: the pending table's fallback and the agent trackers both
    route by this key.  An error's owner is its ``<Error_For>`` (an agent, or the destination
    for a probe's error).
    """
    owner = _OWNERS.get(type(event))
    return owner(event, destination) if owner is not None else None


class Expect(NamedTuple):
    """One event that may answer a command when the connector sent no correlation id."""

    kind: type[Event]
    state: str | None = None
    cid_arg: int | None = None
    """Index of the command argument that must equal the event's connection id, if any."""


_DIALOG = DialogState
DEFAULT_EXPECTATIONS: Mapping[str, tuple[Expect, ...]] = {
    **{probe: (Expect(SystemStatus),) for probe in sorted(PROBES)},
    "Login": (Expect(AgentInfo), Expect(AgentState)),
    "Logout": (Expect(AgentState, "LOGOUT"),),
    "GetState": (Expect(AgentState),),
    "MakeCall": (Expect(_DIALOG, "INITIATED"),),
    "AnswerCall": (Expect(_DIALOG, "ACTIVE", 0), Expect(InboundCall, "ACTIVE", 0)),
    "ReleaseCall": (Expect(_DIALOG, "DROPPED", 0),),
    "HoldCall": (Expect(_DIALOG, "HELD", 0),),
    "RetrieveCall": (Expect(_DIALOG, "ACTIVE", 0),),
    "Transfer_sst": (Expect(_DIALOG, "DROPPED", 1),),
    "ConsultCall": (Expect(_DIALOG, "INITIATED"),),
    "TransferCall": (Expect(_DIALOG, "DROPPED"),),
    "Conferencecall": (Expect(_DIALOG, "ACTIVE"),),
}
"""The contract's "first correlated event" per command, used only for id-less events."""


class Pending:
    """One command awaiting its first correlated event."""

    __slots__ = ("args", "bucket", "command", "correlation_id", "future", "started", "target")

    def __init__(
        self,
        correlation_id: str,
        command: str,
        target: str,
        args: tuple[str, ...],
        future: asyncio.Future[Event],
        started: float,
        bucket: int,
    ) -> None:
        self.correlation_id = correlation_id
        self.command = command
        self.target = target
        self.args = args
        self.future = future
        self.started = started
        self.bucket = bucket

    def __repr__(self) -> str:  # args may be call data: name the command only
        return f"Pending({self.command}#{self.target}, id={self.correlation_id})"


def _matches(expect: Expect, entry: Pending, event: Event) -> bool:
    if not isinstance(event, expect.kind):
        return False
    state = getattr(event, "state", None)
    if expect.state is not None and (state is None or state.upper() != expect.state):
        return False
    if expect.cid_arg is not None and expect.cid_arg < len(entry.args):
        cid = getattr(event, "connection_id", None)
        return cid is None or cid == entry.args[expect.cid_arg]
    return True


FinishHook = Callable[[Pending, Outcome, "str | None"], None]
"""Called once per command as it ends: the entry, its outcome, the error code for ``error``."""


class PendingTable:
    """Every command in flight on one client, indexed by id, by target and by deadline bucket.

    Every command ends here exactly once (:meth:`_finish`), which counts it by outcome in the
    stats and tells ``on_finish`` (the client's observers) when one is set.
    """

    def __init__(
        self,
        stats: StatsCounters,
        expectations: Mapping[str, tuple[Expect, ...]] | None = DEFAULT_EXPECTATIONS,
        *,
        only_until_echoed: bool = False,
    ) -> None:
        self._stats = stats
        self._expectations = expectations
        # "auto": a connector that has echoed one correlation id echoes them all, so after that an
        # id-less event is someone else's (another party's update, a forged error) and must not
        # resolve one of our commands.
        self._only_until_echoed = only_until_echoed
        self.connector_echoes_ids = False
        self.on_finish: FinishHook | None = None
        """Set while someone observes the client; None costs one test per finished command."""
        self._by_id: dict[str, Pending] = {}
        self._by_target: dict[str, list[Pending]] = {}
        self._buckets: dict[int, dict[str, Pending]] = {}
        self._swept = 0  # every bucket below this one has been expired
        # id -> failed?, bounded: the oldest go first.  The order lives in a deque because
        # ``del d[next(iter(d))]`` rescans the dict's deleted slots each time (quadratic).
        self._finished: dict[str, bool] = {}
        self._finished_order: deque[str] = deque()
        self._nonempty = asyncio.Event()

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def recognises_probe_answers(self) -> bool:
        """An answer to our Hello can be told from an unsolicited status: the connector echoes
        correlation ids, or the id-less fallback matches statuses to a pending Hello."""
        if self.connector_echoes_ids:
            return True
        expectations = self._expectations
        return expectations is not None and all(probe in expectations for probe in PROBES)

    def __iter__(self) -> Iterator[Pending]:
        return iter(list(self._by_id.values()))

    # -- adding and removing -----------------------------------------------------------------

    def add(
        self,
        correlation_id: str,
        command: str,
        target: str,
        args: tuple[str, ...],
        deadline: float,
        now: float,
    ) -> Pending:
        """Register a command with its absolute ``deadline`` (loop time); returns its entry."""
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        bucket = int(deadline / BUCKET_SECONDS)
        started = time.perf_counter()  # uvloop's clock ticks in whole ms: too coarse here
        entry = Pending(correlation_id, command, target, args, future, started, bucket)
        if not self._by_id:
            self._swept = int(now / BUCKET_SECONDS)
            self._nonempty.set()
        self._by_id[correlation_id] = entry
        self._by_target.setdefault(target, []).append(entry)
        self._buckets.setdefault(bucket, {})[correlation_id] = entry
        return entry

    def _finish(self, entry: Pending, outcome: Outcome, code: str | None = None) -> bool:
        """Take ``entry`` out of the table and count its outcome; False if it had already ended."""
        if self._by_id.pop(entry.correlation_id, None) is None:
            return False
        same_target = self._by_target[entry.target]
        same_target.remove(entry)
        if not same_target:
            del self._by_target[entry.target]
        bucket = self._buckets.get(entry.bucket)
        if bucket is not None:
            bucket.pop(entry.correlation_id, None)
            if not bucket:
                del self._buckets[entry.bucket]
        self._finished[entry.correlation_id] = outcome != "answered"
        order = self._finished_order
        order.append(entry.correlation_id)
        if len(order) > FINISHED_MEMORY:
            self._finished.pop(order.popleft(), None)
        self._stats.count_outcome(outcome)
        if self.on_finish is not None:
            self.on_finish(entry, outcome, code)
        return True

    def fail(self, entry: Pending, exc: BaseException, outcome: Outcome) -> None:
        """End ``entry`` with ``exc``; a reply that still comes is then "late"."""
        self._finish(entry, outcome)
        if not entry.future.done():
            entry.future.set_exception(exc)

    def abandon(self, entry: Pending, outcome: Outcome = "cancelled") -> None:
        """The caller stopped waiting (or the send failed): forget it; its reply reaches no one."""
        self._finish(entry, outcome)

    def fail_all(
        self, make_exc: Callable[[Pending], BaseException], outcome: Outcome = "connection_lost"
    ) -> int:
        """End every command in flight with ``make_exc(entry)``; returns how many."""
        entries = list(self._by_id.values())
        for entry in entries:
            self.fail(entry, make_exc(entry), outcome)
        return len(entries)

    # -- delivering events --------------------------------------------------------------------

    def resolve(self, event: Event, correlation_id: str | None, owner: str | None) -> EventFate:
        """The one way into the table for a received event.

        With a correlation id, the command it names (and nothing else); without one, the
        oldest command on ``owner`` that expects this event (when the fallback is on).  Says
        what became of the event: ``resolved``, ``late``, ``unmatched`` or ``update``.
        """
        if correlation_id:
            entry = self._by_id.get(correlation_id)
            if entry is not None:
                self.connector_echoes_ids = True
                self._settle(entry, event)
                return "resolved"
            failed = self._finished.get(correlation_id)
            if failed is None:
                self._stats.unmatched += 1
                return "unmatched"
            self.connector_echoes_ids = True
            if failed:
                self._stats.late += 1
                log.debug("late event for command %s dropped", correlation_id)
                return "late"
            return "update"  # a follow-up of a command that was already answered
        if (
            owner is None
            or self._expectations is None
            or (self._only_until_echoed and self.connector_echoes_ids)
        ):
            return "update"
        for entry in self._by_target.get(owner, ()):
            if isinstance(event, ErrorEvent) or any(
                _matches(expect, entry, event)
                for expect in self._expectations.get(entry.command, ())
            ):
                self._settle(entry, event)
                return "resolved"
        return "update"

    def _settle(self, entry: Pending, event: Event) -> None:
        self._stats.latency.record((time.perf_counter() - entry.started) * 1000.0)
        if isinstance(event, ErrorEvent):
            self._finish(entry, "error", event.code)
            exc: BaseException = CommandError(event.code, event.target, event.message)
        elif (
            isinstance(event, SystemStatus) and not event.in_service and entry.command not in PROBES
        ):
            self._finish(entry, "unavailable")
            exc = ServiceUnavailable(f"{entry.command}#{entry.target}: connector is OUT_OF_SERVICE")
        else:
            self._finish(entry, "answered")
            if not entry.future.done():
                entry.future.set_result(event)
            return
        if not entry.future.done():
            entry.future.set_exception(exc)

    # -- deadlines ----------------------------------------------------------------------------

    def expire(self, now: float) -> int:
        """Fail every command whose deadline bucket has wholly passed; returns how many."""
        limit = int(now / BUCKET_SECONDS)
        if limit - self._swept > len(self._buckets):
            due = sorted(b for b in self._buckets if b < limit)
        else:
            due = [b for b in range(self._swept, limit) if b in self._buckets]
        self._swept = max(self._swept, limit)
        expired = 0
        for bucket in due:
            for entry in list(self._buckets.get(bucket, {}).values()):
                expired += 1
                self.fail(
                    entry,
                    CommandTimeout(
                        f"{entry.command}#{entry.target}: no answer within its TTL "
                        f"(correlation id {entry.correlation_id})"
                    ),
                    "timeout",
                )
        return expired

    async def run_sweeper(self) -> None:
        """The one task that enforces every deadline; sleeps while nothing is in flight."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._by_id:
                self._nonempty.clear()
                await self._nonempty.wait()
            await asyncio.sleep(BUCKET_SECONDS)
            self.expire(loop.time())
