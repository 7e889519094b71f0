"""The Transport interface over the ``stomp.py`` package (``stomppy://host:61613``).

A peer of the native transport, measured beside it (issue 13's client-CPU row), and usable by a
deployment that already trusts stomp.py.  stomp.py is threaded and synchronous: per connection
one receiver thread reads, parses and calls listeners, and ``send`` writes with a blocking
``sendall`` in the caller's thread.  The adapter repairs what would break the connector or the
event loop:

1. ``send`` adds ``content-length`` by default, which makes ActiveMQ deliver a JMS BytesMessage
   the connector cannot read: the connection is built with ``auto_content_length=False``.
2. Listeners run on stomp.py's receiver thread: the adapter hands messages, receipts, errors and
   the loss of the link to the event loop in order, one ``call_soon_threadsafe`` per burst,
   through a bounded inbox (``inbox_limit`` messages).  When the loop falls behind, the receiver
   thread waits, so TCP pushes back on the broker instead of a queue growing without end.
   Handlers run on the loop, as on the other transports; one that raises is logged (once per
   kind) and counted.
3. A blocking ``sendall`` on the loop would stall it while the broker does not read: frames go
   through a bounded outbox (``send_buffer_limit`` bytes; once full, senders wait until it has
   drained below half) to one writer thread per link.  The
   writer drops a frame whose deadline has passed instead of writing it late, and polls the
   socket before each write, so a link the broker stopped reading is reported
   (``write_blocked``, ``flow_control_held``) and senders wait, at most until their deadline.
4. ``connect(wait=True)`` waits without a bound and fails without saying why: the adapter waits
   for CONNECTED (or an ERROR frame, which becomes ``BrokerError``) within ``connect_timeout``.
   stomp.py keeps the socket timeout it connected with for every read, where it would make an
   idle link look closed: the adapter clears it once TCP is up.
5. No reconnect after a lost link (only retries inside ``connect``): the adapter reconnects on
   the loop with back-off, re-issues the subscriptions (waiting for the receipt of the last
   one), and tells the listener ``connection_lost`` then ``connection_restored``.
6. Its DEBUG log of sent frames means to mask ``passcode`` but does not (its pattern wants a
   space after the colon): a filter on its logger (``stomp.py``) masks it.
7. Neither TCP_NODELAY nor TCP_QUICKACK: the adapter sets both (``tcp.py``), re-arming
   QUICKACK once per burst received, and turns off ``prefer_localhost`` and
   ``try_loopback_connect`` so it connects where the URL says.
8. Header values are escaped (STOMP 1.2), header names are not: a name stomp.py would garble
   (``:``, CR, LF, ``\\``) or a NUL anywhere in a header or the body is refused with
   ValueError before anything is written.

Shortcomings that remain (use ``stomp://`` when they matter):

- CPU: the receiver, the writer and stomp.py's heart-beat thread contend with the loop for the
  GIL; stomp.py parses with regular expressions, copies every frame's headers, fans every frame
  out to its listeners and writes each frame with its own ``sendall`` (no coalescing).  About
  3.5 times native's CPU per command in ``cucmconn load`` (``client-cpu-stomppy`` in
  benchmarks/bench_load.py: 98-103 us against 27-31 us on 2026-12-01).
- No bound on a frame's size: stomp.py buffers a frame whole, however large.
- ``stomppy+ssl://`` is refused: over TLS stomp.py hands writes to an unbounded queue of its own
  receiver thread, where neither a deadline nor flow control could be honoured.
- One broker (no failover list): ``switch_broker`` returns False.
- The deadline is checked just before ``sendall``, after the writer polled the socket for room;
  a frame larger than the room the kernel reported can still block inside ``sendall``.  Until
  that write completes ``write_blocked`` stays False (senders still wait on the full outbox, at
  most until their deadlines).  ``select.poll`` also means no Windows.
- When a connection attempt fails stomp.py logs the reason (its ``stomp.py`` logger) and raises
  without it: the TransportError cannot tell refused from unreachable.
- stomp.py logs whole frames, bodies included, at DEBUG on its own logger.
- Besides its documented API the adapter uses ``conn.transport.socket`` and ``io_thread`` and
  ``override_threading``; tested with stomp.py 9.0.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import stomp
from stomp.exception import ConnectFailedException, StompException

from ..codec.text import BODY_ENCODINGS, encode_text
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
from .tcp import set_quickack, tune_tcp_socket
from .url import Endpoint, TransportURL, parse_flag

__all__ = ["StompPyStats", "StompPyTransport"]

log = logging.getLogger("cucmconn.transport.stomppy")

_FRAME_OVERHEAD = 64  # bytes counted per frame beyond its body, so empty bodies still count
_POLL_MS = 100  # how often a blocked writer or a full inbox looks whether the link is stopping
_JOIN_TIMEOUT = 2.0
# STOMP 1.2 header names stomp.py writes unescaped: these characters would end or split them.
_BAD_NAME = re.compile(r"[:\r\n\\\x00]")

# Inbox entries: (kind, a, b).  Messages are the bulk; the rest keep their order among them.
_MESSAGE, _RECEIPT, _CONNECTED, _ERROR, _LOST = range(5)


@dataclass
class StompPyStats:
    """Counters of a :class:`StompPyTransport` (``stats()``)."""

    messages_in: int = 0
    messages_out: int = 0
    reconnects: int = 0
    disconnects: int = 0
    handler_errors: int = 0
    broker_errors: int = 0
    orphan_messages: int = 0  # messages for a subscription no longer ours (unsubscribed)
    sender_waits: int = 0
    send_timeouts: int = 0  # sends refused because their deadline passed before writing
    expired_unsent: int = 0  # frames the writer dropped because their deadline passed
    flow_control_pauses: int = 0  # times the writer found the socket not writable
    inbox_waits: int = 0  # times stomp.py's receiver waited for the loop to drain the inbox
    wakeups: int = 0  # bursts handed to the loop (one call_soon_threadsafe each)


class _RedactPasscode(logging.Filter):
    """Masks the passcode in stomp.py's DEBUG "sending frame" lines (its own mask misses it):
    everything from ``passcode:`` on, since a passcode may hold any quote or backslash."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            text = record.getMessage()
            at = text.find("passcode:")
            if at >= 0:
                record.msg = text[:at] + "passcode:******** (rest of the frame not shown)"
                record.args = None
        return True


