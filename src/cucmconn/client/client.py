"""The asyncio client: one connection, one reply topic, many agents.

nats-style request/reply over JMS: one subscription on ``/topic/<destination>``, a table of
pending commands keyed by correlation id (``correlation.py``), and bounded streams for
everything else.  Hand-written because no library speaks this connector's protocol, and because
the session rules (Hello until IN_SERVICE, Beat, OUT_OF_SERVICE at any time, resync after a
reconnect) are the connector's own.  The rules this module keeps:

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

from ..codec import decode_event, encode_command
from ..codec.commands import canonical_command
from ..codec.events import Event, SystemStatus
from ..errors import ConnectionLost, ConnectorError, ServiceUnavailable, TransportError
from ..trace.recorder import RecordingTransport, TraceRecorder
from ..transport import Message, Transport, open_transport, redact_url, topic
from ..transport import queue as queue_destination
from .agent import AgentSession
from .correlation import DEFAULT_EXPECTATIONS, Expect, Pending, PendingTable, owner_of
from .observe import ClientObserver, CommandFinished, Observers, Outcome
from .slots import Slots
from .stats import ClientStats, LatencyHistogram, StatsCounters
from .streams import EventsMayBeMissed, EventStream, Overflow
from .supervisor import Supervisor
from .tracker import AgentTracker

__all__ = ["Client", "ResyncCallback"]

log = logging.getLogger("cucmconn.client")

ResyncCallback = Callable[["Client"], "Awaitable[None] | None"]
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


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
    ) -> None:
        if (url is None) == (transport is None):
            raise ValueError("give exactly one of url or transport")
        for name, value in (
            ("ttl", ttl),
            ("connect_timeout", connect_timeout),
            ("handshake_timeout", handshake_timeout),
            ("keepalive", keepalive),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, not {value!r}")
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
        self._agents: dict[str, AgentSession] = {}
        self._trackers: dict[str, AgentTracker] = {}
        self._streams: weakref.WeakSet[EventStream] = weakref.WeakSet()
        self._ids = itertools.count(1)
        self._id_prefix = uuid.uuid4().hex[:12]
        self._subscription: str | None = None
        self._connected = False
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._owns_recorder = record is not None and not isinstance(record, TraceRecorder)
        self._recorder: TraceRecorder | None = (
            record if record is None or isinstance(record, TraceRecorder) else TraceRecorder(record)
        )
        self._supervisor = Supervisor(
            probe=self._probe,
            logged_in=self._logged_in_agents,
            refresh=self._refresh_agent,
            announce=self._announce,
            after_resync=self._after_resync,
            service_changed=self._service_changed,
            spawn=self._spawn,
            connect_timeout=connect_timeout,
            keepalive=keepalive,
            handshake_timeout=handshake_timeout,
            max_parallel=max_in_flight,
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
        snapshot = ClientStats.snapshot(self._stats, len(self._table))
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
            self._transport = open_transport(self._url or "", **self._transport_options)
            self._display_url = self._transport.display_url
        if self._recorder is not None and not isinstance(
            self._transport, RecordingTransport
        ):
            self._transport = RecordingTransport(self._transport, self._recorder)
        transport = self._transport
        try:
            if not transport.connected:
                await transport.connect()
            transport.set_listener(
                _Listener(self._on_connection_lost, self._on_connection_restored)
            )
            self._subscription = await transport.subscribe(self._reply_to, self._on_message)
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
        for stream in list(self._streams):
            stream.close()
        transport = self._transport
        if transport is not None:
            transport.set_listener(None)
            if self._subscription is not None and transport.connected:
                with contextlib.suppress(ConnectorError, OSError):
                    await transport.unsubscribe(self._subscription)
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
        command.
        """
        jms_type, body = encode_command(command, target, *args)
        name = canonical_command(command)
        ttl = self.ttl if ttl is None else ttl
        if not ttl > 0:
            raise ValueError(f"ttl must be > 0, not {ttl!r}")
        tracker = self._trackers.get(target)
        if tracker is None:
            return await self._request(name, target, args, jms_type, body, ttl)
        turn = tracker.turn
        if not turn.try_acquire():
            await turn.acquire()
        try:
            return await self._request(name, target, args, jms_type, body, ttl)
        finally:
            turn.release()

    async def _request(
        self, name: str, target: str, args: tuple[str, ...], jms_type: str, body: str, ttl: float
    ) -> Event:
        if self._closed or not self._connected or not self._supervisor.ready:
            await self._wait_ready(name, target, ttl)
        slots = self._slots
        if not slots.try_acquire():
            await slots.acquire()
        try:
            entry = self._register(name, target, args, ttl)
            await self._transmit(entry, jms_type, body, ttl)
            try:
                return await entry.future
            except asyncio.CancelledError:
                self._table.abandon(entry)
                raise
        finally:
            slots.release()

    async def _wait_ready(self, name: str, target: str, ttl: float) -> None:
        if self._closed or not self._connected:
            raise ConnectionLost(f"{name}#{target}: client is not connected")
        supervisor = self._supervisor
        if supervisor.ready:
            return
        started = time.perf_counter()
        if not self.wait_for_service:
            if not supervisor.link_up:
                self._refused(name, target, "connection_lost", started)
                raise ConnectionLost(f"{name}#{target}: link down, the transport is reconnecting")
            self._refused(name, target, "unavailable", started)
            raise ServiceUnavailable(f"{name}#{target}: connector is OUT_OF_SERVICE")
        try:
            async with asyncio.timeout(ttl):
                await supervisor.wait_in_service()
        except TimeoutError:
            self._refused(name, target, "unavailable", started)
            raise ServiceUnavailable(
                f"{name}#{target}: connector not IN_SERVICE within {ttl:g} s"
            ) from None

    def _refused(self, name: str, target: str, outcome: Outcome, started: float) -> None:
        """Count a command that ended before it got an id (link down, connector out of service)."""
        if outcome == "connection_lost":
            self._stats.connection_lost += 1
        else:
            self._stats.service_unavailable += 1
        if self._observers:
            self._observers.command_finished(
                CommandFinished(name, target, None, outcome, time.perf_counter() - started)
            )

    def _register(self, name: str, target: str, args: tuple[str, ...], ttl: float) -> Pending:
        now = asyncio.get_running_loop().time()
        cid = f"{self._id_prefix}-{next(self._ids):x}"
        entry = self._table.add(cid, name, target, args, now + ttl, now)
        if self._observers:
            self._observers.command_issued(name, target, cid)
        return entry

    async def _transmit(self, entry: Pending, jms_type: str, body: str, ttl: float) -> None:
        assert self._transport is not None
        try:
            await self._transport.send(
                self._queue_dest,
                body,
                jms_type=jms_type,
                correlation_id=entry.correlation_id,
                reply_to=self._reply_to,
                ttl=ttl,
                persistent=False,
            )
        except asyncio.CancelledError:
            self._table.abandon(entry)
            raise
        except (TransportError, OSError) as exc:
            self._table.abandon(entry, "connection_lost")
            raise ConnectionLost(f"{entry.command}#{entry.target}: send failed: {exc}") from exc
        self._stats.sent += 1
        log.debug("sent %s (id %s)", jms_type, entry.correlation_id)

    async def _probe(self, name: str, ttl: float) -> asyncio.Future[Event]:
        """Write a Hello/Beat; the answer acts through the supervisor, the future reports it."""
        jms_type, body = encode_command(name, self.destination)
        entry = self._register(name, self.destination, (), ttl)
        entry.future.add_done_callback(_consume)
        await self._transmit(entry, jms_type, body, ttl)
        return entry.future

    # -- what the supervisor asks of the client ------------------------------------------------

    def _logged_in_agents(self) -> list[str]:
        return [ext for ext, tracker in self._trackers.items() if tracker.logged_in]

    async def _refresh_agent(self, extension: str) -> object:
        return await self.send("GetState", extension)

    def _announce(self, reason: str) -> None:
        notice = EventsMayBeMissed(reason)
        for stream in list(self._streams):
            stream.push(notice)
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
        try:
            event = decode_event(message.body)
        except Exception as exc:
            self._stats.malformed += 1
            log.debug("malformed event dropped (%s): %r", exc, message.body)
            if self._observers:
                self._observers.event_received(None, "malformed")
            return
        try:
            self._dispatch(event, message.correlation_id)
        except Exception:
            log.error(
                "internal error while handling a %s event", type(event).__name__, exc_info=True
            )

    def _dispatch(self, event: Event, correlation_id: str | None) -> None:
        """Route one event: service state, its agent's tracker, the pending table, streams."""
        owner = owner_of(event, self.destination)
        if isinstance(event, SystemStatus):
            self._supervisor.on_status(event)
        elif owner is not None:
            tracker = self._trackers.get(owner)
            if tracker is not None:
                tracker.apply(event)
        fate = self._table.resolve(event, correlation_id, owner)
        if self._streams:  # an empty WeakSet is cheap to test, not to iterate
            for stream in self._streams:
                stream.push(event)
        if self._observers:
            self._observers.event_received(event, fate)
