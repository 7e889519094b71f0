"""The Transport interface over the ``aiostomp`` package (``aiostomp://host:61613``).

Kept as a peer of the native transport at the product owner's request, so a deployment that
already trusts aiostomp can use it.  The adapter repairs what would break the connector:

1. ``AioStomp.send`` adds ``content-length`` by default, which makes ActiveMQ deliver a JMS
   BytesMessage the connector cannot read: every send passes ``send_content_length=False``.
2. ``AioStomp`` binds ``asyncio.get_event_loop()`` in its constructor: it is built in
   :meth:`AiostompTransport.connect`, inside the running loop.
3. Handlers run in one task each and their exceptions are lost: handlers are wrapped so an
   exception is logged (once per kind) and counted, like the native transport does.
4. ``connect()`` returns once TCP is up, before CONNECTED, and retries forever when the broker
   is down or refuses the credentials: the adapter waits for CONNECTED (or an ERROR frame, which
   becomes ``BrokerError``) with a timeout and makes the first connect a single attempt.
5. Its reconnect task is never cancelled by ``close()``: the adapter keeps and cancels it.
   It reconnects after every loss, ``reconnect=false`` or not, and at once whenever TCP
   connects, so a broker that accepts and then closes (ActiveMQ refusing a log-in now and
   then without its ERROR, or at ``maximumConnections``) was reconnected to thousands of times
   a second: the adapter decides whether to reconnect, backs off (capped, with jitter) after
   a link that closed before CONNECTED, and makes ``connect()`` try such a broker at most
   ``EARLY_CLOSE_ATTEMPTS`` times (``transport.base.connect_attempts``).
6. RECEIPT frames are dropped with a warning: the adapter handles them, so ``subscribe`` and
   ``close`` (DISCONNECT) wait for the broker's receipt as on the native transport.

Shortcomings that remain (use ``stomp://`` when they matter):

- its parser walks the input byte by byte through deques (~13,000 frames/s here, an order of
  magnitude below the native codec), keeps the *last* of repeated headers, does not unescape
  header names and accepts 100 MiB bodies;
- it sends heart-beats but never checks the broker's, so a half-open link goes unnoticed until
  TCP gives up (minutes);
- no flow control of its own: its protocol ignores ``pause_writing``; the adapter's reader
  hooks it, so ``send`` waits while the broker does not read (and honours its deadline);
- one write per frame, no coalescing: the adapter sets TCP_NODELAY and re-arms TCP_QUICKACK on
  its socket (``tcp.py``) for sequential latency, but cannot batch a turn's frames;
- it escapes CONNECT header values, so a passcode holding ``:`` or ``\\`` reaches the
  broker mangled;
- STOMP 1.1 only, one broker (no failover list), one task per received message, and the adapter
  reaches into private attributes, so it is pinned to aiostomp 1.7.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from aiostomp.aiostomp import AioStomp, StompProtocol, StompReader
from aiostomp.errors import ExceededRetryCount, StompError

from ..codec.text import encode_text
from ..errors import BrokerError, ClosedBeforeConnected, ConnectionLost, TransportError
from .backoff import Backoff
from .base import (
    HandlerFailures,
    HoldClock,
    Message,
    MessageHandler,
    TransportListener,
    connect_attempts,
    expires_at,
    loop_time,
    notify_listener,
    send_headers,
)
from .tcp import set_quickack, tune_socket
from .url import TransportURL

__all__ = ["AiostompTransport"]

log = logging.getLogger("cucmconn.transport.aiostomp")

_TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass
class _Stats:
    messages_in: int = 0
    messages_out: int = 0
    reconnects: int = 0
    disconnects: int = 0
    handler_errors: int = 0
    broker_errors: int = 0
    sender_waits: int = 0
    send_timeouts: int = 0
    flow_control_pauses: int = 0


class _Reader(StompReader):  # type: ignore[misc]  # aiostomp ships no type information
    """aiostomp's protocol plus what it lacks: socket tuning, TCP_QUICKACK re-armed on each
    read, and ``pause_writing``/``resume_writing`` reported to the adapter."""

    def __init__(self, adapter: AiostompTransport, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._adapter = adapter
        self._sock: Any = None
        self._lost = False

    def connection_made(self, transport: Any) -> None:
        # As the native transport: asyncio pauses us as soon as the kernel refuses bytes, so a
        # frame waits in ``send`` (where its deadline holds), not in asyncio's buffer.
        # Not over TLS: asyncio's SSL layer would never resume us (see stomp.py, _Link).
        if transport.get_extra_info("sslcontext") is None:
            transport.set_write_buffer_limits(high=0, low=0)
        self._sock = tune_socket(transport) if self._adapter.tcp_quickack else None
        super().connection_made(transport)  # writes CONNECT

    def data_received(self, data: bytes) -> None:
        if self._sock is not None:
            set_quickack(self._sock)
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        # aiostomp reports a loss in eof_received and asyncio again here: report it once.
        if self._lost:
            return
        self._lost = True
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        self._adapter._on_pause(self)

    def resume_writing(self) -> None:
        self._adapter._on_resume(self)


class _Protocol(StompProtocol):  # type: ignore[misc]  # aiostomp ships no type information
    """StompProtocol whose readers are handed to the adapter the moment they are built.

    Patching the reader after ``create_connection`` returns races with a fast broker: its
    CONNECTED can be dispatched before the patch.  This repeats aiostomp 1.7's ``connect``.
    """

    def __init__(self, adapter: AiostompTransport, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._adapter = adapter

    async def connect(self, username: str | None = None, password: str | None = None) -> None:
        def make_reader() -> StompReader:
            reader = _Reader(
                self._adapter,
                self._handler,
                username=username,
                password=password,
                client_id=self.client_id,
                loop=self._loop,
                heartbeat=self._heartbeat,
                stats=self._stats,
            )
            self._adapter._on_link(reader)
            return reader

        try:
            transport, reader = await self._loop.create_connection(
                make_reader, host=self.host, port=self.port, ssl=self.ssl_context
            )
        except OSError as exc:  # AioStomp swallows it; keep it so connect() can say why
            self._adapter._last_error = exc
            raise
        self._transport = transport
        self._protocol = reader


class _Client(AioStomp):  # type: ignore[misc]
    """AioStomp with its loss and reconnect events routed to the adapter."""

    def __init__(self, adapter: AiostompTransport, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._adapter = adapter
        self.reconnect_task: asyncio.Future[None] | None = None
        self._protocol = _Protocol(
            adapter,
            self,
            kwargs["host"],
            kwargs["port"],
            heartbeat=self._heartbeat,
            ssl_context=kwargs.get("ssl_context"),
            stats=self._stats,
            loop=self._loop,
        )

    def connection_lost(self, exc: Exception | None) -> None:
        # Replaces AioStomp's: the adapter says whether and when to reconnect, and the task
        # is kept (and cancellable by close()).
        self._connected = False
        delay = self._adapter._on_lost(exc)
        if delay is None or self._closed or self._is_retrying:
            return
        self.reconnect_task = asyncio.ensure_future(self._reconnect_after(delay))

    async def _reconnect_after(self, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        await self._reconnect()


class AiostompTransport:
    """The Transport interface over ``aiostomp.AioStomp``."""

    def __init__(self, parsed: TransportURL, **options: Any) -> None:
        if len(parsed.endpoints) != 1:
            raise ValueError("aiostomp:// takes exactly one broker (it has no failover)")
        self._parsed = parsed
        self._endpoint = parsed.endpoints[0]
        opts: dict[str, Any] = {**parsed.options, **options}
        self._ssl = opts.pop("ssl", None)
        self._login: str | None = opts.pop("login", None) or self._endpoint.login
        self._passcode: str | None = opts.pop("passcode", None) or self._endpoint.passcode
        self.heartbeat = int(opts.pop("heartbeat", 10_000))
        self.prefetch = int(opts.pop("prefetch", 1000))
        self.connect_timeout = float(opts.pop("connect_timeout", 10.0))
        self.receipt_timeout = float(opts.pop("receipt_timeout", 5.0))
        # Accepted for old URLs; the adapter now waits whenever the broker stops reading.
        opts.pop("send_buffer_limit", None)
        self.reconnect = str(opts.pop("reconnect", "true")).lower() in _TRUE
        self.body_encoding = str(opts.pop("body_encoding", "cesu-8"))
        self.tcp_quickack = str(opts.pop("tcp_quickack", "true")).lower() in _TRUE
        encode_text("", self.body_encoding)  # an unknown encoding fails here, not at first send
        opts.pop("cafile", None)
        opts.pop("verify", None)
        if opts:
            raise ValueError(f"unknown aiostomp transport option(s): {', '.join(sorted(opts))}")
        self._client: _Client | None = None
        self._reader: Any = None
        self._up = False
        self._was_lost = False
        self._ready: asyncio.Future[None] | None = None
        self._receipts: dict[str, asyncio.Future[None]] = {}
        self._receipt_ids = itertools.count(1)
        self._subs: dict[str, Any] = {}
        self._listener: TransportListener | None = None
        self._stats = _Stats()
        self._handler_failures = HandlerFailures()
        self._closing = False
        self._last_error: OSError | None = None
        self._paused_reader: Any = None  # the reader asyncio paused, while paused
        self._writable: asyncio.Event | None = None
        self._hold = HoldClock()  # on loop time
        # Between reconnects whose link closed before CONNECTED; reset by CONNECTED.
        self._backoff = Backoff()

    # -- public surface ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._up

    @property
    def display_url(self) -> str:
        return self._parsed.display()

    def __repr__(self) -> str:
        return f"AiostompTransport({self.display_url!r}, connected={self._up})"

    @property
    def write_blocked(self) -> bool:
        """True while asyncio has paused our writing (the broker does not read)."""
        return self._paused_reader is not None and self._paused_reader is self._reader

    @property
    def flow_control_held(self) -> float:
        """Seconds spent with writing blocked by the broker, in total (the current block too)."""
        return self._hold.held(loop_time)

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self._stats)
        out["flow_control_held"] = round(self._hold.total, 3)
        return out

    def set_listener(self, listener: TransportListener | None) -> None:
        self._listener = listener

    async def connect(self) -> None:
        """Connect and wait for CONNECTED: TransportError (BrokerError for an ERROR frame) on
        failure; a broker that closes before CONNECTED is tried again (``connect_attempts``)."""
        if self._up:
            return
        await connect_attempts(self._attempt, log, self.display_url)

    async def _attempt(self) -> None:
        """One client, one connection: up once CONNECTED arrives."""
        self._closing = False
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        hb = self.heartbeat
        client = self._client = _Client(
            self,
            host=self._endpoint.host,
            port=self._endpoint.port,
            ssl_context=self._ssl_context(),
            reconnect_max_attempts=0,  # the first connect is one attempt; see _should_retry
            heartbeat=hb > 0,
            heartbeat_interval_cx=hb,
            heartbeat_interval_cy=hb,
            error_handler=self._on_error,
            loop=loop,
        )
        try:
            async with asyncio.timeout(self.connect_timeout):
                await client.connect(username=self._login, password=self._passcode)
                if not client._connected and not self._ready.done():
                    raise TransportError(f"{self.display_url}: {self._describe_last_error()}")
                await self._ready
        except BaseException as exc:
            await self._shutdown()
            if isinstance(exc, TimeoutError):
                raise TransportError(
                    f"{self.display_url}: no CONNECTED within {self.connect_timeout:g}s"
                ) from None
            if isinstance(exc, OSError):
                raise TransportError(f"{self.display_url}: {exc.strerror or exc}") from None
            raise
        client._reconnect_max_attempts = -1 if self.reconnect else 0

    async def close(self) -> None:
        client = self._client
        if client is None:
            return
        self._closing = True
        if self._up and self._reader is not None:
            receipt = f"close-{next(self._receipt_ids)}"
            with contextlib.suppress(TransportError, TimeoutError, Exception):
                await self._request_receipt(
                    receipt,
                    lambda: self._reader.send_frame("DISCONNECT", {"receipt": receipt}),
                    min(1.0, self.receipt_timeout),
                )
        await self._shutdown()

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
        """One SEND without ``content-length``; waits while the broker does not read.

        ``deadline`` (``loop.time()`` seconds): TimeoutError, nothing written, when it passes
        first.  Cancelled, nothing is written.
        """
        out = send_headers(
            headers,
            jms_type=jms_type,
            correlation_id=correlation_id,
            reply_to=reply_to,
            expires=expires_at(ttl),
            persistent=persistent,
        )
        data = encode_text(body, self.body_encoding)
        if b"\x00" in data:
            raise ValueError("a text body cannot contain NUL (it would end the STOMP frame)")
        if self.write_blocked or not self._up:
            await self._wait_writable(deadline)
        if deadline is not None and asyncio.get_running_loop().time() >= deadline:
            self._stats.send_timeouts += 1
            raise TimeoutError(f"{self.display_url}: send deadline passed before writing")
        self._require_client()
        assert self._client is not None
        # The whole point of this adapter: no content-length, so ActiveMQ makes a TextMessage.
        self._client.send(destination, data, headers=out, send_content_length=False)
        self._stats.messages_out += 1

    async def subscribe(
        self, destination: str, handler: MessageHandler, *, prefetch: int | None = None
    ) -> str:
        client = self._require_client()
        receipt = f"sub-{next(self._receipt_ids)}"
        extra = {"activemq.prefetchSize": str(prefetch or self.prefetch), "receipt": receipt}
        subscription: Any = None

        def write() -> None:
            nonlocal subscription
            subscription = client.subscribe(
                destination,
                ack="auto",
                extra_headers=extra,
                handler=self._wrap(destination, handler),
            )

        try:
            await self._request_receipt(receipt, write, self.receipt_timeout)
        except TimeoutError:
            log.warning("%s: no receipt for SUBSCRIBE %s", self.display_url, destination)
        extra.pop("receipt", None)  # not re-sent when aiostomp resubscribes after a reconnect
        sub_id = str(subscription.id)
        self._subs[sub_id] = subscription
        return sub_id

    async def unsubscribe(self, subscription_id: str) -> None:
        subscription = self._subs.pop(subscription_id, None)
        if subscription is not None and self._client is not None:
            with contextlib.suppress(Exception):  # aiostomp raises bare errors when offline
                self._client.unsubscribe(subscription)

    # -- internals ---------------------------------------------------------------------------------

    def _ssl_context(self) -> Any:
        if not self._endpoint.ssl:
            return None
        if self._ssl is not None:
            return self._ssl
        ctx = ssl.create_default_context(cafile=self._endpoint.options.get("cafile"))
        if self._endpoint.options.get("verify", "true").lower() not in _TRUE:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _describe_last_error(self) -> str:
        exc = self._last_error
        if exc is None:
            return "connection failed"
        if isinstance(exc, ssl.SSLError):
            reason = getattr(exc, "verify_message", None) or exc.reason or str(exc)
            return f"TLS handshake failed: {reason}"
        return exc.strerror or str(exc)

    def _require_client(self) -> _Client:
        if not self._up or self._client is None:
            raise ConnectionLost(f"{self.display_url}: not connected")
        return self._client

    async def flush(self) -> None:
        """Wait for the broker's receipt of a barrier behind what was sent (see
        ``Transport.flush`` and ``StompSession.barrier_frames``)."""
        if not self._up or self._reader is None:
            raise TransportError(f"{self.display_url}: not connected")
        reader = self._reader
        receipt = f"barrier-{next(self._receipt_ids)}"

        def write() -> None:
            reader.send_frame("BEGIN", {"transaction": receipt, "receipt": receipt})
            reader.send_frame("ABORT", {"transaction": receipt})

        await self._request_receipt(receipt, write, None)

    async def switch_broker(self, reason: str) -> bool:
        """Always False: aiostomp:// takes exactly one broker."""
        return False

    async def _wait_writable(self, deadline: float | None) -> None:
        """Wait until asyncio resumes our writing (or the deadline: TimeoutError)."""
        while True:
            self._require_client()
            if not self.write_blocked:
                return
            self._stats.sender_waits += 1
            if self._writable is None:
                self._writable = asyncio.Event()
            self._writable.clear()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._writable.wait()
            except TimeoutError:
                self._stats.send_timeouts += 1
                raise TimeoutError(
                    f"{self.display_url}: link blocked by the broker until the send deadline"
                ) from None

    def _on_pause(self, reader: Any) -> None:
        self._paused_reader = reader
        self._stats.flow_control_pauses += 1
        self._hold.start(asyncio.get_running_loop().time())

    def _on_resume(self, reader: Any) -> None:
        if self._paused_reader is reader:
            self._paused_reader = None
        self._end_hold()

    def _end_hold(self) -> None:
        self._hold.stop(asyncio.get_running_loop().time())
        if self._writable is not None:
            self._writable.set()

    async def _request_receipt(
        self, receipt: str, write: Callable[[], None], wait: float | None
    ) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._receipts[receipt] = waiter
        try:
            write()
            await asyncio.wait_for(waiter, wait)
        finally:
            self._receipts.pop(receipt, None)

    def _wrap(
        self, destination: str, handler: MessageHandler
    ) -> Callable[[Any, Any], Awaitable[None]]:
        async def on_frame(frame: Any, body: bytes | None) -> None:
            headers = frame.headers
            self._stats.messages_in += 1
            try:
                handler(Message(headers.get("destination", ""), body or b"", headers))
            except Exception as exc:  # aiostomp would lose it in a task nobody awaits
                self._handler_failed(destination, exc)

        return on_frame

    def _handler_failed(self, destination: str, exc: Exception) -> None:
        self._stats.handler_errors += 1
        self._handler_failures.log(log, destination, exc)

    def _on_link(self, reader: Any) -> None:
        """A new StompReader: route CONNECTED and RECEIPT to us (aiostomp drops RECEIPT)."""
        self._reader = reader
        original = reader.handlers_map["CONNECTED"]

        async def on_connected(frame: Any) -> None:
            # aiostomp would start a heart-beat task on a link closed meanwhile (its close()
            # keeps ``_transport``), which then fails on uvloop: ignore a late CONNECTED.
            transport = reader._transport
            if self._closing or transport is None or transport.is_closing():
                return
            await original(frame)
            self._on_connected()

        async def on_receipt(frame: Any) -> None:
            waiter = self._receipts.pop(frame.headers.get("receipt-id", ""), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

        reader.handlers_map["CONNECTED"] = on_connected
        reader.handlers_map["RECEIPT"] = on_receipt

    def _on_connected(self) -> None:
        self._up = True
        self._backoff.reset()
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)
        if self._was_lost:
            self._was_lost = False
            self._stats.reconnects += 1
            self._notify("connection_restored")

    def _on_lost(self, exc: Exception | None) -> float | None:
        """A link closed: how long aiostomp should wait before it reconnects (None: it must
        not).  A link that closes before CONNECTED fails ``connect()``'s attempt, or, while
        reconnecting, backs off."""
        if not self._up:
            ready = self._ready
            if ready is not None and not ready.done():
                ready.set_exception(
                    ClosedBeforeConnected(f"{self.display_url}: closed before CONNECTED")
                )
                return None
            if self._closing or not self._was_lost:
                return None
            delay = self._backoff.next()
            log.info("%s closed before CONNECTED; reconnecting in %.2fs", self.display_url, delay)
            return delay
        self._up = False
        self._paused_reader = None
        self._end_hold()  # wakes blocked senders: they fail with ConnectionLost
        lost = ConnectionLost(f"connection to {self.display_url} lost: {exc or 'closed'}")
        for waiter in self._receipts.values():
            if not waiter.done():
                waiter.set_exception(lost)
        if self._closing:
            return None
        self._was_lost = True
        self._stats.disconnects += 1
        log.warning("%s", lost)
        self._notify("connection_lost", exc if exc is not None else lost)
        return 0.0 if self.reconnect else None

    async def _on_error(self, error: Exception) -> None:
        if isinstance(error, ExceededRetryCount):
            return  # the first connect's single attempt failed; connect() reports it
        if isinstance(error, StompError):
            self._stats.broker_errors += 1
            message = str(error) or "broker error"
            detail = error.detail.decode("utf-8", "replace") if error.detail else ""
            broker_error = BrokerError(message, detail.strip().splitlines()[0] if detail else "")
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(broker_error)

    def _notify(self, what: str, *args: Any) -> None:
        notify_listener(log, self._listener, what, *args)

    async def _shutdown(self) -> None:
        client, self._client = self._client, None
        self._closing = True
        self._up = False
        if client is None:
            return
        client.close()
        task = client.reconnect_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._reader = None
        if self._ready is not None and not self._ready.done():
            self._ready.cancel()