_REDACT = _RedactPasscode()


def _install_redaction() -> None:
    logger = logging.getLogger("stomp.py")
    if _REDACT not in logger.filters:
        logger.addFilter(_REDACT)


class _Options:
    """The adapter's options from the URL query and keyword arguments (keywords win)."""

    def __init__(self, given: dict[str, Any]) -> None:
        def number(name: str, default: float, minimum: float) -> float:
            raw = given.pop(name, default)
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise ValueError(f"stomppy option {name} must be a number, not {raw!r}") from None
            if not value >= minimum:
                raise ValueError(f"stomppy option {name} must be >= {minimum:g}, not {raw!r}")
            return value

        def flag(name: str, default: bool) -> bool:
            raw = given.pop(name, default)
            return raw if isinstance(raw, bool) else parse_flag(name, str(raw))

        self.heartbeat = int(number("heartbeat", 10_000, 0))
        self.prefetch = int(number("prefetch", 1000, 1))
        self.connect_timeout = number("connect_timeout", 10.0, 0.001)
        self.receipt_timeout = number("receipt_timeout", 5.0, 0.001)
        self.reconnect = flag("reconnect", True)
        self.initial_backoff = number("initial_backoff", 0.1, 0.001)
        self.max_backoff = number("max_backoff", 30.0, self.initial_backoff)
        self.send_buffer_limit = int(number("send_buffer_limit", 1024 * 1024, 1024))
        self.inbox_limit = int(number("inbox_limit", 10_000, 1))
        self.tcp_quickack = flag("tcp_quickack", True)
        self.body_encoding = str(given.pop("body_encoding", "cesu-8"))
        if self.body_encoding not in BODY_ENCODINGS:
            raise ValueError(f"body_encoding must be one of {BODY_ENCODINGS}")


