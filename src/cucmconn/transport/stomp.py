"""The native STOMP 1.2 transport: an ``asyncio.Protocol`` over the sans-IO ``StompSession``.

URLs: ``stomp://[user:pass@]host:61613``, ``stomp+ssl://host:61614?cafile=..&verify=false``,
``failover:(stomp://a:61613,stomp://b:61613)?randomize=false&priorityBackup=true`` (ActiveMQ's
failover options, see ``url.FailoverPolicy``).  Options (URL query or kwargs): ``heartbeat``
(ms), ``prefetch``, ``connect_timeout`` (s), ``reconnect`` (bool), ``initial_backoff`` and
``max_backoff`` (s), ``send_buffer_limit`` (bytes), ``tcp_quickack`` (bool),
``login``/``passcode``, ``ssl`` (an ``SSLContext``).

Sockets: TCP_NODELAY, and TCP_QUICKACK re-armed whenever data arrives (Linux), so a broker
that keeps Nagle on (ActiveMQ's default) never holds a reply waiting for our delayed ACK: one
command after another costs ~1 ms instead of ~40 ms.  Writes: the frames produced in one loop
turn leave in one write; while the peer does not read (``pause_writing``) frames wait in our
bounded buffer, where one whose deadline passes is dropped, never written late.

Why not aiostomp or stomp.py: docs/architecture.md.  The wire rules live in ``stompsession.py``;
this module only moves bytes and runs the timers (heart-beat, watchdog) and the reconnect loop.
Works on asyncio and uvloop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import socket
import ssl as _ssl
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, cast

from ..codec.text import BODY_ENCODINGS, encode_text
from ..errors import BrokerError, ClosedBeforeConnected, ConnectionLost, TransportError
from .backoff import Backoff
from .base import (
    HandlerFailures,
    HoldClock,
    MessageHandler,
    TransportListener,
    connect_attempts,
    expires_at,
    loop_time,
    notify_listener,
)
from .stompsession import (
    BrokerFailure,
    Connected,
    Delivery,
    Orphan,
    ProtocolViolation,
    Receipt,
    SessionEvent,
    StompSession,
)
from .tcp import set_quickack, tune_socket
from .tls import TLSClient, describe_tls_error
from .url import Endpoint, FailoverPolicy, TransportURL

__all__ = ["StompOptions", "StompStats", "StompTransport"]

log = logging.getLogger("cucmconn.transport.stomp")

_TRUE = frozenset({"1", "true", "yes", "on"})
# Read elsewhere: TLS set-up and credentials (ActiveMQ's failover options: url.FailoverPolicy).
_URL_ONLY_OPTIONS = frozenset({"cafile", "verify", "login", "passcode"})


@dataclass
class StompOptions:
    heartbeat: int = 10_000  # ms offered both ways in CONNECT; 0 disables heart-beats
    prefetch: int = 1000
    connect_timeout: float = 10.0
    reconnect: bool = True
    initial_backoff: float = 0.1
    max_backoff: float = 30.0
    send_buffer_limit: int = 1024 * 1024
    receipt_timeout: float = 5.0
    max_frame_size: int = 4 * 1024 * 1024
    body_encoding: str = "cesu-8"  # ActiveMQ 5.17 needs it for non-BMP text (codec/text.py)
    tcp_quickack: bool = True  # re-arm TCP_QUICKACK on every read (Linux); see the module doc

    @classmethod
    def build(cls, given: Mapping[str, Any]) -> StompOptions:
        """Typed options from URL strings and kwargs; unknown keys are a clear error."""
        opts = cls()
        for key, raw in given.items():
            if not hasattr(opts, key):
                raise ValueError(
                    f"unknown stomp transport option {key!r}{FailoverPolicy.suggest(key)}"
                )
            current = getattr(opts, key)
            try:
                if isinstance(current, bool):
                    value: Any = raw if isinstance(raw, bool) else str(raw).lower() in _TRUE
                else:
                    value = type(current)(raw)
            except (TypeError, ValueError):
                raise ValueError(f"bad value for stomp option {key!r}") from None
            setattr(opts, key, value)
        if opts.body_encoding not in BODY_ENCODINGS:
            raise ValueError(f"body_encoding must be one of {BODY_ENCODINGS}")
        if opts.send_buffer_limit < 1024:
            raise ValueError("send_buffer_limit must be >= 1024 bytes")
        if not 0 < opts.initial_backoff <= opts.max_backoff:
            raise ValueError("need 0 < initial_backoff <= max_backoff")
        return opts


@dataclass
class StompStats:
    messages_in: int = 0
    messages_out: int = 0
    bytes_out: int = 0
    writes: int = 0  # frames handed to the socket in batches: one per loop turn at most
    reconnects: int = 0
    disconnects: int = 0
    handler_errors: int = 0
    orphan_messages: int = 0
    heartbeats_in: int = 0
    heartbeats_out: int = 0
    broker_errors: int = 0
    sender_waits: int = 0
    send_timeouts: int = 0  # sends refused because their deadline passed before writing
    expired_unsent: int = 0  # frames dropped from our buffer because their deadline passed
    broker_switches: int = 0  # links dropped on purpose: switch_broker() or priority return
    flow_control_pauses: int = 0  # times the peer stopped reading (pause_writing)


class _Link(asyncio.Protocol):
    """One TCP connection, TLS on it when ``tls`` is given; forwards everything to its transport.

    The transport writes through :meth:`write` / :meth:`writelines`, which encrypt when TLS is
    on, so the bytes go straight into asyncio's TCP transport either way (see ``tls.py``).
    """

    def __init__(self, owner: StompTransport, endpoint: Endpoint, tls: TLSClient | None) -> None:
        self.owner = owner
        self.endpoint = endpoint
        self.tls = tls
        self.transport: asyncio.Transport | None = None
        self.paused = False
        self.rx_activity = False
        self.sock: socket.socket | None = None
        self.switching = False  # dropped on purpose to reach another broker
        self.chosen = False  # ... by switch_broker(): the next broker is the caller's choice
        self.reason: BaseException | None = None  # why we closed it ourselves
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[Connected] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but quack the same.
        self.transport = cast(asyncio.Transport, transport)
        # No user-space slack in asyncio's buffer: it pauses us as soon as the kernel refuses
        # bytes, so every frame not yet handed to the kernel stays in *our* buffer, where its
        # deadline is still ours to honour (see StompTransport._flush).  TLS included: its
        # records are made by our own layer when a flush hands frames over (tls.py).
        self.transport.set_write_buffer_limits(high=0, low=0)
        self.sock = tune_socket(self.transport) if self.owner.options.tcp_quickack else None
        if self.tls is None:
            self.owner._on_link_made(self)
            return
        try:
            self.transport.write(self.tls.start())
        except _ssl.SSLError as exc:
            self._tls_failed(exc)

    def data_received(self, data: bytes) -> None:
        self.rx_activity = True
        if self.sock is not None:
            set_quickack(self.sock)
        tls = self.tls
        if tls is not None:
            was_ready = tls.ready
            try:
                data = tls.receive(data)
            except _ssl.SSLError as exc:
                self._tls_failed(exc)
                return
            reply = tls.pending()
            if reply and self.transport is not None:
                self.transport.write(reply)
            if not was_ready and tls.ready:
                self.owner._on_link_made(self)
            if not data:
                return
        self.owner._on_data(self, data)

    def write(self, data: bytes) -> None:
        """Write one frame (or heart-beat) to the socket, encrypted when TLS is on."""
        assert self.transport is not None
        self.transport.write(data if self.tls is None else self.tls.encrypt((data,)))

    def writelines(self, frames: list[bytes]) -> None:
        """Write frames in one go (one TLS record batch, one ``writelines``)."""
        assert self.transport is not None
        if self.tls is None:
            self.transport.writelines(frames)
        else:
            self.transport.write(self.tls.encrypt(frames))

    def eof_received(self) -> bool | None:
        return None  # close: a broker that half-closes is gone

    def pause_writing(self) -> None:
        self.paused = True
        self.owner._on_pause(self)

    def resume_writing(self) -> None:
        self.paused = False
        self.owner._on_resume(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.owner._on_link_lost(self, self.reason or exc)

    def close(self) -> None:
        """Close after what was written (TLS: our close_notify first)."""
        if self.transport is None:
            return
        if self.tls is not None and not self.transport.is_closing():
            with contextlib.suppress(_ssl.SSLError):
                self.transport.write(self.tls.close())
        self.transport.close()

    def abort(self, reason: BaseException) -> None:
        if self.reason is None:
            self.reason = reason
        if self.transport is not None:
            self.transport.abort()

    def _tls_failed(self, exc: _ssl.SSLError) -> None:
        what = "TLS" if self.tls is not None and self.tls.ready else "TLS handshake failed"
        self.abort(TransportError(f"{self.endpoint}: {what}: {describe_tls_error(exc)}"))


class StompTransport:
    """The Transport interface over STOMP 1.2 to ActiveMQ, with heart-beats and failover."""

    def __init__(self, parsed: TransportURL, **options: Any) -> None:
        if not parsed.endpoints:
            raise ValueError("a stomp transport needs at least one endpoint")
        self._parsed = parsed
        self._given = dict(options)  # as passed, for companion()
        merged: dict[str, Any] = {
            k: v for k, v in parsed.options.items() if k not in _URL_ONLY_OPTIONS
        }
        self._ssl_option = options.pop("ssl", None)
        # Credentials: kwargs, else the failover query, else the first endpoint's URL.
        login = options.pop("login", None) or parsed.options.get("login")
        passcode = options.pop("passcode", None) or parsed.options.get("passcode")
        merged.update(options)
        self.policy = parsed.policy
        if self.policy.initial_reconnect_delay is not None:
            merged.setdefault("initial_backoff", self.policy.initial_reconnect_delay)
        if self.policy.max_reconnect_delay is not None:
            merged.setdefault("max_backoff", self.policy.max_reconnect_delay)
        if self.policy.max_reconnect_attempts == 0:
            merged.setdefault("reconnect", False)
        self.options = StompOptions.build(merged)
        first = parsed.endpoints[0]
        self._login = login if login is not None else first.login
        self._passcode = passcode if passcode is not None else first.passcode
        self._session = StompSession(
            host=first.host,
            login=self._login,
            passcode=self._passcode,
            heartbeat=self.options.heartbeat,
            max_frame_size=self.options.max_frame_size,
        )
        self._stats = StompStats()
        self._link: _Link | None = None
        self._connected = False
        self._closing = False
        self._listener: TransportListener | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._priority_task: asyncio.Task[None] | None = None
        self._stay = False  # switch_broker() chose this broker: no priority return on our own
        self._gave_up: str | None = None
        self._receipts: dict[str, asyncio.Future[None]] = {}
        # Our write buffer: frames of this loop turn, or held while the peer does not read.
        # ``_out_deadlines`` runs parallel to ``_out`` (None: no deadline); ``_out_first`` is
        # the earliest deadline among them, so the common case checks one number, not a list.
        self._out: list[bytes] = []
        self._out_deadlines: list[float | None] = []
        self._out_first: float | None = None
        self._out_bytes = 0
        self._flush_scheduled = False
        self._hold = HoldClock()  # on loop time
        self._tx_activity = False
        self._writable: asyncio.Event | None = None
        self._beat_timer: asyncio.TimerHandle | None = None
        self._watch_timer: asyncio.TimerHandle | None = None
        self._missed_beats = 0
        self._handler_failures = HandlerFailures()
        self._ssl_context: _ssl.SSLContext | None = None

    # -- public surface ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def display_url(self) -> str:
        return self._parsed.display()

    @property
    def endpoint(self) -> str | None:
        """The broker currently connected to (no credentials), for logs and health pages."""
        return str(self._link.endpoint) if self._link is not None and self._connected else None

    @property
    def current_endpoint(self) -> Endpoint | None:
        """The broker currently connected to (None while down): what ``companion`` pins to."""
        return self._link.endpoint if self._link is not None and self._connected else None

    @property
    def brokers(self) -> tuple[Endpoint, ...]:
        """The brokers this transport may connect to, in the URL's order."""
        return self._parsed.endpoints

    def companion(self) -> StompTransport:
        """A new, unconnected transport to the broker this one is connected to: the same
        options and credentials, that broker only (no failover list).

        For :class:`~cucmconn.transport.split.SplitTransport`, whose second link must reach
        the broker the first one is on.  TransportError when not connected.
        """
        endpoint = self.current_endpoint
        if endpoint is None:
            raise TransportError(f"{self.display_url}: not connected, no broker to pin to")
        pinned = TransportURL(
            endpoint.scheme,
            (endpoint,),
            dict(self._parsed.options),
            failover_policy=self._parsed.failover_policy,
        )
        return StompTransport(pinned, **{**self._given, "login": self._login,
                                         "passcode": self._passcode})  # fmt: skip

    @property
    def write_blocked(self) -> bool:
        """True while the broker does not read what we write (its flow control, or a stalled
        link): senders wait, and frames held meanwhile expire at their deadlines."""
        link = self._link
        return link is not None and link.paused

    @property
    def flow_control_held(self) -> float:
        """Seconds spent with writing blocked by the peer, in total (the current hold too)."""
        return self._hold.held(loop_time)

    def __repr__(self) -> str:
        return f"StompTransport({self.display_url!r}, connected={self._connected})"

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self._stats)
        out["flow_control_held"] = round(self._hold.total, 3)
        out["heartbeats_in"] = self._stats.heartbeats_in + self._session.heartbeats_received
        out["buffered_bytes"] = self.buffered_bytes
        out["subscriptions"] = len(self._session.subscriptions)
        return out

    @property
    def buffered_bytes(self) -> int:
        """Bytes accepted by ``send`` but not yet written to the socket (both of our buffers)."""
        link = self._link
        in_transport = link.transport.get_write_buffer_size() if link and link.transport else 0
        return self._out_bytes + in_transport

    def set_listener(self, listener: TransportListener | None) -> None:
        self._listener = listener

    async def connect(self) -> None:
        """Connect to the first reachable endpoint, in the URL's order; idempotent."""
        if self._connected:
            return
        if self._reconnect_task is not None and not self._reconnect_task.done():
            raise TransportError(f"{self.display_url}: already reconnecting")
        self._closing = False
        self._gave_up = None
        errors: list[str] = []
        for endpoint in self._order(None):
            try:
                await connect_attempts(functools.partial(self._open, endpoint), log, str(endpoint))
                return
            except TransportError as exc:
                errors.append(str(exc))
                if isinstance(exc, BrokerError):  # the broker refused us: retrying will not help
                    raise
        raise TransportError(f"cannot connect to {self.display_url} ({'; '.join(errors)})")

    async def close(self) -> None:
        """Stop reconnecting, DISCONNECT with a receipt (waited for briefly), close; idempotent."""
        self._closing = True
        for task in (self._reconnect_task, self._priority_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reconnect_task = self._priority_task = None
        link = self._link
        if link is None:
            return
        if self._connected:
            receipt, frame = self._session.disconnect_frame()
            with contextlib.suppress(TransportError, TimeoutError):
                await self._request_receipt(receipt, frame, min(1.0, self.options.receipt_timeout))
        self._connected = False
        link.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(link.closed), 1.0)
        if not link.closed.done() and link.transport is not None:
            link.transport.abort()
        self._link = None

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
        """Queue one SEND; waits while the socket is paused or our buffer is full.

        ``deadline`` (``loop.time()`` seconds): TimeoutError, with nothing written, when it
        passes before the frame could be handed over; a frame held in our buffer past it is
        dropped, never written late.  Cancelled, nothing is written either.
        """
        frame = self._session.send_frame(
            destination,
            encode_text(body, self.options.body_encoding),
            jms_type=jms_type,
            correlation_id=correlation_id,
            reply_to=reply_to,
            expires=expires_at(ttl),
            persistent=persistent,
            headers=headers,
        )
        link = self._link
        # Fast path without a coroutine call: connected, socket not paused, buffer not full.
        if link is None or link.paused or self._out_bytes >= self.options.send_buffer_limit:
            await self._wait_writable(deadline)
        elif not self._connected:
            self._require_connected()
        if deadline is not None and asyncio.get_running_loop().time() >= deadline:
            self._stats.send_timeouts += 1
            raise TimeoutError(f"{self.display_url}: send deadline passed before writing")
        self._write(frame, deadline)
        self._stats.messages_out += 1

    async def flush(self) -> None:
        """Wait for the broker's receipt of a barrier written behind everything sent so far
        (``StompSession.barrier_frames``; see ``Transport.flush``).  The barrier queues in our
        buffer like any frame, so a paused link delays it too."""
        self._require_connected()
        receipt, frames = self._session.barrier_frames()
        for frame in frames:
            self._write(frame)
        await self._await_receipt(receipt, None)

    async def switch_broker(self, reason: str) -> bool:
        """Drop the current link and reconnect, starting with the next broker of the list.

        For a connector that answers on another broker (the vendor's HA pair: a client on A
        while the connector sits on B).  False, and nothing done, with one broker or when not
        connected.  Returns once the old link is down: the listener has heard
        ``connection_lost``, and hears ``connection_restored`` when a broker accepted us.
        With ``priorityBackup`` the transport then stays where the switch took it instead of
        returning to the priority broker on its own (the caller knows better where its
        connector is), until a link is lost for another reason.
        """
        link = self._link
        if len(self._parsed.endpoints) < 2 or link is None or not self._connected:
            return False
        log.warning("%s: leaving %s: %s", self.display_url, link.endpoint, reason)
        self._stats.broker_switches += 1
        link.chosen = True
        link.switching = True
        link.abort(ConnectionLost(f"switching from {link.endpoint}: {reason}"))
        await asyncio.shield(link.closed)
        return True

    async def subscribe(
        self, destination: str, handler: MessageHandler, *, prefetch: int | None = None
    ) -> str:
        """Subscribe and wait for the broker's receipt, so messages sent afterwards arrive."""
        self._require_connected()
        sub, receipt, frame = self._session.subscribe(
            destination, handler, prefetch or self.options.prefetch
        )
        try:
            await self._request_receipt(receipt, frame, self.options.receipt_timeout)
        except TimeoutError:
            # Kept: the broker may still register it, and a reconnect re-issues it anyway.
            log.warning("%s: no receipt for SUBSCRIBE %s", self.display_url, destination)
        return sub.sub_id

    async def unsubscribe(self, subscription_id: str) -> None:
        result = self._session.unsubscribe(subscription_id)
        if result is None or not self._connected:
            return
        receipt, frame = result
        with contextlib.suppress(TimeoutError, TransportError):
            await self._request_receipt(receipt, frame, self.options.receipt_timeout)

    # -- connecting ------------------------------------------------------------------------------

    def _ssl_for(self, endpoint: Endpoint) -> _ssl.SSLContext | None:
        if not endpoint.ssl:
            return None
        if isinstance(self._ssl_option, _ssl.SSLContext):
            return self._ssl_option
        if self._ssl_context is None:
            opts = {**self._parsed.options, **endpoint.options}
            ctx = _ssl.create_default_context(cafile=opts.get("cafile"))
            if opts.get("verify", "true").lower() not in _TRUE:
                ctx.check_hostname = False
                ctx.verify_mode = _ssl.CERT_NONE
            self._ssl_context = ctx
        return self._ssl_context

    async def _open(self, endpoint: Endpoint) -> None:
        """One attempt at one endpoint: TCP (+TLS), CONNECT, CONNECTED, resubscribe."""
        loop = asyncio.get_running_loop()
        timeout = self.options.connect_timeout
        ssl_ctx = self._ssl_for(endpoint)
        self._stats.heartbeats_in += self._session.heartbeats_received  # before the reset
        self._session.new_connection()
        link: _Link | None = None

        def factory() -> _Link:
            nonlocal link
            tls = TLSClient(ssl_ctx, endpoint.host) if ssl_ctx is not None else None
            link = _Link(self, endpoint, tls)
            return link

        try:
            async with asyncio.timeout(timeout):
                # TLS runs inside the link (tls.py), not in asyncio: see the module there.
                await loop.create_connection(factory, endpoint.host, endpoint.port)
                assert link is not None
                connected = await link.ready
                await self._activate(link, connected)
        except BaseException as exc:
            self._discard(link, "connect attempt failed")
            raise self._connect_error(endpoint, exc, timeout) from None

    @staticmethod
    def _connect_error(endpoint: Endpoint, exc: BaseException, timeout: float) -> BaseException:
        """The error a failed attempt raises: a TransportError saying why, never credentials."""
        if isinstance(exc, TransportError):
            return exc
        if isinstance(exc, TimeoutError):
            return TransportError(f"{endpoint}: no CONNECTED within {timeout:g}s")
        if isinstance(exc, _ssl.SSLError):  # raised by the TLS layer when set up
            return TransportError(f"{endpoint}: TLS handshake failed: {describe_tls_error(exc)}")
        if isinstance(exc, OSError):
            return TransportError(f"{endpoint}: {exc.strerror or exc}")
        return exc  # cancellation and bugs pass through unchanged

    def _discard(self, link: _Link | None, why: str) -> None:
        if link is not None and link.transport is not None:
            link.abort(ConnectionLost(why))

    async def _activate(self, link: _Link, connected: Connected) -> None:
        """Make ``link`` ours: re-issue the subscriptions, and report connected only once the
        broker has them (a receipt on the last one).  So whatever is sent after ``connect`` or
        ``connection_restored`` finds them, even when sent over another connection (the
        outbound link of a SplitTransport); a single link got that from frame order alone."""
        if link.closed.done():  # lost between CONNECTED and here
            raise ConnectionLost(f"{link.endpoint}: closed right after CONNECTED")
        self._link = link
        self._missed_beats = 0
        receipt = self._session.next_receipt() if self._session.subscriptions else None
        for frame in self._session.resubscribe_frames(receipt):
            self._write(frame)
        self._start_timers(link, connected)
        if receipt is not None:
            try:  # a loss meanwhile raises ConnectionLost: this attempt failed
                await self._await_receipt(receipt, self.options.receipt_timeout)
            except TimeoutError:  # kept, as in subscribe(): the broker may still have them
                log.warning("%s: no receipt for the re-issued subscriptions", link.endpoint)
        self._connected = True
        self._wake_senders()
        if (
            self.policy.priority_backup
            and not self._stay
            and link.endpoint != self._parsed.endpoints[0]
            and (self._priority_task is None or self._priority_task.done())
        ):
            self._priority_task = asyncio.get_running_loop().create_task(self._watch_priority(link))
        log.info(
            "connected to %s (%s, heart-beat send %sms / expect %sms)",
            link.endpoint,
            connected.server or "unknown server",
            connected.send_interval,
            connected.recv_interval,
        )

    # -- link callbacks ----------------------------------------------------------------------------

    def _on_link_made(self, link: _Link) -> None:
        link.write(self._session.connect_frame())

    def _on_data(self, link: _Link, data: bytes) -> None:
        try:
            events = self._session.receive_data(data)
        except ProtocolViolation as exc:
            self._dispatch(link, exc.events)  # what came before the bad frame is not lost
            link.abort(exc)
            return
        self._dispatch(link, events)

    def _dispatch(self, link: _Link, events: list[SessionEvent]) -> None:
        for event in events:
            if type(event) is Delivery:
                self._stats.messages_in += 1
                try:
                    event.subscription.handler(event.message)
                except Exception as exc:  # a handler's bug must never kill the link
                    self._handler_failed(event, exc)
            elif type(event) is Receipt:
                waiter = self._receipts.pop(event.receipt_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            elif type(event) is Connected:
                if not link.ready.done():
                    link.ready.set_result(event)
            elif type(event) is BrokerFailure:
                self._on_broker_error(link, event)
            elif type(event) is Orphan:
                self._stats.orphan_messages += 1

    def _handler_failed(self, delivery: Delivery, exc: Exception) -> None:
        self._stats.handler_errors += 1
        self._handler_failures.log(log, delivery.subscription.destination, exc)

    def _on_broker_error(self, link: _Link, failure: BrokerFailure) -> None:
        self._stats.broker_errors += 1
        error = BrokerError(failure.message, failure.details)
        log.error("%s: broker ERROR: %s", link.endpoint, failure.message)
        if not link.ready.done():
            link.ready.set_exception(error)
            return
        if failure.receipt_id is not None:
            waiter = self._receipts.pop(failure.receipt_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)
        # ActiveMQ closes the socket after an ERROR; make sure of it and say why.
        link.abort(error)

    def _on_link_lost(self, link: _Link, exc: BaseException | None) -> None:
        if not link.ready.done():
            link.ready.set_exception(
                exc
                if isinstance(exc, TransportError)
                else ClosedBeforeConnected("connection closed before CONNECTED")
            )
            link.ready.exception()  # mark retrieved: nobody may await a discarded attempt
        if link is not self._link:
            return
        self._link = None
        was_connected = self._connected
        self._connected = False
        self._stop_timers()
        self._end_hold()
        self._out = []
        self._out_deadlines = []
        self._out_first = None
        self._out_bytes = 0
        lost = ConnectionLost(f"connection to {link.endpoint} lost: {exc or 'closed by broker'}")
        for waiter in self._receipts.values():
            if not waiter.done():
                waiter.set_exception(lost)
                waiter.exception()
        self._receipts.clear()
        self._wake_senders()
        if self._closing or not was_connected:
            return
        self._stats.disconnects += 1
        self._stay = link.chosen  # a loss of any other kind lets priorityBackup act again
        log.warning("%s", lost)
        self._notify("connection_lost", exc if exc is not None else lost)
        if self.options.reconnect or link.switching:
            self._reconnect_task = asyncio.get_running_loop().create_task(
                self._reconnect_loop(link.endpoint)
            )

    def _notify(self, what: str, *args: Any) -> None:
        notify_listener(log, self._listener, what, *args)

    def _backoff(self) -> Backoff:
        policy = self.policy
        factor = policy.backoff_multiplier if policy.use_exponential_backoff else 1.0
        return Backoff(self.options.initial_backoff, self.options.max_backoff, factor=factor)

    def _order(self, lost: Endpoint | None) -> list[Endpoint]:
        """The brokers to try, in order, as ActiveMQ's failover transport picks them.

        ``randomize`` shuffles; otherwise the list rotates to start after ``lost`` (the broker
        just left).  ``lost`` always comes last, and with ``priorityBackup`` the priority
        broker (the URL's first) comes first unless it is the one just lost.
        """
        endpoints = list(self._parsed.endpoints)
        if len(endpoints) < 2:
            return endpoints
        if self.policy.randomize:
            random.shuffle(endpoints)
        elif lost in endpoints:
            at = endpoints.index(lost) + 1
            endpoints = endpoints[at:] + endpoints[:at]
        if lost in endpoints:
            endpoints.remove(lost)
            endpoints.append(lost)
        priority = self._parsed.endpoints[0]
        if self.policy.priority_backup and priority != lost:
            endpoints.remove(priority)
            endpoints.insert(0, priority)
        return endpoints

    async def _reconnect_loop(self, lost: Endpoint) -> None:
        backoff = self._backoff()
        limit = self.policy.max_reconnect_attempts
        rounds = 0
        while not self._closing:
            for endpoint in self._order(lost):
                try:
                    await self._open(endpoint)
                except TransportError as exc:
                    log.info("reconnect to %s failed: %s", endpoint, exc)
                    continue
                except Exception:  # a bug must not end reconnecting silently
                    log.exception("reconnect to %s failed unexpectedly", endpoint)
                    continue
                self._stats.reconnects += 1
                self._reconnect_task = None
                self._notify("connection_restored")
                return
            rounds += 1
            if 0 < limit <= rounds:
                self._gave_up = f"gave up reconnecting after {rounds} round(s) over the list"
                log.error("%s: %s", self.display_url, self._gave_up)
                self._reconnect_task = None
                return
            await asyncio.sleep(backoff.next())

    async def _watch_priority(self, link: _Link) -> None:
        """While on a backup broker, probe the priority one; move back when it answers."""
        priority = self._parsed.endpoints[0]
        backoff = self._backoff()
        while link is self._link and not self._closing:
            await asyncio.sleep(backoff.next())
            if link is not self._link or self._closing:
                return
            if await self._probe(priority):
                log.info("%s: priority broker %s is back", self.display_url, priority)
                if link is self._link and self._connected:
                    self._stats.broker_switches += 1
                    link.switching = True
                    link.abort(ConnectionLost(f"priority broker {priority} is back"))
                return

    async def _probe(self, endpoint: Endpoint) -> bool:
        """One STOMP handshake (CONNECT, CONNECTED, DISCONNECT) on a side connection: does
        this broker accept us now?  Never raises; False on any failure."""
        probe = StompSession(
            host=endpoint.host, login=self._login, passcode=self._passcode, heartbeat=0
        )
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                ssl_ctx = self._ssl_for(endpoint)
                reader, writer = await asyncio.open_connection(
                    endpoint.host,
                    endpoint.port,
                    ssl=ssl_ctx,
                    server_hostname=endpoint.host if ssl_ctx else None,
                )
                writer.write(probe.connect_frame())
                while True:
                    data = await reader.read(4096)
                    if not data:
                        return False
                    for event in probe.receive_data(data):
                        if type(event) is Connected:
                            writer.write(probe.disconnect_frame()[1])
                            return True
                        if type(event) is BrokerFailure:
                            return False
        except Exception as exc:  # unreachable, refused, TLS, garbage: not back yet
            log.debug("probe of %s failed: %s", endpoint, exc)
            return False
        finally:
            if writer is not None:
                writer.close()

    # -- writing and flow control ---------------------------------------------------------------

    def _require_connected(self) -> None:
        if not self._connected:
            if self._reconnect_task is not None:
                why = "reconnecting"
            else:
                why = self._gave_up or "not connected"
            raise ConnectionLost(f"{self.display_url}: {why}")

    async def _wait_writable(self, deadline: float | None = None) -> None:
        limit = self.options.send_buffer_limit
        while True:
            self._require_connected()
            link = self._link
            assert link is not None
            if not link.paused and self._out_bytes < limit:
                return
            self._stats.sender_waits += 1
            if self._writable is None:
                self._writable = asyncio.Event()
            self._writable.clear()
            if deadline is None:
                await self._writable.wait()
                continue
            try:
                async with asyncio.timeout_at(deadline):
                    await self._writable.wait()
            except TimeoutError:
                self._stats.send_timeouts += 1
                raise TimeoutError(
                    f"{self.display_url}: link blocked by the broker until the send deadline"
                ) from None

    def _wake_senders(self) -> None:
        if self._writable is not None:
            self._writable.set()

    def _on_pause(self, link: _Link) -> None:
        if link is self._link and self._hold.start(asyncio.get_running_loop().time()):
            self._stats.flow_control_pauses += 1

    def _on_resume(self, link: _Link) -> None:
        if link is not self._link:
            return
        self._end_hold()
        self._flush()  # what waited in our buffer goes first, then the waiting senders
        if not link.paused:
            self._wake_senders()

    def _end_hold(self) -> None:
        self._hold.stop(asyncio.get_running_loop().time())

    def _write(self, data: bytes, deadline: float | None = None) -> None:
        """Buffer a frame; every frame of this loop turn leaves in one ``writelines`` at the
        turn's end.  One write instead of many: fewer syscalls, and fewer, fuller TCP segments
        into a broker whose socket buffers are small (ActiveMQ's defaults pin 64 KB).  A lone
        request waits only for the rest of the current turn (microseconds).  While the peer
        does not read, frames stay here (bounded by the senders' wait on
        ``send_buffer_limit``) and expire at their deadlines."""
        self._tx_activity = True
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)
        self._out_deadlines.append(deadline)
        self._out_bytes += len(data)
        if deadline is not None and (self._out_first is None or deadline < self._out_first):
            self._out_first = deadline

    def _flush(self) -> None:
        self._flush_scheduled = False
        link = self._link
        if not self._out or link is None or link.paused:
            return  # held: resume_writing flushes
        transport = link.transport
        if transport is None or transport.is_closing():
            return
        out = self._out
        first = self._out_first
        if first is not None and first <= asyncio.get_running_loop().time():
            out = self._drop_expired()
        self._out = []
        self._out_deadlines = []
        self._out_first = None
        self._stats.bytes_out += self._out_bytes
        self._out_bytes = 0
        if out:
            link.writelines(out)
            self._stats.writes += 1
        if not link.paused:
            self._wake_senders()

    def _drop_expired(self) -> list[bytes]:
        """The buffered frames whose deadline has not passed; the others are counted, gone."""
        now = asyncio.get_running_loop().time()
        kept: list[bytes] = []
        dropped = 0
        for frame, deadline in zip(self._out, self._out_deadlines, strict=True):
            if deadline is not None and deadline <= now:
                dropped += 1
                self._out_bytes -= len(frame)
            else:
                kept.append(frame)
        self._stats.expired_unsent += dropped
        log.debug("%s: %d frame(s) expired in our buffer, not written", self.display_url, dropped)
        return kept

    # -- heart-beats and the read watchdog ------------------------------------------------------

    def _start_timers(self, link: _Link, connected: Connected) -> None:
        self._stop_timers()
        loop = asyncio.get_running_loop()
        if connected.send_interval:  # half the agreed interval leaves room for a late tick
            period = connected.send_interval / 2000
            self._beat_timer = loop.call_later(period, self._beat, link, period)
        if connected.recv_interval:
            interval = connected.recv_interval
            self._watch_timer = loop.call_later(interval / 1000, self._watch, link, interval)

    def _stop_timers(self) -> None:
        for handle in (self._beat_timer, self._watch_timer):
            if handle is not None:
                handle.cancel()
        self._beat_timer = self._watch_timer = None

    def _beat(self, link: _Link, period: float) -> None:
        if link is not self._link:
            return
        transport = link.transport
        if (
            not self._tx_activity
            and not link.paused
            and transport is not None
            and not transport.is_closing()
        ):
            link.write(b"\n")
            self._stats.heartbeats_out += 1
        self._tx_activity = False
        self._beat_timer = asyncio.get_running_loop().call_later(period, self._beat, link, period)

    def _watch(self, link: _Link, interval_ms: int) -> None:
        """Declare the link dead after ~2 intervals of silence, whatever TCP believes."""
        if link is not self._link:
            return
        if link.rx_activity:
            self._missed_beats = 0
            link.rx_activity = False
        else:
            self._missed_beats += 1
            if self._missed_beats >= 2:
                link.abort(
                    ConnectionLost(
                        f"no data from {link.endpoint} for {2 * interval_ms} ms (half-open link?)"
                    )
                )
                return
        self._watch_timer = asyncio.get_running_loop().call_later(
            interval_ms / 1000, self._watch, link, interval_ms
        )

    # -- receipts ----------------------------------------------------------------------------------

    async def _request_receipt(self, receipt: str, frame: bytes, wait: float) -> None:
        """Write a frame that asks for a receipt and wait for it, at most ``wait`` seconds."""
        self._write(frame)
        await self._await_receipt(receipt, wait)

    async def _await_receipt(self, receipt: str, wait: float | None) -> None:
        """Wait at most ``wait`` seconds (None: for as long as the link lasts) for the
        receipt of a frame written this loop turn."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._receipts[receipt] = waiter
        try:
            await asyncio.wait_for(waiter, wait)
        finally:
            self._receipts.pop(receipt, None)
