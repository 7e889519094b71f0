"""The asyncio client: one broker session (two links on native STOMP), one reply topic, many agents.

nats-style request/reply over JMS: one subscription on ``/topic/<destination>``, a table of
pending commands keyed by correlation id (``correlation.py``), and bounded streams for
everything else (why it is ours: docs/architecture.md).  The rules this module keeps:

* every command ends: with its first correlated event, ``CommandError``, ``CommandTimeout``,
  ``ServiceUnavailable`` or ``ConnectionLost``; nothing is silently re-sent;
* a reply is matched by id only (or by agent + expected event when the id is missing), so a
  cancelled or timed-out command's reply is counted as late and reaches no one;
* nothing grows with traffic: in-flight commands are bounded, streams are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import os
import re
import socket
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Literal

from ..codec import MAX_EVENT_BODY, canonical_command, decode_event, encode_command
from ..codec.events import ErrorEvent, Event, SystemStatus
from ..errors import (
    CommandTimeout,
    ConnectionLost,
    ConnectorError,
    ServiceUnavailable,
    TransportError,
)
from ..trace.recorder import RecordingTransport, TraceRecorder
from ..transport import Message, Transport, open_transport, redact_url, split_by_default, topic
from ..transport import queue as queue_destination
from ..transport.base import correlation_id_of
from .agent import AgentSession
from .correlation import (
    BUCKET_SECONDS,
    DEFAULT_EXPECTATIONS,
    Expect,
    Pending,
    PendingTable,
    owner_of,
)
from .observe import ClientObserver, CommandFinished, Observers, Outcome
from .restarts import ADVISORY_PREFIX, ConnectorIdentity, parse_advisory
from .slots import DeadlineWheel, Slots
from .stats import ClientStats, LatencyHistogram, StatsCounters
from .streams import EventsMayBeMissed, EventStream, Overflow, StreamSet
from .supervisor import RESTART_BEAT, Supervisor
from .tracker import AgentTracker

__all__ = ["Client", "ResyncCallback"]

log = logging.getLogger("cucmconn.client")

ResyncCallback = Callable[["Client"], "Awaitable[None] | None"]
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")

CONTRADICTING_ERRORS = frozenset({"CF_INVALID_OBJECT_STATE", "USER_NOT_FOUND"})
"""Error codes that, for an agent believed logged in, suggest the connector sees it otherwise
(it restarted, or CUCM logged the agent out): the agent is re-read with GetState."""

RECHECK_SPACING = 1.0
"""Seconds between two re-reads of one agent prompted by contradicting errors."""


def default_destination() -> str:
    """``cucmconn-<host>-<uuid8>``: unique per client instance, as the guide asks."""
    host = _NAME_UNSAFE.sub("-", socket.gethostname())[:40].strip("-") or "host"
    return f"cucmconn-{host}-{uuid.uuid4().hex[:8]}"


def _consume(future: asyncio.Future[Event]) -> None:
    """Done-callback for commands nobody awaits (probes): mark their outcome as seen."""
    if not future.cancelled():
        future.exception()


class _Listener:
    """The transport's listener: forwards to the client's handlers without keeping it alive."""

    __slots__ = ("_lost", "_restored")

    def __init__(
        self, lost: Callable[[BaseException | None], None], restored: Callable[[], None]
    ) -> None:
        self._lost = weakref.WeakMethod(lost)
        self._restored = weakref.WeakMethod(restored)

    def connection_lost(self, exc: BaseException | None) -> None:
        handler = self._lost()
        if handler is not None:
            handler(exc)

    def connection_restored(self) -> None:
        handler = self._restored()
        if handler is not None:
            handler()


class Client:
    """A connection to the CUCM Connector through a broker; use ``async with``.

    ``url`` (or a ready ``transport``) names the broker; ``client_destination`` is the topic the
    connector answers on (unique per client instance; generated when omitted).  ``ttl`` is every
    command's deadline and JMS expiry; ``connect_timeout`` the Hello period (and a Beat's
    deadline); ``handshake_timeout`` bounds ``connect()``; ``keepalive`` the Beat period.
    ``max_in_flight`` bounds commands awaiting answers (later ones queue in order); each agent
    has at most one.  ``agent_buffer`` / ``client_buffer`` bound each stream and ``overflow``
    says what a full stream does: ``"drop_oldest"`` (counted in ``stats().dropped_events``) or
    ``"raise"`` (the reader gets SlowConsumer).  ``wait_for_service`` makes commands wait (up to
    their TTL) for IN_SERVICE instead of failing fast.  ``correlate_fallback`` matches events
    without a correlation id by agent and expected event type (a mapping replaces the table;
    False routes them to streams only); the default ``"auto"`` does so only until the connector
    has echoed a correlation id once, after which an id-less event is another party's update
    (or a forgery) and never resolves a command.  ``on_resync(client)`` runs after a reconnect,
    or after the connector comes back IN_SERVICE from an outage, once every logged-in agent was
    re-read with GetState (streams get an ``EventsMayBeMissed`` notice first).  ``record`` (a
    path, or a ``TraceRecorder`` the caller closes) writes every message of the link to a trace
    (docs/trace-format.md), off the hot path.
    ``max_event_body`` is the largest event body accepted (bytes, default 64 KiB); a longer one
    is dropped and counted in ``stats().malformed``, like any undecodable body.  Events for an
    agent without a session are counted in ``stats().unknown_agent``.  Resyncs (after a
    reconnect, an outage or a detected connector restart) coalesce: one runs at a time, at most
    one starts per ``resync_interval`` seconds, sending at most ``resync_rate`` GetState per
    second.  ``advisories`` subscribes to ActiveMQ's consumer advisories of the command queue to
    see a connector restart at once; without them (turned off, or refused by ACLs) the answers'
    ``message-id`` and contradicting errors reveal it, and the client Beats at least every
    ``RESTART_BEAT`` (1 s) so that an idle one sees it within about a second too.  An
    unsolicited ``System#...`` status is confirmed with one Hello before it changes anything;
    with a ``failover:`` URL, a broker where no connector answers Hello is left for the next
    one.  Observers (:meth:`add_observer`) see every command, event and state change.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        transport: Transport | None = None,
        client_destination: str | None = None,
        queue: str = "Connector1",
        ttl: float = 10.0,
        connect_timeout: float = 3.0,
        handshake_timeout: float = 30.0,
        keepalive: float = 30.0,
        max_in_flight: int = 1024,
        agent_buffer: int = 1000,
        client_buffer: int = 10_000,
        overflow: Overflow = "drop_oldest",
        wait_for_service: bool = False,
        correlate_fallback: bool | Literal["auto"] | Mapping[str, tuple[Expect, ...]] = "auto",
        transport_options: Mapping[str, Any] | None = None,
        on_resync: ResyncCallback | None = None,
        record: str | os.PathLike[str] | TraceRecorder | None = None,
        max_event_body: int = MAX_EVENT_BODY,
        resync_interval: float = 2.0,
        resync_rate: float = 5000.0,
        advisories: bool = True,
    ) -> None:
        if (url is None) == (transport is None):
            raise ValueError("give exactly one of url or transport")
        for name, value in (
            ("ttl", ttl),
            ("connect_timeout", connect_timeout),
            ("handshake_timeout", handshake_timeout),
            ("keepalive", keepalive),
            ("resync_rate", resync_rate),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, not {value!r}")
        if not resync_interval >= 0:
            raise ValueError(f"resync_interval must be >= 0, not {resync_interval!r}")
        if max_event_body < 1:
            raise ValueError(f"max_event_body must be >= 1, not {max_event_body!r}")
        if max_in_flight < 1 or agent_buffer < 1 or client_buffer < 1:
            raise ValueError("max_in_flight, agent_buffer and client_buffer must be >= 1")
        if overflow not in ("drop_oldest", "raise"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'raise', not {overflow!r}")
        self.destination = client_destination or default_destination()
        encode_command("Hello", self.destination)  # refuse an injecting destination now
        self._display_url = transport.display_url if transport else redact_url(url or "")
        self._url = url
        self._transport = transport
        self._owns_transport = transport is None
        self._transport_options = dict(transport_options or {})
        self.queue = queue
        self._queue_dest = queue_destination(queue)
        self._reply_to = topic(self.destination)
        self.ttl = ttl
        self.connect_timeout = connect_timeout
        self.handshake_timeout = handshake_timeout
        self.keepalive = keepalive
        self.max_in_flight = max_in_flight
        self.agent_buffer = agent_buffer
        self.client_buffer = client_buffer
        self.overflow: Overflow = overflow
        self.wait_for_service = wait_for_service
        self.on_resync = on_resync
        self.max_event_body = max_event_body
        self.advisories = advisories
        if correlate_fallback is True or correlate_fallback == "auto":
            expectations: Mapping[str, tuple[Expect, ...]] | None = DEFAULT_EXPECTATIONS
        elif correlate_fallback is False:
            expectations = None
        else:
            expectations = correlate_fallback
        self._stats = StatsCounters()
        self._table = PendingTable(
            self._stats, expectations, only_until_echoed=correlate_fallback == "auto"
        )
        self._observers = Observers()
        self._slots = Slots(max_in_flight)
        self._wheel = DeadlineWheel(BUCKET_SECONDS)
        self._agents: dict[str, AgentSession] = {}
        self._trackers: dict[str, AgentTracker] = {}
        self._streams = StreamSet()
        self._ids = itertools.count(1)
        self._id_prefix = uuid.uuid4().hex[:12]
        self._subscription: str | None = None
        self._advisory_subscription: str | None = None
        self._identity = ConnectorIdentity()
        self._rechecks: dict[str, float] = {}
        self._connected = False
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._throttled = False
        self._owns_recorder = record is not None and not isinstance(record, TraceRecorder)
        self._recorder: TraceRecorder | None = (
            record if record is None or isinstance(record, TraceRecorder) else TraceRecorder(record)
        )
        self._supervisor = Supervisor(
            probe=self._probe,
            broker_took=self._broker_took,
            logged_in=self._logged_in_agents,
            refresh=self._refresh_agent,
            announce=self._announce,
            after_resync=self._after_resync,
            service_changed=self._service_changed,
            flow_control_held=self._flow_control_held,
            write_blocked=self._write_blocked,
            switch_broker=self._switch_broker,
            can_confirm=self._recognises_probe_answers,
            spawn=self._spawn,
            stats=self._stats,
            connect_timeout=connect_timeout,
            keepalive=keepalive,
            handshake_timeout=handshake_timeout,
            max_parallel=max_in_flight,
            resync_interval=resync_interval,
            resync_rate=resync_rate,
            where=f"{self._display_url} queue {queue!r}",
        )

    def __repr__(self) -> str:
        return (
            f"Client({self._display_url!r}, destination={self.destination!r}, "
            f"in_service={self._supervisor.in_service}, in_flight={len(self._table)}, "
            f"agents={len(self._agents)})"
        )

    # -- public state ---------------------------------------------------------------------------

    @property
    def display_url(self) -> str:
        """The broker URL with any credentials removed."""
        return self._display_url

    @property
    def in_service(self) -> bool:
        """True while connected and the connector last said IN_SERVICE."""
        return self._supervisor.ready

    @property
    def connected(self) -> bool:
        """True while the transport's link is up."""
        return self._supervisor.link_up

    @property
    def transport(self) -> Transport | None:
        """The transport in use (None before ``connect()`` when built from a URL)."""
        return self._transport

    @property
    def agents(self) -> Mapping[str, AgentSession]:
        """Extension -> session, for every agent this client has a session for (read-only)."""
        return MappingProxyType(self._agents)

    def stats(self, *, reset_latency: bool = False) -> ClientStats:
        """A snapshot of the counters; ``reset_latency`` starts a new latency window after it."""
        snapshot = ClientStats.snapshot(self._stats, len(self._table), self._flow_control_held())
        if reset_latency:
            self._stats.latency = LatencyHistogram()
        return snapshot

    async def wait_in_service(self) -> None:
        """Return once the connector is IN_SERVICE (bound it with ``asyncio.timeout``).

        Raises ConnectionLost if the client is closed meanwhile.
        """
        await self._supervisor.wait_in_service()

    def agent(self, extension: str) -> AgentSession:
        """The session for ``extension`` (the same object every time)."""
        session = self._agents.get(extension)
        if session is None:
            if not isinstance(extension, str):
                raise TypeError(f"extension must be str, not {type(extension).__name__}")
            encode_command("GetState", extension)  # refuse an injecting extension now
            tracker = AgentTracker(extension, self.agent_buffer, self.overflow, self._stats)
            self._trackers[extension] = tracker
            session = self._agents[extension] = AgentSession(self, tracker)
        return session

    def remove_agent(self, extension: str) -> None:
        """Forget a session (its streams end); events for it then only reach ``events()``."""
        self._agents.pop(extension, None)
        tracker = self._trackers.pop(extension, None)
        if tracker is not None:
            tracker.close()

    def events(self, maxlen: int | None = None) -> EventStream:
        """A new bounded stream of every event on this client's topic, from now on."""
        stream = EventStream(maxlen or self.client_buffer, self.overflow, self._stats)
        self._streams.add(stream)
        return stream

    # -- observers ------------------------------------------------------------------------------

    def add_observer(self, observer: ClientObserver) -> None:
        """Attach an observer (see :mod:`cucmconn.client.observe`) for metrics or tracing.

        Its callbacks run synchronously on the loop for every command issued and finished,
        every event received, each reconnect and each service change.
        """
        self._observers.add(observer)
        self._table.on_finish = self._command_finished

    def remove_observer(self, observer: ClientObserver) -> None:
        """Detach an observer added with :meth:`add_observer`; ValueError if it was not."""
        self._observers.remove(observer)
        if not self._observers:
            self._table.on_finish = None

    def _command_finished(self, entry: Pending, outcome: Outcome, code: str | None) -> None:
        self._observers.command_finished(
            CommandFinished(
                entry.command,
                entry.target,
                entry.correlation_id,
                outcome,
                time.perf_counter() - entry.started,
                code,
            )
        )

    def _service_changed(self, up: bool, why: str) -> None:
        if self._observers:
            self._observers.service_changed(up, why)

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Subscribe to our topic, then Hello until IN_SERVICE (``handshake_timeout`` overall)."""
        if self._connected:
            return
        if self._closed:
            raise ConnectorError("client is closed; make a new one")
        if self._transport is None:
            url = self._url or ""
            self._transport = open_transport(url, **split_by_default(url, self._transport_options))
            self._display_url = self._transport.display_url
        if self._recorder is not None and not isinstance(self._transport, RecordingTransport):
            self._transport = RecordingTransport(self._transport, self._recorder)
        transport = self._transport
        try:
            if not transport.connected:
                await transport.connect()
            transport.set_listener(
                _Listener(self._on_connection_lost, self._on_connection_restored)
            )
            self._subscription = await transport.subscribe(self._reply_to, self._on_message)
            if self.advisories:
                await self._subscribe_advisories(transport)
            if self._advisory_subscription is None:  # off, or refused: Beat more often
                self._supervisor.restart_beat = RESTART_BEAT
            if transport.connected:  # else the link dropped meanwhile: restored() opens it
                self._supervisor.link_opened()
            self._connected = True
            self._spawn(self._table.run_sweeper(), "sweeper")
            await self._supervisor.handshake()
        except BaseException:
            await self.close()
            raise
        self._spawn(self._supervisor.run(), "keepalive")
        log.info("connected to %s as %s", self._display_url, self.destination)

    async def close(self) -> None:
        """Stop, fail whatever is in flight with ConnectionLost, end every stream; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._supervisor.close()
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._table.fail_all(lambda e: ConnectionLost(f"{e.command}#{e.target}: client closed"))
        for tracker in self._trackers.values():
            tracker.close()
        for stream in self._streams.streams():
            stream.close()
        transport = self._transport
        if transport is not None:
            transport.set_listener(None)
            for subscription in (self._subscription, self._advisory_subscription):
                if subscription is not None and transport.connected:
                    with contextlib.suppress(ConnectorError, OSError):
                        await transport.unsubscribe(subscription)
            if self._owns_transport:
                await transport.close()
        if self._owns_recorder and self._recorder is not None:
            self._recorder.close()
        self._connected = False

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            coro, name=f"cucmconn-{name}-{self.destination}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("client task %s failed", task.get_name(), exc_info=task.exception())

    # -- commands -------------------------------------------------------------------------------

    async def send(self, command: str, target: str, *args: str, ttl: float | None = None) -> Event:
        """Send any command and return its first correlated event.

        Raises CommandError (the connector's ``#Error#``), CommandTimeout, ServiceUnavailable or
        ConnectionLost; ValueError before anything is sent when a value would inject a field.
        Commands to an extension that has a session wait their turn behind that agent's previous
        command.  ``ttl`` counts from this call: time spent queued behind the agent's turn,
        ``max_in_flight`` or a link the broker throttles is part of it, and the command ends
        (with CommandTimeout at the latest) by then; a frame is never written after it.
        """
        jms_type, body = encode_command(command, target, *args)
        name = canonical_command(command)
        ttl = self.ttl if ttl is None else ttl
        if not ttl > 0:
            raise ValueError(f"ttl must be > 0, not {ttl!r}")
        loop = asyncio.get_running_loop()
        issued_at = loop.time()
        self._stats.issued += 1
        tracker = self._trackers.get(target)
        turn = tracker.turn if tracker is not None else None
        if turn is not None and not turn.try_acquire():
            await self._queue_at(turn, name, target, issued_at, ttl)
        try:  # one coroutine from here to the answer: this is every command's path
            if self._closed or not self._connected or not self._supervisor.ready:
                await self._wait_ready(name, target, issued_at, ttl)
            slots = self._slots
            if not slots.try_acquire():
                await self._queue_at(slots, name, target, issued_at, ttl)
            try:
                now = loop.time()
                entry = self._register(name, target, args, issued_at + ttl, now)
                await self._transmit(entry, jms_type, body, issued_at + ttl, now)
                try:
                    return await entry.future
                except asyncio.CancelledError:
                    self._table.abandon(entry)
                    raise
            finally:
                slots.release()
        finally:
            if turn is not None:
                turn.release()

    async def _queue_at(
        self, gate: Slots, name: str, target: str, issued_at: float, ttl: float
    ) -> None:
        """Wait for ``gate`` (an agent's turn, ``max_in_flight``), never past the deadline."""
        try:
            await gate.acquire(issued_at + ttl, self._wheel)
        except TimeoutError:
            self._stats.timed_out_unsent += 1
            self._ended_early(name, target, "timeout", issued_at)
            raise CommandTimeout(
                f"{name}#{target}: still queued behind earlier commands when its TTL "
                f"({ttl:g} s) ran out; never sent"
            ) from None
        except asyncio.CancelledError:
            self._ended_early(name, target, "cancelled", issued_at)
            raise

    async def _wait_ready(self, name: str, target: str, issued_at: float, ttl: float) -> None:
        if self._closed or not self._connected:
            self._ended_early(name, target, "connection_lost", issued_at)
            raise ConnectionLost(f"{name}#{target}: client is not connected")
        supervisor = self._supervisor
        if supervisor.ready:
            return
        if not self.wait_for_service:
            if not supervisor.link_up:
                self._ended_early(name, target, "connection_lost", issued_at)
                raise ConnectionLost(f"{name}#{target}: link down, the transport is reconnecting")
            self._ended_early(name, target, "unavailable", issued_at)
            raise ServiceUnavailable(f"{name}#{target}: connector is OUT_OF_SERVICE")
        try:
            async with asyncio.timeout_at(issued_at + ttl):
                await supervisor.wait_in_service()
        except TimeoutError:
            self._ended_early(name, target, "unavailable", issued_at)
            raise ServiceUnavailable(
                f"{name}#{target}: connector not IN_SERVICE within {ttl:g} s"
            ) from None
        except asyncio.CancelledError:
            self._ended_early(name, target, "cancelled", issued_at)
            raise
        except ConnectionLost:
            self._ended_early(name, target, "connection_lost", issued_at)
            raise

    def _ended_early(self, name: str, target: str, outcome: Outcome, issued_at: float) -> None:
        """Count a command that ended before it got an id (queued, link down, out of service)."""
        self._stats.count_outcome(outcome)
        if self._observers:
            duration = asyncio.get_running_loop().time() - issued_at
            self._observers.command_finished(CommandFinished(name, target, None, outcome, duration))

    def _register(
        self, name: str, target: str, args: tuple[str, ...], deadline: float, now: float
    ) -> Pending:
        """Give a command its correlation id and its place in the pending table (``now``:
        loop time, the caller's, which every command's path has at hand)."""
        cid = f"{self._id_prefix}-{next(self._ids):x}"
        entry = self._table.add(cid, name, target, args, deadline, now)
        if self._observers.active:
            self._observers.command_issued(name, target, cid)
        return entry

    async def _transmit(
        self, entry: Pending, jms_type: str, body: str, deadline: float, now: float
    ) -> None:
        """Write one command, never after ``deadline``: its JMS expiry is the same instant
        (``now``: loop time when the caller registered it, just before)."""
        transport = self._transport
        assert transport is not None
        remaining = deadline - now
        if remaining <= 0:  # queued in the client until its deadline: nothing to write
            error = CommandTimeout(f"{entry.command}#{entry.target}: TTL ran out before sending")
            self._stats.timed_out_unsent += 1
            self._table.fail(entry, error, "timeout")
            _consume(entry.future)  # the error is raised here; nobody awaits the future
            raise error
        try:
            await transport.send(
                self._queue_dest,
                body,
                jms_type=jms_type,
                correlation_id=entry.correlation_id,
                reply_to=self._reply_to,
                ttl=remaining,
                persistent=False,
                deadline=deadline,
            )
        except asyncio.CancelledError:
            self._table.abandon(entry)
            raise
        except TimeoutError as exc:
            # Nothing of the frame was written: the link stayed blocked (the broker's producer
            # flow control) until the command's deadline.
            self._stats.timed_out_unsent += 1
            self._note_throttled()
            error = CommandTimeout(
                f"{entry.command}#{entry.target}: not written within its TTL, the link to the "
                f"broker was blocked (flow control?); never sent"
            )
            self._table.fail(entry, error, "timeout")
            _consume(entry.future)
            raise error from exc
        except (TransportError, OSError) as exc:
            self._table.abandon(entry, "connection_lost")
            raise ConnectionLost(f"{entry.command}#{entry.target}: send failed: {exc}") from exc
        self._stats.sent += 1
        if self._throttled:
            self._check_throttle_over()
        log.debug("sent %s (id %s)", jms_type, entry.correlation_id)

    async def _probe(self, name: str, ttl: float) -> asyncio.Future[Event]:
        """Write a Hello/Beat; the answer acts through the supervisor, the future reports it.

        CommandTimeout when the link stayed blocked for ``ttl`` (the probe was never written).
        """
        jms_type, body = encode_command(name, self.destination)
        now = asyncio.get_running_loop().time()
        deadline = now + ttl
        self._stats.issued += 1
        entry = self._register(name, self.destination, (), deadline, now)
        entry.future.add_done_callback(_consume)
        await self._transmit(entry, jms_type, body, deadline, now)
        return entry.future

    async def _broker_took(self, within: float) -> bool:
        """The broker confirmed within ``within`` seconds that it has everything we sent."""
        transport = self._transport
        if transport is None:
            return False
        try:
            async with asyncio.timeout(within):
                await transport.flush()
        except (TimeoutError, ConnectorError):
            return False
        return True

    # -- flow control ---------------------------------------------------------------------------

    def _flow_control_held(self) -> float:
        """Seconds the transport spent with writing blocked by the broker (0 before connect)."""
        transport = self._transport
        return transport.flow_control_held if transport is not None else 0.0

    def _write_blocked(self) -> bool:
        transport = self._transport
        return transport is not None and transport.write_blocked

    def _note_throttled(self) -> None:
        """Log once per episode that the broker holds our writes (producer flow control)."""
        if not self._throttled:
            self._throttled = True
            self._stats.throttle_episodes += 1
            log.warning(
                "the broker at %s is not taking our writes (producer flow control?): commands "
                "are held and end with CommandTimeout at their TTL; not declaring the "
                "connector out of service for it",
                self._display_url,
            )

    def _check_throttle_over(self) -> None:
        if not self._write_blocked():
            self._throttled = False
            log.info(
                "the broker at %s takes our writes again (%.1f s held by flow control in all)",
                self._display_url,
                self._flow_control_held(),
            )

    # -- what the supervisor asks of the client ------------------------------------------------

    def _recognises_probe_answers(self) -> bool:
        return self._table.recognises_probe_answers

    async def _switch_broker(self, reason: str) -> bool:
        transport = self._transport
        return transport is not None and await transport.switch_broker(reason)

    def _logged_in_agents(self) -> list[str]:
        return [ext for ext, tracker in self._trackers.items() if tracker.logged_in]

    async def _refresh_agent(self, extension: str) -> object:
        return await self.send("GetState", extension)

    def _announce(self, reason: str) -> None:
        notice = EventsMayBeMissed(reason)
        self._streams.push(notice)
        for tracker in self._trackers.values():
            tracker.notify(notice)

    async def _after_resync(self) -> None:
        if self.on_resync is not None:
            result = self.on_resync(self)
            if inspect.isawaitable(result):
                await result

    # -- transport link -------------------------------------------------------------------------

    def _on_connection_lost(self, exc: BaseException | None) -> None:
        self._supervisor.link_lost()
        failed = self._table.fail_all(
            lambda e: ConnectionLost(
                f"{e.command}#{e.target}: connection lost while in flight; "
                "outcome unknown, not re-sent"
            )
        )
        reason = type(exc).__name__ if exc is not None else "closed"
        log.warning("link to %s lost (%s): %d command(s) failed", self._display_url, reason, failed)
        if self._observers:
            self._observers.connection_lost(reason)

    def _on_connection_restored(self) -> None:
        if self._closed:
            return
        self._stats.reconnects += 1
        log.info("link to %s restored: Hello, then resync", self._display_url)
        if self._observers:
            self._observers.reconnected(self._display_url)
        self._supervisor.link_restored(f"reconnected to {self._display_url}")

    # -- delivery (the transport's handler: sync, on the loop, must never raise) ---------------

    def _on_message(self, message: Message) -> None:
        self._stats.events_received += 1
        try:
            event = decode_event(message.body, self.max_event_body)
        except Exception as exc:
            self._stats.malformed += 1
            log.debug("malformed event dropped (%s): %r", exc, message.body)
            if self._observers:
                self._observers.event_received(None, "malformed")
            return
        try:
            headers = message.headers  # the properties' reads, without two calls per event
            self._dispatch(event, correlation_id_of(headers), headers.get("message-id"))
        except Exception:
            log.error(
                "internal error while handling a %s event", type(event).__name__, exc_info=True
            )

    def _dispatch(
        self, event: Event, correlation_id: str | None, message_id: str | None = None
    ) -> None:
        """Route one event: its agent's tracker, the pending table, service state, streams."""
        owner = owner_of(event, self.destination)
        tracker = self._trackers.get(owner) if owner is not None else None
        if tracker is not None:
            tracker.apply(event)
        fate = self._table.resolve(event, correlation_id, owner)
        supervisor = self._supervisor
        if fate == "resolved":
            if correlation_id and self._identity.answered_by(
                message_id, seed=not supervisor.ever_in_service
            ):
                supervisor.connector_restarted("its answers come from a new broker connection")
        elif (
            tracker is None and fate == "update" and owner is not None and owner != self.destination
        ):
            self._stats.unknown_agent += 1  # no session for it: only events() streams see it
            fate = "unknown_agent"
        if isinstance(event, SystemStatus):
            supervisor.on_status(event, fate == "resolved")
        elif (
            tracker is not None
            and isinstance(event, ErrorEvent)
            and event.code in CONTRADICTING_ERRORS
            and tracker.logged_in
        ):
            self._recheck(tracker.extension)
        if self._streams:
            self._streams.push(event)
        if self._observers.active:
            self._observers.event_received(event, fate)

    # -- connector restarts -------------------------------------------------------------------

    async def _subscribe_advisories(self, transport: Transport) -> None:
        """Listen to consumer advisories of the command queue; without them (ACLs, a broker
        that is not ActiveMQ) restart detection keeps its other signals."""
        destination = ADVISORY_PREFIX + self.queue.rsplit("/", 1)[-1]
        try:
            self._advisory_subscription = await transport.subscribe(
                destination, self._on_advisory, prefetch=100
            )
        except (ConnectorError, OSError) as exc:
            log.info(
                "consumer advisories %s not readable (%s): connector restarts are detected "
                "from its answers only",
                destination,
                exc,
            )

    def _on_advisory(self, message: Message) -> None:
        advisory = parse_advisory(message.body, message.headers)
        if advisory is None:
            return
        supervisor = self._supervisor
        if advisory.started:
            if self._identity.seen(advisory.connection_id, seed=not supervisor.ever_in_service):
                supervisor.connector_restarted("a new consumer on the command queue")
        elif advisory.consumer_count == 0:
            supervisor.confirm("the last consumer of the command queue went away")

    def _recheck(self, extension: str) -> None:
        """Re-read one agent whose error answer contradicts what we believe (at most once a
        second per agent, and not while a resync re-reads everyone anyway)."""
        if self._supervisor.resync_pending:
            return
        now = asyncio.get_running_loop().time()
        if self._rechecks.get(extension, float("-inf")) > now:
            return
        if len(self._rechecks) > 4 * len(self._trackers) + 64:
            self._rechecks = {e: t for e, t in self._rechecks.items() if t > now}
        self._rechecks[extension] = now + RECHECK_SPACING
        self._spawn(self._recheck_agent(extension), "recheck")

    async def _recheck_agent(self, extension: str) -> None:
        with contextlib.suppress(ConnectorError):
            await self.send("GetState", extension)