class _Receiver:
    """What stomp.py's receiver thread calls: each frame becomes an inbox entry of its link."""

    def __init__(self, link: _Link) -> None:
        self._link = link

    def on_connected(self, frame: Any) -> None:
        self._link.push((_CONNECTED, None, None), bounded=False)

    def on_message(self, frame: Any) -> None:
        headers = frame.headers
        body = frame.body
        message = Message(headers.get("destination", ""), body if body else b"", headers)
        self._link.push((_MESSAGE, headers.get("subscription", ""), message), bounded=True)

    def on_receipt(self, frame: Any) -> None:
        self._link.push((_RECEIPT, frame.headers.get("receipt-id", ""), None), bounded=False)

    def on_error(self, frame: Any) -> None:
        headers = frame.headers
        detail = frame.body.decode("utf-8", "replace").strip() if frame.body else ""
        error = BrokerError(
            headers.get("message") or "broker error", detail.splitlines()[0] if detail else ""
        )
        self._link.push((_ERROR, error, headers.get("receipt-id")), bounded=False)

    def on_heartbeat_timeout(self) -> None:
        self._link.push((_LOST, ConnectionLost("no heart-beat from the broker"), None), False)

    def on_disconnected(self) -> None:
        self._link.push((_LOST, None, None), bounded=False)

    # Called for every frame; present so that stomp.py neither logs nor raises over them.
    def on_send(self, frame: Any) -> None:
        pass

    def on_before_message(self, frame: Any) -> None:
        pass

    def on_heartbeat(self) -> None:
        pass

    def on_connecting(self, host_and_port: Any) -> None:
        pass

    def on_receiver_loop_completed(self, frame: Any) -> None:
        pass


# What the writer thread runs: (call, args, kwargs, deadline on time.monotonic() or None, size).
_Item = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], float | None, int]


