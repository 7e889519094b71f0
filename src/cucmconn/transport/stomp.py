"""The native STOMP 1.2 transport: an ``asyncio.Protocol`` over the sans-IO ``StompSession``.

URLs: ``stomp://[user:pass@]host:61613``, ``stomp+ssl://host:61614?cafile=..&verify=false``,
``failover:(stomp://a:61613,stomp://b:61613)?randomize=false``.  Options (URL query or kwargs):
``heartbeat`` (ms), ``prefetch``, ``connect_timeout`` (s), ``reconnect`` (bool), ``max_backoff``
(s), ``send_buffer_limit`` (bytes), ``login``/``passcode``, ``ssl`` (an ``SSLContext``).

Why not aiostomp or stomp.py: the connector needs a SEND without ``content-length`` (else the
Java side gets a BytesMessage), a read watchdog that detects half-open links (aiostomp sends
heart-beats but never checks the broker's), receipts (aiostomp drops RECEIPT frames), a failover
list, bounded send buffers honouring ``pause_writing`` and no task per message.  stomp.py is
threaded.  The wire rules live in ``stompsession.py``; this module only moves bytes and runs the
timers (heart-beat, watchdog) and the reconnect loop.  Works on asyncio and uvloop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as _ssl
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, cast

from ..codec.text import BODY_ENCODINGS, encode_text
from ..errors import BrokerError, ConnectionLost, TransportError
from .backoff import Backoff
from .base import MessageHandler, TransportListener, expires_at
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
from .url import Endpoint, TransportURL

__all__ = ["StompOptions", "StompStats", "StompTransport"]

log = logging.getLogger("cucmconn.transport.stomp")

_TRUE = frozenset({"1", "true", "yes", "on"})
_MAX_LOGGED_KINDS = 64
# Read elsewhere (TLS set-up, parse_url) or ActiveMQ failover knobs with no meaning here.
_URL_ONLY_OPTIONS = frozenset(
    {
        "randomize",
        "priorityBackup",
        "cafile",
        "verify",
        "initialReconnectDelay",
        "timeout",
        "login",
        "passcode",
    }
)


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

    @classmethod
    def build(cls, given: Mapping[str, Any]) -> StompOptions:
        """Typed options from URL strings and kwargs; unknown keys are a clear error."""
        opts = cls()
        for key, raw in given.items():
            if not hasattr(opts, key):
                raise ValueError(f"unknown stomp transport option {key!r}")
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
        return opts


@dataclass
class StompStats:
    messages_in: int = 0
    messages_out: int = 0
    bytes_out: int = 0
    reconnects: int = 0
    disconnects: int = 0
    handler_errors: int = 0
    orphan_messages: int = 0
    heartbeats_in: int = 0
    heartbeats_out: int = 0
    broker_errors: int = 0
    sender_waits: int = 0


class _Link(asyncio.Protocol):
    """One TCP (or TLS) connection; forwards everything to its transport."""

    def __init__(self, owner: StompTransport, endpoint: Endpoint) -> None:
        self.owner = owner
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self.paused = False
        self.rx_activity = False
        self.reason: BaseException | None = None  # why we closed it ourselves
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[Connected] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but quack the same.
        self.transport = cast(asyncio.Transport, transport)
        limit = self.owner.options.send_buffer_limit
        self.transport.set_write_buffer_limits(high=limit, low=limit // 2)
        self.owner._on_link_made(self)

    def data_received(self, data: bytes) -> None:
        self.rx_activity = True
        self.owner._on_data(self, data)

    def eof_received(self) -> bool | None:
        return None  # close: a broker that half-closes is gone

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.owner._wake_senders()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.owner._on_link_lost(self, self.reason or exc)

    def abort(self, reason: BaseException) -> None:
        if self.reason is None:
            self.reason = reason
        if self.transport is not None:
            self.transport.abort()


class StompTransport:
    """The Transport interface over STOMP 1.2 to ActiveMQ, with heart-beats and failover."""

    def __init__(self, parsed: TransportURL, **options: Any) -> None:
        if not parsed.endpoints:
            raise ValueError("a stomp transport needs at least one endpoint")
        self._parsed = parsed
        merged: dict[str, Any] = {
            k: v for k, v in parsed.options.items() if k not in _URL_ONLY_OPTIONS
        }
        self._ssl_option = options.pop("ssl", None)
        # Credentials: kwargs, else the failover query, else the first endpoint's URL.
        login = options.pop("login", None) or parsed.options.get("login")
        passcode = options.pop("passcode", None) or parsed.options.get("passcode")
        merged.update(options)
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
        self._receipts: dict[str, asyncio.Future[None]] = {}
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._flush_scheduled = False
        self._tx_activity = False
        self._writable: asyncio.Event | None = None
        self._beat_timer: asyncio.TimerHandle | None = None
        self._watch_timer: asyncio.TimerHandle | None = None
        self._missed_beats = 0
        self._logged_kinds: set[type[BaseException]] = set()
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

    def __repr__(self) -> str:
        return f"StompTransport({self.display_url!r}, connected={self._connected})"

    def stats(self) -> dict[str, int]:
        out = asdict(self._stats)
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
        errors: list[str] = []
        for endpoint in self._parsed.endpoints:
            try:
                await self._open(endpoint)
                return
            except TransportError as exc:
                errors.append(str(exc))
                if isinstance(exc, BrokerError):  # the broker refused us: retrying will not help
                    raise
        raise TransportError(f"cannot connect to {self.display_url} ({'; '.join(errors)})")

    async def close(self) -> None:
        """Stop reconnecting, DISCONNECT with a receipt (waited for briefly), close; idempotent."""
        self._closing = True
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        link = self._link
        if link is None:
            return
        if self._connected:
            receipt, frame = self._session.disconnect_frame()
            with contextlib.suppress(TransportError, TimeoutError):
                await self._request_receipt(receipt, frame, min(1.0, self.options.receipt_timeout))
        self._connected = False
        if link.transport is not None:
            link.transport.close()
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
    ) -> None:
        """Queue one SEND; waits while the socket is paused or our buffer is full."""
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
            await self._wait_writable()
        elif not self._connected:
            self._require_connected()
        self._write(frame)
        self._stats.messages_out += 1

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
            link = _Link(self, endpoint)
            return link

        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(
                    factory,
                    endpoint.host,
                    endpoint.port,
                    ssl=ssl_ctx,
                    server_hostname=endpoint.host if ssl_ctx else None,
                )
                assert link is not None
                connected = await link.ready
            self._activate(link, connected)
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
        if isinstance(exc, _ssl.SSLError):
            reason = getattr(exc, "verify_message", None) or exc.reason or str(exc)
            return TransportError(f"{endpoint}: TLS handshake failed: {reason}")
        if isinstance(exc, OSError):
            return TransportError(f"{endpoint}: {exc.strerror or exc}")
        return exc  # cancellation and bugs pass through unchanged

    def _discard(self, link: _Link | None, why: str) -> None:
        if link is not None and link.transport is not None:
            link.abort(ConnectionLost(why))

    def _activate(self, link: _Link, connected: Connected) -> None:
        if link.closed.done():  # lost between CONNECTED and here
            raise ConnectionLost(f"{link.endpoint}: closed right after CONNECTED")
        self._link = link
        self._connected = True
        self._missed_beats = 0
        for frame in self._session.resubscribe_frames():
            self._write(frame)
        self._start_timers(link, connected)
        self._wake_senders()
        log.info(
            "connected to %s (%s, heart-beat send %sms / expect %sms)",
            link.endpoint,
            connected.server or "unknown server",
            connected.send_interval,
            connected.recv_interval,
        )

    # -- link callbacks ----------------------------------------------------------------------------

    def _on_link_made(self, link: _Link) -> None:
        assert link.transport is not None
        link.transport.write(self._session.connect_frame())

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
        kind = type(exc)
        if kind in self._logged_kinds:
            return
        if len(self._logged_kinds) < _MAX_LOGGED_KINDS:
            self._logged_kinds.add(kind)
        log.error(
            "handler for %s raised %s (further %s are counted, not logged)",
            delivery.subscription.destination,
            kind.__name__,
            kind.__name__,
            exc_info=exc,
        )

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
                else TransportError("connection closed before CONNECTED")
            )
            link.ready.exception()  # mark retrieved: nobody may await a discarded attempt
        if link is not self._link:
            return
        self._link = None
        was_connected = self._connected
        self._connected = False
        self._stop_timers()
        self._out.clear()
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
        log.warning("%s", lost)
        self._notify("connection_lost", exc if exc is not None else lost)
        if self.options.reconnect:
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect_loop())

    def _notify(self, what: str, *args: Any) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            getattr(listener, what)(*args)
        except Exception:
            log.exception("transport listener %s raised", what)

    async def _reconnect_loop(self) -> None:
        backoff = Backoff(self.options.initial_backoff, self.options.max_backoff)
        while not self._closing:
            for endpoint in self._parsed.endpoints:
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
            await asyncio.sleep(backoff.next())

    # -- writing and flow control ---------------------------------------------------------------

    def _require_connected(self) -> None:
        if not self._connected:
            why = "reconnecting" if self._reconnect_task is not None else "not connected"
            raise ConnectionLost(f"{self.display_url}: {why}")

    async def _wait_writable(self) -> None:
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
            await self._writable.wait()

    def _wake_senders(self) -> None:
        if self._writable is not None:
            self._writable.set()

    def _write(self, data: bytes) -> None:
        """The first write of a loop tick goes out at once (a lone request pays no extra
        latency); the rest of the tick's writes are coalesced into one ``writelines``."""
        self._tx_activity = True
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
            link = self._link
            if link is not None and link.transport is not None and not link.transport.is_closing():
                link.transport.write(data)
                self._stats.bytes_out += len(data)
                return
        self._out.append(data)
        self._out_bytes += len(data)

    def _flush(self) -> None:
        self._flush_scheduled = False
        link = self._link
        out = self._out
        if not out:
            return
        self._out = []
        self._stats.bytes_out += self._out_bytes
        self._out_bytes = 0
        if link is None or link.transport is None or link.transport.is_closing():
            return
        link.transport.writelines(out)
        if not link.paused:
            self._wake_senders()

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
        if not self._tx_activity and link.transport is not None and not link.transport.is_closing():
            link.transport.write(b"\n")
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
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._receipts[receipt] = waiter
        self._write(frame)
        try:
            await asyncio.wait_for(waiter, wait)
        finally:
            self._receipts.pop(receipt, None)
