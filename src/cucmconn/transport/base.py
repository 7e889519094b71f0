"""The one small interface every transport implements, and the message it delivers.

Destinations use STOMP's spelling on every transport (``/queue/Connector1``, ``/topic/crm-1``),
so the layers above never care which transport they run on.  Headers follow ActiveMQ's
STOMP <-> JMS mapping: ``type`` (JMSType), ``correlation-id``, ``reply-to``, ``expires``
(absolute epoch milliseconds, JMSExpiration), ``persistent``, ``priority``, ``message-id``.

Handlers are plain callables run on the event loop for each message: no task per message,
and a handler must not block.  A handler that raises is logged and counted by the transport;
it never kills the connection.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import msgspec

from ..codec.text import decode_text
from ..errors import ClosedBeforeConnected, ProtocolError

__all__ = [
    "EARLY_CLOSE_ATTEMPTS",
    "HandlerFailures",
    "HoldClock",
    "Message",
    "MessageHandler",
    "Transport",
    "TransportListener",
    "connect_attempts",
    "correlation_id_of",
    "expires_at",
    "jms_type_of",
    "loop_time",
    "notify_listener",
    "queue",
    "reply_to_of",
    "send_headers",
    "topic",
]


def queue(name: str) -> str:
    """STOMP destination of a queue: ``Connector1`` becomes ``/queue/Connector1``; a name that
    already starts with ``/`` is taken as a full destination and kept."""
    return name if name.startswith("/") else f"/queue/{name}"


def topic(name: str) -> str:
    """STOMP destination of a topic (a client's reply destination): ``desk1`` becomes
    ``/topic/desk1``; a name that already starts with ``/`` is kept."""
    return name if name.startswith("/") else f"/topic/{name}"


def expires_at(ttl: float | None, now: float | None = None) -> int | None:
    """ActiveMQ's ``expires``: absolute epoch milliseconds, or None for "never"."""
    if ttl is None:
        return None
    return int(((time.time() if now is None else now) + ttl) * 1000)


_RESERVED = frozenset({"content-length", "destination", "receipt"})
# ActiveMQ parses these with Long.parseLong / Byte.parseByte and, when that fails, closes the
# connection without an ERROR frame: every command in flight on the link is lost for one bad
# header.  So they are checked here, before any transport writes a byte.  STOMP header names
# are case-sensitive and ActiveMQ reads these exact (lower-case) names.
_NUMERIC = {
    "expires": (re.compile(r"[0-9]{1,18}"), "an absolute time in epoch milliseconds"),
    "priority": (re.compile(r"[0-9]"), "a JMS priority from 0 to 9"),
}


def send_headers(
    headers: Mapping[str, str] | None,
    *,
    jms_type: str | None,
    correlation_id: str | None,
    reply_to: str | None,
    expires: int | None,
    persistent: bool,
) -> dict[str, str]:
    """The SEND headers every transport sends; ValueError for one the broker would choke on.

    Shared by all transports so that bad input is refused alike on each, before anything is
    written (the broker's reaction to some of it is to drop the whole connection).
    """
    out: dict[str, str] = {}
    if headers:
        for name, value in headers.items():
            if name.lower() in _RESERVED:
                raise ValueError(f"header {name!r} is set by the transport")
            rule = _NUMERIC.get(name)
            if rule is not None and (
                not isinstance(value, str) or rule[0].fullmatch(value) is None
            ):
                raise ValueError(f"header {name!r} must be {rule[1]}, not {str(value)[:32]!r}")
            out[name] = value
    if jms_type is not None:
        out["type"] = jms_type
    if correlation_id is not None:
        out["correlation-id"] = correlation_id
    if reply_to is not None:
        out["reply-to"] = reply_to
    if expires is not None:
        out["expires"] = str(expires)
    out["persistent"] = "true" if persistent else "false"
    return out


def jms_type_of(headers: Mapping[str, str]) -> str:
    """The JMSType (STOMP ``type`` header): the connector's event or command kind, such as
    ``Login#1001``; ``""`` when absent.  Read the same way from a live :class:`Message` and
    from a recorded trace line."""
    return headers.get("type", "")


def correlation_id_of(headers: Mapping[str, str]) -> str | None:
    """JMSCorrelationID (``correlation-id``): what ties an answer to its command; None when
    absent or empty."""
    return headers.get("correlation-id") or None


def reply_to_of(headers: Mapping[str, str]) -> str | None:
    """JMSReplyTo (``reply-to``): where the connector should answer a command; None when
    absent or empty."""
    return headers.get("reply-to") or None


class Message(msgspec.Struct, eq=False, gc=False):
    """A message as delivered to a subscriber: destination, raw body bytes, headers.

    ``gc=False``: a str, bytes and a dict of str cannot form a reference cycle, and untracked
    messages spare the collector several allocations per command on the hot path.
    """

    destination: str
    body: bytes
    headers: Mapping[str, str]

    @property
    def jms_type(self) -> str:
        """The JMSType (STOMP ``type`` header): see :func:`jms_type_of`."""
        return jms_type_of(self.headers)

    @property
    def correlation_id(self) -> str | None:
        """JMSCorrelationID: see :func:`correlation_id_of`."""
        return correlation_id_of(self.headers)

    @property
    def reply_to(self) -> str | None:
        """JMSReplyTo: see :func:`reply_to_of`."""
        return reply_to_of(self.headers)

    @property
    def message_id(self) -> str | None:
        """The broker's message id (for logs and traces); None when absent."""
        return self.headers.get("message-id")

    @property
    def expires(self) -> int | None:
        """JMSExpiration in epoch ms; None when absent, zero or not a number."""
        raw = self.headers.get("expires")
        if not raw:
            return None
        try:
            value = int(raw)
        except ValueError:
            return None
        return value or None

    def text(self) -> str:
        """The body as text; ActiveMQ 5.17's CESU-8 is repaired (see codec/text.py)."""
        try:
            return decode_text(self.body)
        except ProtocolError:
            return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:  # bodies can carry call data: keep them out of reprs
        return f"Message(destination={self.destination!r}, bytes={len(self.body)})"


MessageHandler = Callable[[Message], None]


class TransportListener(Protocol):
    """What a transport tells the layer above about its connection."""

    def connection_lost(self, exc: BaseException | None) -> None:
        """The link dropped; the transport is reconnecting (commands in flight are lost)."""

    def connection_restored(self) -> None:
        """Reconnected and resubscribed; events may have been missed meanwhile."""


def loop_time() -> float:
    """The running loop's clock (``loop.time()``), the one deadlines and holds are kept on;
    a function, so that a :class:`HoldClock` reads it only when it needs to."""
    return asyncio.get_running_loop().time()


def notify_listener(
    logger: logging.Logger, listener: TransportListener | None, what: str, *args: Any
) -> None:
    """Call ``listener.<what>(*args)`` when there is a listener; what it raises is logged on
    ``logger`` (the transport's), never raised, since the link that calls it must survive."""
    if listener is None:
        return
    try:
        getattr(listener, what)(*args)
    except Exception:
        logger.exception("transport listener %s raised", what)


EARLY_CLOSE_ATTEMPTS = 3
"""How many times a transport's ``connect`` tries one broker that closes before CONNECTED
without an ERROR (:class:`~cucmconn.errors.ClosedBeforeConnected`) before it gives up."""


async def connect_attempts(
    attempt: Callable[[], Awaitable[None]], logger: logging.Logger, where: str
) -> None:
    """Run one connection ``attempt``; again at once, up to :data:`EARLY_CLOSE_ATTEMPTS` in
    all, while it ends in :class:`~cucmconn.errors.ClosedBeforeConnected`.

    ActiveMQ sometimes closes a refused log-in without its ERROR frame; the next attempt
    usually carries it, so the caller learns why (a :class:`~cucmconn.errors.BrokerError`)
    instead of "closed".  Any other outcome ends the attempts.
    """
    for number in range(1, EARLY_CLOSE_ATTEMPTS + 1):
        try:
            await attempt()
            return
        except ClosedBeforeConnected:
            if number == EARLY_CLOSE_ATTEMPTS:
                raise
            logger.info(
                "%s closed the connection before CONNECTED without an ERROR; "
                "trying again (attempt %d of %d)",
                where,
                number + 1,
                EARLY_CLOSE_ATTEMPTS,
            )


class HandlerFailures:
    """The log of what subscribers' handlers raised: the first of each exception kind with its
    traceback (at most ``MAX_KINDS`` kinds remembered), the rest left to the transport's
    ``handler_errors`` count, so a handler that fails on every message cannot flood the log
    while the link keeps delivering."""

    MAX_KINDS = 64

    __slots__ = ("_kinds",)

    def __init__(self) -> None:
        self._kinds: set[type[BaseException]] = set()

    def log(self, logger: logging.Logger, destination: str, exc: Exception) -> None:
        """Log ``exc``, raised by the handler of ``destination``, if its kind is new."""
        kind = type(exc)
        if kind in self._kinds:
            return
        if len(self._kinds) < self.MAX_KINDS:
            self._kinds.add(kind)
        logger.error(
            "handler for %s raised %s (further %s are counted, not logged)",
            destination,
            kind.__name__,
            kind.__name__,
            exc_info=exc,
        )


class HoldClock:
    """How long the broker has held our writes (flow control), in total: the one definition
    behind every transport's ``flow_control_held``.  Times are the caller's clock (loop time,
    or ``time.monotonic()``), passed in so that the clock never mixes two sources."""

    __slots__ = ("_since", "_total")

    def __init__(self) -> None:
        self._total = 0.0
        self._since: float | None = None

    @property
    def since(self) -> float | None:
        """When the current hold began, or None while writes are not held."""
        return self._since

    @property
    def total(self) -> float:
        """Seconds of the holds that have ended."""
        return self._total

    def start(self, now: float) -> bool:
        """A hold begins at ``now`` unless one is already running; True if this one began."""
        if self._since is not None:
            return False
        self._since = now
        return True

    def stop(self, now: float) -> None:
        """The current hold (if any) ends at ``now``."""
        since, self._since = self._since, None
        if since is not None:
            self._total += now - since

    def held(self, clock: Callable[[], float]) -> float:
        """Seconds held in total up to now, the running hold included; ``clock`` (the same
        clock as ``start``'s) is read only while a hold runs, so an idle transport can answer
        outside any event loop."""
        since = self._since
        return self._total if since is None else self._total + (clock() - since)


@runtime_checkable
class Transport(Protocol):
    """A connection to a broker: send to destinations, subscribe with a handler."""

    @property
    def connected(self) -> bool:
        """True while a link to a broker is up (False before connect, while reconnecting and
        after close): the client gates sends and keep-alives on it."""
        ...

    @property
    def write_blocked(self) -> bool:
        """True while the peer does not take what we write (asyncio's ``pause_writing``, a
        broker's producer flow control): sends wait.  Lets the layer above tell a throttled
        link from a dead connector (its own keep-alive may be stuck behind the block)."""
        ...

    @property
    def flow_control_held(self) -> float:
        """Total seconds this transport has spent with writing blocked by the peer, the
        current block included; for ``stats()`` and logs of the layer above."""
        ...

    @property
    def display_url(self) -> str:
        """The URL with any credentials removed, for logs and reprs."""
        ...

    async def connect(self) -> None:
        """Connect (and for STOMP, wait for CONNECTED); raise TransportError on failure."""

    async def close(self) -> None:
        """Disconnect cleanly; idempotent."""

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
        """Send a text message; waits while the transport's bounded send buffer is full.

        ``deadline`` is in ``loop.time()`` seconds (None: no deadline).  The frame is never
        handed to the socket after it: if it passes while the send waits for the link to
        become writable, ``TimeoutError`` is raised and nothing of the frame was written, and a
        frame held in the transport's own buffer past it is dropped.  What was already handed
        to the OS is out of the transport's hands.  A cancelled send writes nothing.
        """

    async def subscribe(
        self, destination: str, handler: MessageHandler, *, prefetch: int = 1000
    ) -> str:
        """Subscribe and return the subscription id; kept across reconnects."""

    async def unsubscribe(self, subscription_id: str) -> None:
        """Stop a subscription ``subscribe`` returned (and no longer restore it on reconnect)."""
        ...

    async def flush(self) -> None:
        """Return once the broker has taken every message sent before this call (as nats.py's
        ``flush``); ``ConnectionLost`` or ``TransportError`` when the link goes.  Bound the
        wait with ``asyncio.timeout``: a throttling broker may hold it indefinitely.

        A message in the kernel's buffers, or in a broker that stopped reading because of
        producer flow control, has been written but not taken: only the broker's word tells
        them apart (STOMP: a receipt for a frame behind them).  The client uses it to tell a
        keep-alive that reached the connector's queue unanswered (an outage) from one the
        broker never took (a throttled link, which says nothing about the connector).
        """
        ...

    async def switch_broker(self, reason: str) -> bool:
        """Drop the current link and reconnect starting with the next broker of a failover
        list (``reason`` is logged): for a connector that answers on another broker.

        The listener hears ``connection_lost`` then, once a broker accepted us,
        ``connection_restored``, as on any reconnect.  Returns False and does nothing when the
        transport has one broker (or is not connected); True once the old link is down.
        """
        ...

    def set_listener(self, listener: TransportListener | None) -> None:
        """Whom to tell about the link dropping and coming back (None: nobody); the client
        sets itself so that it can fail commands in flight and resync after a reconnect."""
        ...
