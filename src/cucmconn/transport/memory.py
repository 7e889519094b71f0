"""An in-process broker: the embedded default for the demo and for fast tests.

It mirrors the parts of ActiveMQ's STOMP mapping that cucmconn relies on, so code that runs here
runs unchanged on a real broker: queues with competing consumers (round robin), topics with
fan-out to the subscribers present at send time (non-durable), ``expires`` in absolute epoch
milliseconds (an expired message is discarded at delivery, never handed over), and the headers
``type``, ``correlation-id``, ``reply-to``, ``expires``, ``message-id``, ``destination``.

Delivery is never synchronous with ``send``: messages wait in one bounded FIFO that a single
callback drains on the next loop iteration, so a handler that sends cannot recurse into another
handler, and a producer outrunning its consumers waits (backpressure) instead of growing memory.
It is deliberately small (why it is ours: docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import TransportError
from .base import (
    HoldClock,
    Message,
    MessageHandler,
    TransportListener,
    expires_at,
    send_headers,
)
from .url import TransportURL

__all__ = ["MemoryBroker", "MemoryTransport"]

log = logging.getLogger("cucmconn.transport.memory")

DEFAULT_MAX_PENDING = 100_000
DEFAULT_QUEUE_DEPTH = 100_000


@dataclass(eq=False)
class _Subscription:
    sub_id: str
    destination: str
    handler: MessageHandler
    owner: MemoryTransport


@dataclass
class _Destination:
    """Subscribers of one destination, plus (for queues) the backlog nobody consumed yet."""

    subscribers: list[_Subscription] = field(default_factory=list)
    backlog: deque[Message] = field(default_factory=deque)
    next_consumer: int = 0


@dataclass
class BrokerStats:
    sent: int = 0
    delivered: int = 0
    expired: int = 0
    dropped_no_subscriber: int = 0
    handler_errors: int = 0


class MemoryBroker:
    """One named broker per process; ``memory://name`` URLs with the same name share it."""

    _registry: dict[str, MemoryBroker] = {}  # noqa: RUF012 - the process-wide name table

    def __init__(
        self,
        name: str = "default",
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        queue_depth: int = DEFAULT_QUEUE_DEPTH,
    ) -> None:
        self.name = name
        self.max_pending = max_pending
        self.queue_depth = queue_depth
        self.stats = BrokerStats()
        self._destinations: dict[str, _Destination] = {}
        # Flat pairs (subscription, message, subscription, ...), not tuples: a tuple per
        # delivery is a GC-tracked allocation, which under CPython's default threshold runs a
        # young collection every few hundred messages.
        self._pending: deque[Any] = deque()  # _Subscription, Message, _Subscription, ...
        self._drain_loop: asyncio.AbstractEventLoop | None = None
        self._space = asyncio.Event()
        self._ids = itertools.count(1)

    @classmethod
    def get(cls, name: str = "default") -> MemoryBroker:
        broker = cls._registry.get(name)
        if broker is None:
            broker = cls._registry[name] = cls(name)
        return broker

    @classmethod
    def reset(cls, name: str | None = None) -> None:
        """Forget one named broker (or all): for tests that want a clean slate."""
        if name is None:
            cls._registry.clear()
        else:
            cls._registry.pop(name, None)

    # -- subscriptions -------------------------------------------------------------------------

    def subscribe(self, sub: _Subscription) -> None:
        dest = self._destinations.setdefault(sub.destination, _Destination())
        dest.subscribers.append(sub)
        while dest.backlog:  # a queue's waiting messages go to its first consumer
            self._enqueue(sub, dest.backlog.popleft())

    def unsubscribe(self, sub: _Subscription) -> None:
        dest = self._destinations.get(sub.destination)
        if dest is not None and sub in dest.subscribers:
            dest.subscribers.remove(sub)

    # -- publishing ------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Messages routed but not yet delivered (bounded by ``max_pending``)."""
        return len(self._pending) // 2

    @property
    def congested(self) -> bool:
        return len(self._pending) >= 2 * self.max_pending

    async def wait_for_space(self) -> None:
        while self.congested:
            self._space.clear()
            await self._space.wait()

    def publish(self, destination: str, body: bytes, headers: dict[str, str]) -> None:
        """Route one message; the caller has already waited for space."""
        self.stats.sent += 1
        headers["destination"] = destination
        headers["message-id"] = f"ID:memory-{self.name}-{next(self._ids)}"
        message = Message(destination, body, headers)
        dest = self._destinations.get(destination)
        if destination.startswith("/topic/"):
            if dest is None or not dest.subscribers:
                self.stats.dropped_no_subscriber += 1
                return
            for sub in dest.subscribers:
                self._enqueue(sub, message)
            return
        if dest is None:
            dest = self._destinations[destination] = _Destination()
        if not dest.subscribers:
            if len(dest.backlog) >= self.queue_depth:
                dest.backlog.popleft()  # bounded like a real broker's store; oldest goes
                self.stats.expired += 1
            dest.backlog.append(message)
            return
        dest.next_consumer = (dest.next_consumer + 1) % len(dest.subscribers)
        self._enqueue(dest.subscribers[dest.next_consumer], message)

    def _enqueue(self, sub: _Subscription, message: Message) -> None:
        pending = self._pending
        pending.append(sub)
        pending.append(message)
        loop = asyncio.get_running_loop()
        # A drain scheduled on another (closed) loop never runs: tests use one loop each.
        if self._drain_loop is not loop:
            self._drain_loop = loop
            loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_loop = None
        now_ms = time.time() * 1000
        take = self._pending.popleft
        # Only what was queued before this drain: handlers that send schedule the next one.
        for _ in range(len(self._pending) // 2):
            sub: _Subscription = take()
            message: Message = take()
            if not sub.owner.connected:
                continue
            expires = message.expires
            if expires is not None and expires <= now_ms:
                self.stats.expired += 1
                continue
            self.stats.delivered += 1
            try:
                sub.handler(message)
            except Exception:
                self.stats.handler_errors += 1
                log.exception("handler for %s raised", sub.destination)
        if not self.congested:
            self._space.set()


class MemoryTransport:
    """The Transport interface over a :class:`MemoryBroker` in this process."""

    def __init__(
        self,
        parsed: TransportURL | None = None,
        *,
        broker: MemoryBroker | None = None,
        **_options: object,
    ) -> None:
        name = parsed.name if parsed is not None else "default"
        self._broker = broker or MemoryBroker.get(name)
        self._connected = False
        self._subs: dict[str, _Subscription] = {}
        self._ids = itertools.count(1)
        self._listener: TransportListener | None = None
        self._held = False  # simulate_flow_control(True)
        self._writable = asyncio.Event()
        self._writable.set()
        self._hold = HoldClock()  # on time.monotonic()

    @property
    def broker(self) -> MemoryBroker:
        return self._broker

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def display_url(self) -> str:
        return f"memory://{self._broker.name}"

    @property
    def write_blocked(self) -> bool:
        """True while sends would wait: the broker's queue is full, or flow control is being
        simulated (:meth:`simulate_flow_control`)."""
        return self._held or self._broker.congested

    @property
    def flow_control_held(self) -> float:
        """Seconds spent with writing blocked, in total (waits for broker space included)."""
        return self._hold.held(time.monotonic)

    def __repr__(self) -> str:
        return f"MemoryTransport({self.display_url!r}, connected={self._connected})"

    async def connect(self) -> None:
        self._connected = True

    async def close(self) -> None:
        for sub in self._subs.values():
            self._broker.unsubscribe(sub)
        self._subs.clear()
        self._connected = False

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
        """Publish to the in-process broker; waits (never past ``deadline``, in
        ``loop.time()`` seconds: TimeoutError, nothing published) while writing is blocked."""
        out = send_headers(
            headers,
            jms_type=jms_type,
            correlation_id=correlation_id,
            reply_to=reply_to,
            expires=expires_at(ttl),
            persistent=persistent,
        )
        if not self._connected:
            raise TransportError(f"{self.display_url}: not connected")
        if self._held or self._broker.congested:
            await self._wait_writable(deadline)
        if deadline is not None and asyncio.get_running_loop().time() >= deadline:
            raise TimeoutError(f"{self.display_url}: send deadline passed")
        self._broker.publish(destination, body.encode("utf-8"), out)

    async def _wait_writable(self, deadline: float | None) -> None:
        started = time.monotonic()
        fresh_hold = self._hold.start(started)
        try:
            async with asyncio.timeout_at(deadline):
                while self._held or self._broker.congested:
                    if self._held:
                        await self._writable.wait()
                    else:
                        await self._broker.wait_for_space()
                    if not self._connected:
                        raise TransportError(f"{self.display_url}: not connected")
        except TimeoutError:
            raise TimeoutError(
                f"{self.display_url}: writing blocked until the send deadline"
            ) from None
        finally:
            # Ends the hold this wait began, unless simulate_flow_control took it over.
            if fresh_hold and self._hold.since == started and not self._held:
                self._hold.stop(time.monotonic())

    async def flush(self) -> None:
        """Nothing to wait for: ``send`` hands each message to the in-process broker before it
        returns (see ``Transport.flush``)."""
        if not self._connected:
            raise TransportError(f"{self.display_url}: not connected")

    async def switch_broker(self, reason: str) -> bool:
        """Always False: an in-process broker has no other broker to switch to."""
        return False

    async def subscribe(
        self, destination: str, handler: MessageHandler, *, prefetch: int = 1000
    ) -> str:
        if not self._connected:
            raise TransportError(f"{self.display_url}: not connected")
        sub = _Subscription(f"sub-{next(self._ids)}", destination, handler, self)
        self._subs[sub.sub_id] = sub
        self._broker.subscribe(sub)
        return sub.sub_id

    async def unsubscribe(self, subscription_id: str) -> None:
        sub = self._subs.pop(subscription_id, None)
        if sub is not None:
            self._broker.unsubscribe(sub)

    def set_listener(self, listener: TransportListener | None) -> None:
        self._listener = listener

    # -- fault simulation for tests: what a dropped and restored link looks like from above ----

    def simulate_disconnect(self, exc: BaseException | None = None) -> None:
        """Behave as a dropped link: deliveries stop and the listener hears of it."""
        self._connected = False
        for sub in self._subs.values():
            self._broker.unsubscribe(sub)
        if self._listener is not None:
            self._listener.connection_lost(exc or ConnectionResetError("simulated disconnect"))

    def simulate_flow_control(self, blocked: bool) -> None:
        """Behave as a broker applying producer flow control: while ``blocked``, sends wait
        (and time out at their deadlines) and ``write_blocked`` is True."""
        if blocked == self._held:
            return
        self._held = blocked
        if blocked:
            self._writable.clear()
            self._hold.start(time.monotonic())
        else:
            self._writable.set()
            self._hold.stop(time.monotonic())

    def simulate_reconnect(self) -> None:
        """Behave as a completed reconnect: resubscribe, then tell the listener."""
        self._connected = True
        for sub in self._subs.values():
            self._broker.subscribe(sub)
        if self._listener is not None:
            self._listener.connection_restored()