class _Link:
    """One stomp.py connection, and the two bounded queues that bridge its threads to the loop.

    Thread-side only: the owner's loop-side callbacks are scheduled with
    ``call_soon_threadsafe`` (``deliver`` once per burst of inbox entries, ``paused``/
    ``resumed`` around a write the socket is not ready for, ``space`` when the outbox drains
    below its limit while a sender waits).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        options: _Options,
        loop: asyncio.AbstractEventLoop,
        *,
        deliver: Callable[[_Link], None],
        paused: Callable[[_Link], None],
        resumed: Callable[[_Link], None],
        space: Callable[[], None],
    ) -> None:
        self.endpoint = endpoint
        self._loop = loop
        self._deliver = deliver
        self._paused = paused
        self._resumed = resumed
        self._space = space
        self._quickack = options.tcp_quickack
        self._inbox_limit = options.inbox_limit
        self._out_limit = options.send_buffer_limit
        hb = options.heartbeat
        self.conn: Any = stomp.StompConnection12(
            [(endpoint.host, endpoint.port)],
            prefer_localhost=False,
            try_loopback_connect=False,
            reconnect_attempts_max=1,
            timeout=options.connect_timeout,  # for the TCP connect; cleared afterwards
            heartbeats=(hb, hb),
            heart_beat_receive_scale=2.0,  # as the native transport: dead after ~2 intervals
            auto_decode=False,
            auto_content_length=False,
        )
        self.conn.transport.override_threading(self._spawn_receiver)
        self.conn.set_listener("cucmconn", _Receiver(self))
        self.ready: asyncio.Future[None] = loop.create_future()
        self.stopping = False
        self._rearm: Any = None  # the socket to re-arm TCP_QUICKACK on, if any
        self._poll = select.poll()
        # inbox: receiver thread -> loop
        self._in_cond = threading.Condition()
        self._inbox: list[tuple[int, Any, Any]] = []
        self._wake_pending = False
        self._in_full = False
        self.inbox_waits = 0
        self.wakeups = 0
        # outbox: loop -> writer thread
        self._out_cond = threading.Condition()
        self._outbox: deque[_Item] = deque()
        self.out_bytes = 0
        self._full = False  # set at the limit, cleared below half of it (hysteresis)
        self._writer_idle = False
        self._senders_waiting = False
        self.expired_unsent = 0
        self.flow_control_pauses = 0
        self._writer = threading.Thread(
            target=self._write_loop, name=f"stomppy-writer-{endpoint.port}", daemon=True
        )

    # -- connecting (a worker thread) --------------------------------------------------------------

    def start(self, login: str | None, passcode: str | None) -> None:
        """TCP connect, start stomp.py's receiver and our writer, write CONNECT (blocking)."""
        self.conn.connect(username=login, passcode=passcode, wait=False, with_connect_command=True)
        with self._out_cond:
            stopping = self.stopping
            if not stopping:
                self._writer.start()
        if stopping:  # given up while we connected: do not leave the connection behind
            self.teardown()

    def _spawn_receiver(self, run: Callable[[], None]) -> threading.Thread:
        """stomp.py's receiver thread, made once TCP is up (``override_threading``)."""
        sock = self.conn.transport.socket
        if sock is not None:
            sock.settimeout(None)  # its connect timeout would make an idle read "closed"
            self._rearm = tune_tcp_socket(sock, quickack=self._quickack)
            self._poll.register(sock.fileno(), select.POLLOUT)
        thread = threading.Thread(
            target=run, name=f"stomppy-receiver-{self.endpoint.port}", daemon=True
        )
        thread.start()
        return thread

    # -- the inbox: stomp.py's receiver thread -> the loop -----------------------------------------

    def push(self, entry: tuple[int, Any, Any], bounded: bool) -> None:
        """Queue one entry for the loop; a message waits while the inbox is full."""
        with self._in_cond:
            if bounded:
                while len(self._inbox) >= self._inbox_limit and not self.stopping:
                    if self._loop.is_closed():
                        return
                    self.inbox_waits += 1
                    self._in_full = True
                    self._in_cond.wait(_POLL_MS / 1000)
            self._inbox.append(entry)
            if self._wake_pending:
                return
            self._wake_pending = True
            self.wakeups += 1
        if self._rearm is not None:
            set_quickack(self._rearm)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
            self._loop.call_soon_threadsafe(self._deliver, self)

    def take_inbox(self) -> list[tuple[int, Any, Any]]:
        """Everything queued so far (loop side), and room for the receiver again."""
        with self._in_cond:
            entries = self._inbox
            self._inbox = []
            self._wake_pending = False
            if self._in_full:
                self._in_full = False
                self._in_cond.notify_all()
        return entries

    # -- the outbox: the loop -> our writer thread -------------------------------------------------

    def enqueue(self, item: _Item) -> None:
        """Queue one frame for the writer (loop side); never waits."""
        with self._out_cond:
            self._outbox.append(item)
            self.out_bytes += item[4]
            if self.out_bytes >= self._out_limit:
                self._full = True
            if self._writer_idle:
                self._out_cond.notify()

    def full(self) -> bool:
        """True from the moment the outbox reached its limit until it drained below half of
        it: high and low water marks, as asyncio's, so that a writer that takes one frame at a
        time from a full outbox does not let each sender through in turn."""
        return self._full

    def want_space(self) -> bool:
        """True when the outbox is full and the writer will call ``space`` once it is not;
        False when there is room already."""
        with self._out_cond:
            if not self._full:
                return False
            self._senders_waiting = True
            return True

    def _write_loop(self) -> None:
        while True:
            with self._out_cond:
                while not self._outbox and not self.stopping:
                    self._writer_idle = True
                    self._out_cond.wait()
                self._writer_idle = False
                if self.stopping:
                    return
                call, args, kwargs, deadline, size = self._outbox.popleft()
                self.out_bytes -= size
                if self._full and self.out_bytes < self._out_limit // 2:
                    self._full = False
                space = self._senders_waiting and not self._full
                if space:
                    self._senders_waiting = False
            if space:
                self._schedule(self._space)
            if not self._writable():
                return
            if deadline is not None and time.monotonic() >= deadline:
                self.expired_unsent += 1  # never written late
                continue
            try:
                call(*args, **kwargs)
            except Exception as exc:  # stomp.py raises whatever sendall raised
                if not self.stopping:
                    self.push((_LOST, exc, None), bounded=False)
                return

    def _writable(self) -> bool:
        """Wait until the socket takes bytes (True) or the link stops (False)."""
        if self._poll.poll(0):
            return True
        self.flow_control_pauses += 1
        self._schedule(self._paused, self)
        try:
            while not self.stopping:
                if self._poll.poll(_POLL_MS):
                    return True
            return False
        finally:
            self._schedule(self._resumed, self)

    def _schedule(self, callback: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self._loop.call_soon_threadsafe(callback, *args)

    # -- frames other than SEND (run by the writer) ------------------------------------------------

    def disconnect(self, receipt: str) -> None:
        """DISCONNECT with our receipt; stomp.py closes the socket when it arrives."""
        self.conn.set_receipt(receipt, "DISCONNECT")
        self.conn.send_frame("DISCONNECT", {"receipt": receipt})

    # -- stopping ----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Let the writer and a receiver waiting on a full inbox go (any thread)."""
        with self._out_cond:
            self.stopping = True
            self._outbox.clear()
            self.out_bytes = 0
            self._full = False
            self._out_cond.notify_all()
        with self._in_cond:
            self._in_cond.notify_all()

    def teardown(self) -> None:
        """Stop, close the socket and wait (bounded) for the threads (a worker thread)."""
        self.stop()
        transport = self.conn.transport
        try:
            transport.disconnect_socket()
        except Exception as exc:  # closing twice or mid-write: nothing left to save
            log.debug("%s: closing stomp.py's socket: %s", self.endpoint, exc)
        for thread in (transport.io_thread, self._writer):
            if (
                thread is not None
                and thread.is_alive()
                and thread is not threading.current_thread()
            ):
                thread.join(_JOIN_TIMEOUT)


@dataclass
class _Subscription:
    destination: str
    handler: MessageHandler
    prefetch: int


class StompPyTransport:
    """The Transport interface over ``stomp.StompConnection12`` (see the module docstring)."""

    def __init__(self, parsed: TransportURL, **options: Any) -> None:
        if len(parsed.endpoints) != 1:
            raise ValueError("stomppy:// takes exactly one broker (it has no failover)")
        endpoint = parsed.endpoints[0]
        if endpoint.ssl or options.get("ssl") is not None:
            raise ValueError(
                "stomppy+ssl:// is not supported: over TLS stomp.py queues writes without bound "
                "in its own thread, where send deadlines and flow control cannot hold "
                "(use stomp+ssl:// or aiostomp+ssl://)"
            )
        options.pop("ssl", None)
        given: dict[str, Any] = {**parsed.options, **options}
        login = given.pop("login", None) or endpoint.login
        passcode = given.pop("passcode", None) or endpoint.passcode
        for what, value in (("login", login), ("passcode", passcode)):
            if value is not None and re.search(r"[\r\n\x00]", value):
                raise ValueError(f"{what} cannot contain CR, LF or NUL")  # CONNECT is unescaped
        self.options = _Options(given)
        if given:
            raise ValueError(f"unknown stomppy transport option(s): {', '.join(sorted(given))}")
        self._parsed = parsed
        self._endpoint = endpoint
        self._login: str | None = login
        self._passcode: str | None = passcode
        self._link: _Link | None = None
        self._up = False
        self._closing = False
        self._subs: dict[str, _Subscription] = {}
        self._sub_ids = itertools.count(1)
        self._receipts: dict[str, asyncio.Future[None]] = {}
        # SUBSCRIBE receipts not yet answered: an ERROR naming one means "refused, forget it".
        self._pending_subs: dict[str, str] = {}
        self._receipt_ids = itertools.count(1)
        self._listener: TransportListener | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._teardowns: set[asyncio.Future[None]] = set()
        self._stats = StompPyStats()
        self._handler_failures = HandlerFailures()
        self._blocked = False
        self._writable: asyncio.Event | None = None
        self._hold = HoldClock()  # on loop time
        _install_redaction()

    # -- public surface ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._up

    @property
    def display_url(self) -> str:
        return self._parsed.display()

    def __repr__(self) -> str:
        return f"StompPyTransport({self.display_url!r}, connected={self._up})"

    @property
    def write_blocked(self) -> bool:
        """True while the writer waits for the socket to take bytes (the broker does not
        read): senders wait, and frames held meanwhile expire at their deadlines."""
        return self._blocked

    @property
    def flow_control_held(self) -> float:
        """Seconds spent with writing blocked by the broker, in total (the current block too)."""
        return self._hold.held(loop_time)

    def stats(self) -> dict[str, Any]:
        """Counters, the current link's included, and ``flow_control_held`` (s)."""
        stats = StompPyStats(**asdict(self._stats))
        link = self._link
        if link is not None:
            stats.expired_unsent += link.expired_unsent
            stats.flow_control_pauses += link.flow_control_pauses
            stats.inbox_waits += link.inbox_waits
            stats.wakeups += link.wakeups
        out: dict[str, Any] = asdict(stats)
        out["flow_control_held"] = round(self._hold.total, 3)
        out["buffered_bytes"] = link.out_bytes if link is not None else 0
        out["subscriptions"] = len(self._subs)
        return out

    def set_listener(self, listener: TransportListener | None) -> None:
        self._listener = listener

    async def connect(self) -> None:
        """Connect, wait for CONNECTED; TransportError (BrokerError for an ERROR) on failure."""
        if self._up:
            return
        if self._reconnect_task is not None and not self._reconnect_task.done():
            raise TransportError(f"{self.display_url}: already reconnecting")
        self._closing = False
        await connect_attempts(self._open, log, self.display_url)

    async def close(self) -> None:
        """Stop reconnecting, DISCONNECT with a receipt (waited for briefly), close; idempotent."""
        self._closing = True
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        link = self._link
        if link is not None:
            if self._up:
                receipt = self._next_receipt()
                link.enqueue((link.disconnect, (receipt,), {}, None, _FRAME_OVERHEAD))
                with contextlib.suppress(TransportError, TimeoutError):
                    await self._await_receipt(receipt, min(1.0, self.options.receipt_timeout))
            self._drop_link(link, ConnectionLost(f"{self.display_url}: closed"))
        if self._teardowns:
            await asyncio.gather(*self._teardowns, return_exceptions=True)

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
        """Queue one SEND (no ``content-length``) for the writer thread; waits while the broker
        does not read or the outbox is full.

        ``deadline`` (``loop.time()`` seconds): TimeoutError, with nothing written, when it
        passes first; a frame still queued when it passes is dropped, never written late.
        Cancelled, nothing is written either.
        """
        out = send_headers(
            headers,
            jms_type=jms_type,
            correlation_id=correlation_id,
            reply_to=reply_to,
            expires=expires_at(ttl),
            persistent=persistent,
        )
        if _BAD_NAME.search("".join(out)) or "\x00" in "".join(out.values()):
            raise ValueError("header names cannot contain ':', CR, LF, '\\' or NUL, nor values NUL")
        data = encode_text(body, self.options.body_encoding)
        if b"\x00" in data:
            raise ValueError("a text body cannot contain NUL (it would end the STOMP frame)")
        link = self._link
        if link is None or not self._up or self._blocked or link.full():
            link = await self._wait_writable(deadline)
        loop = asyncio.get_running_loop()
        until: float | None = None
        if deadline is not None:
            left = deadline - loop.time()
            if left <= 0:
                self._stats.send_timeouts += 1
                raise TimeoutError(f"{self.display_url}: send deadline passed before writing")
            until = time.monotonic() + left  # the writer thread's clock
        link.enqueue(
            (link.conn.send, (destination, data), {"headers": out}, until,
             len(data) + _FRAME_OVERHEAD)
        )  # fmt: skip
        self._stats.messages_out += 1

    async def subscribe(
        self, destination: str, handler: MessageHandler, *, prefetch: int | None = None
    ) -> str:
        """Subscribe and wait for the broker's receipt, so messages sent afterwards arrive."""
        link = self._require_up()
        sub_id = str(next(self._sub_ids))
        sub = self._subs[sub_id] = _Subscription(
            destination, handler, prefetch or self.options.prefetch
        )
        receipt = self._next_receipt()
        link.enqueue(self._subscribe_item(link, sub_id, sub, receipt))
        self._pending_subs[receipt] = sub_id
        try:
            await self._await_receipt(receipt, self.options.receipt_timeout)
        except TimeoutError:
            # Kept: the broker may still register it, and a reconnect re-issues it anyway.
            log.warning("%s: no receipt for SUBSCRIBE %s", self.display_url, destination)
        finally:
            self._pending_subs.pop(receipt, None)
        return sub_id

    async def unsubscribe(self, subscription_id: str) -> None:
        """Stop a subscription; messages already received for it are dropped (counted)."""
        if self._subs.pop(subscription_id, None) is None:
            return
        link = self._link
        if link is None or not self._up:
            return
        receipt = self._next_receipt()
        link.enqueue(
            (link.conn.unsubscribe, (subscription_id,), {"headers": {"receipt": receipt}}, None,
             _FRAME_OVERHEAD)
        )  # fmt: skip
        with contextlib.suppress(TimeoutError, TransportError):
            await self._await_receipt(receipt, self.options.receipt_timeout)

    async def flush(self) -> None:
        """Wait for the broker's receipt of a barrier queued behind everything sent so far (an
        empty transaction begun with a receipt, then aborted; see ``Transport.flush``)."""
        link = self._link
        if link is None or not self._up:
            raise TransportError(f"{self.display_url}: not connected")
        receipt = self._next_receipt()
        transaction = f"barrier-{receipt}"
        link.enqueue(
            (link.conn.begin, (transaction,), {"headers": {"receipt": receipt}}, None,
             _FRAME_OVERHEAD)
        )  # fmt: skip
        link.enqueue((link.conn.abort, (transaction,), {}, None, _FRAME_OVERHEAD))
        await self._await_receipt(receipt, None)

    async def switch_broker(self, reason: str) -> bool:
        """Always False: stomppy:// takes exactly one broker."""
        return False

    # -- connecting --------------------------------------------------------------------------------

    async def _open(self) -> None:
        """One attempt: TCP, CONNECT, CONNECTED, the subscriptions re-issued; then up."""
        loop = asyncio.get_running_loop()
        timeout = self.options.connect_timeout
        link = _Link(
            self._endpoint,
            self.options,
            loop,
            deliver=self._deliver,
            paused=self._on_pause,
            resumed=self._on_resume,
            space=self._wake_senders,
        )
        self._link = link
        try:
            async with asyncio.timeout(timeout):
                await loop.run_in_executor(None, link.start, self._login, self._passcode)
                await link.ready
                await self._resubscribe(link)
        except BaseException as exc:
            self._drop_link(link, ConnectionLost("connect attempt failed"))
            raise self._connect_error(exc, timeout) from None
        self._up = True
        self._wake_senders()
        log.info("connected to %s (stomp.py)", self.display_url)

    def _connect_error(self, exc: BaseException, timeout: float) -> BaseException:
        """The error a failed attempt raises: a TransportError saying why, never credentials."""
        if isinstance(exc, TransportError):
            return exc
        if isinstance(exc, TimeoutError):
            return TransportError(f"{self.display_url}: no CONNECTED within {timeout:g}s")
        if isinstance(exc, ConnectFailedException):
            return TransportError(
                f"{self.display_url}: cannot connect (refused, unreachable or no answer within "
                f"{timeout:g}s; stomp.py logs which)"
            )
        if isinstance(exc, OSError | StompException):
            return TransportError(f"{self.display_url}: {exc}")
        return exc  # cancellation and bugs pass through unchanged

    async def _resubscribe(self, link: _Link) -> None:
        """Re-issue every subscription on a new link; wait for the receipt of the last one."""
        if not self._subs:
            return
        receipt = self._next_receipt()
        items = list(self._subs.items())
        for index, (sub_id, sub) in enumerate(items):
            last = index == len(items) - 1
            link.enqueue(self._subscribe_item(link, sub_id, sub, receipt if last else None))
        try:
            await self._await_receipt(receipt, self.options.receipt_timeout)
        except TimeoutError:
            log.warning("%s: no receipt for the re-issued subscriptions", self.display_url)

    @staticmethod
    def _subscribe_item(link: _Link, sub_id: str, sub: _Subscription, receipt: str | None) -> _Item:
        headers = {"activemq.prefetchSize": str(sub.prefetch)}
        if receipt is not None:
            headers["receipt"] = receipt
        kwargs = {"ack": "auto", "headers": headers}
        return (link.conn.subscribe, (sub.destination, sub_id), kwargs, None, _FRAME_OVERHEAD)

    async def _reconnect_loop(self) -> None:
        backoff = Backoff(self.options.initial_backoff, self.options.max_backoff)
        while not self._closing:
            try:
                await self._open()
            except TransportError as exc:
                log.info("reconnect to %s failed: %s", self.display_url, exc)
                await asyncio.sleep(backoff.next())
                continue
            except Exception:  # a bug must not end reconnecting silently
                log.exception("reconnect to %s failed unexpectedly", self.display_url)
                await asyncio.sleep(backoff.next())
                continue
            self._stats.reconnects += 1
            self._reconnect_task = None
            self._notify("connection_restored")
            return

    # -- what the link's threads report (run on the loop) ------------------------------------------

    def _deliver(self, link: _Link) -> None:
        """Handle one burst of the link's inbox, in the order stomp.py received it."""
        subs = self._subs
        for kind, a, b in link.take_inbox():
            if kind == _MESSAGE:
                sub = subs.get(a)
                if sub is None:
                    self._stats.orphan_messages += 1
                    continue
                self._stats.messages_in += 1
                try:
                    sub.handler(b)
                except Exception as exc:  # a handler's bug must never kill the link
                    self._handler_failed(sub, exc)
            elif kind == _RECEIPT:
                waiter = self._receipts.pop(a, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            elif kind == _CONNECTED:
                if not link.ready.done():
                    link.ready.set_result(None)
            elif kind == _ERROR:
                self._on_broker_error(link, a, b)
            elif kind == _LOST and link is self._link:
                self._on_lost(link, a)

    def _on_broker_error(self, link: _Link, error: BrokerError, receipt_id: str | None) -> None:
        self._stats.broker_errors += 1
        log.error("%s: broker ERROR: %s", self.display_url, error.broker_message)
        if link is not self._link:
            return
        if not link.ready.done():
            link.ready.set_exception(error)
            return
        if receipt_id is not None:
            refused = self._pending_subs.pop(receipt_id, None)
            if refused is not None:  # not re-issued after the reconnect
                self._subs.pop(refused, None)
            waiter = self._receipts.pop(receipt_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)
        self._on_lost(link, error)  # ActiveMQ closes the connection after an ERROR

    def _on_lost(self, link: _Link, exc: BaseException | None) -> None:
        was_up = self._up
        lost = ConnectionLost(f"connection to {self.display_url} lost: {exc or 'closed'}")
        self._drop_link(link, lost)
        if self._closing or not was_up:
            return
        self._stats.disconnects += 1
        log.warning("%s", lost)
        self._notify("connection_lost", exc if exc is not None else lost)
        if self.options.reconnect:
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect_loop())

    def _drop_link(self, link: _Link, lost: ConnectionLost) -> None:
        """Forget ``link``: fail what waited on it, stop its threads in the background."""
        if link is self._link:
            self._link = None
            self._up = False
            self._blocked = False
            self._end_hold()
            for waiter in self._receipts.values():
                if not waiter.done():
                    waiter.set_exception(lost)
                    waiter.exception()  # retrieved: a waiter may have been given up already
            self._receipts.clear()
            self._wake_senders()
        if not link.ready.done():
            link.ready.set_exception(
                ClosedBeforeConnected(f"{self.display_url}: closed before CONNECTED")
            )
            link.ready.exception()
        if link.stopping:
            return
        self._stats.expired_unsent += link.expired_unsent
        self._stats.flow_control_pauses += link.flow_control_pauses
        self._stats.inbox_waits += link.inbox_waits
        self._stats.wakeups += link.wakeups
        link.stop()
        teardown = asyncio.get_running_loop().run_in_executor(None, link.teardown)
        self._teardowns.add(teardown)
        teardown.add_done_callback(self._teardowns.discard)

    def _on_pause(self, link: _Link) -> None:
        if link is not self._link:
            return
        self._blocked = True
        self._hold.start(asyncio.get_running_loop().time())

    def _on_resume(self, link: _Link) -> None:
        if link is not self._link:
            return
        self._blocked = False
        self._end_hold()
        self._wake_senders()

    def _end_hold(self) -> None:
        self._hold.stop(asyncio.get_running_loop().time())

    # -- writing -----------------------------------------------------------------------------------

    def _require_up(self) -> _Link:
        link = self._link
        if link is None or not self._up:
            why = "reconnecting" if self._reconnect_task is not None else "not connected"
            raise ConnectionLost(f"{self.display_url}: {why}")
        return link

    async def _wait_writable(self, deadline: float | None) -> _Link:
        """Wait until the link takes writes and the outbox has room (TimeoutError at the
        deadline; ConnectionLost when the link goes)."""
        while True:
            link = self._require_up()
            if not self._blocked and not link.want_space():
                return link
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

    def _wake_senders(self) -> None:
        if self._writable is not None:
            self._writable.set()

    # -- receipts, handlers, listener --------------------------------------------------------------

    def _next_receipt(self) -> str:
        return f"r-{next(self._receipt_ids)}"

    async def _await_receipt(self, receipt: str, wait: float | None) -> None:
        """Wait at most ``wait`` seconds (None: as long as the link lasts) for a receipt."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._receipts[receipt] = waiter
        try:
            await asyncio.wait_for(waiter, wait)
        finally:
            self._receipts.pop(receipt, None)

    def _handler_failed(self, sub: _Subscription, exc: Exception) -> None:
        self._stats.handler_errors += 1
        self._handler_failures.log(log, sub.destination, exc)

    def _notify(self, what: str, *args: Any) -> None:
        notify_listener(log, self._listener, what, *args)
