"""``SplitTransport``: one STOMP link for what we receive, a second one for what we send.

Why two links.  ActiveMQ (5.x, STOMP over TCP) serialises each connection's reads and writes
on one lock (``MutexTransport``): while the broker's dispatcher is blocked writing to a
connection, the broker does not read that connection either.  With ActiveMQ's default transport
options (64 KB socket buffers pinned) and a link busy both ways, Linux (6.17 and later, which
drop segments beyond the receive window while the receive queue is not empty) can then lose the
ACKs riding on our data segments: the broker's writes to us are never acknowledged, so it never
reads again, and the link stays silent until a watchdog gives up (20 s with 10 s heart-beats).
We caught it with ``jstack`` and ``ss``: the broker's reader parked in
``MutexTransport.onCommand`` behind its dispatcher, parked in ``socketWrite`` to the same
connection; both sockets in retransmission back-off; ``TcpExtBeyondWindow`` counting
(docs/reliability.md, issue 11 case 6).

With two links the heavy directions never share a connection: the broker only writes to the
inbound link (deliveries) and only reads the outbound one (our SENDs), so neither lock can
wait on the other.  Both links reach the same broker: the outbound one is pinned to the broker
the inbound one (which follows the failover URL) is on, and moved when that one moves.

To the layer above it is one Transport: connected while both links are up, one
``connection_lost`` when either drops, one ``connection_restored`` once both are back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import TransportError
from .backoff import Backoff
from .base import MessageHandler, Transport, TransportListener, notify_listener
from .stomp import StompTransport

__all__ = ["SplitTransport"]

log = logging.getLogger("cucmconn.transport.split")


class _Side:
    """The listener of one link: tells the SplitTransport which link moved."""

    def __init__(self, owner: SplitTransport, inbound: bool) -> None:
        self._owner = owner
        self._inbound = inbound

    def connection_lost(self, exc: BaseException | None) -> None:
        self._owner._link_lost(exc)

    def connection_restored(self) -> None:
        self._owner._link_restored(self._inbound)


class SplitTransport:
    """The Transport interface over two STOMP links to one broker (see the module doc).

    ``subscribe`` and ``unsubscribe`` go to the inbound link, ``send`` to the outbound one.
    """

    def __init__(self, inbound: StompTransport) -> None:
        self.inbound = inbound
        self.outbound: StompTransport | None = None
        self._listener: TransportListener | None = None
        self._up = False  # what the listener was last told: both links up
        self._repin: asyncio.Task[None] | None = None
        self._disconnects = 0
        self._reconnects = 0
        inbound.set_listener(_Side(self, inbound=True))

    def __repr__(self) -> str:
        return f"SplitTransport({self.display_url!r}, connected={self.connected})"

    # -- state -----------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Both links up, on the same broker."""
        out = self.outbound
        return (
            self.inbound.connected
            and out is not None
            and out.connected
            and out.current_endpoint == self.inbound.current_endpoint
        )

    @property
    def display_url(self) -> str:
        """The URL, without credentials."""
        return self.inbound.display_url

    @property
    def endpoint(self) -> str | None:
        """The broker both links are on (None while down)."""
        return self.inbound.endpoint if self.connected else None

    @property
    def write_blocked(self) -> bool:
        """The outbound link's: it carries everything we send."""
        return self.outbound is not None and self.outbound.write_blocked

    @property
    def flow_control_held(self) -> float:
        """Seconds the outbound links spent blocked by the broker's flow control."""
        return self.outbound.flow_control_held if self.outbound is not None else 0.0

    def stats(self) -> dict[str, Any]:
        """Both links' counters added up, except ``disconnects`` and ``reconnects``: the
        pair's (a broker restart drops both links but is one outage to the layer above)."""
        merged = dict(self.inbound.stats())
        if self.outbound is not None:
            for key, value in self.outbound.stats().items():
                if key != "subscriptions" and isinstance(value, int | float):
                    merged[key] = merged.get(key, 0) + value
        merged["disconnects"] = self._disconnects
        merged["reconnects"] = self._reconnects
        return merged

    def set_listener(self, listener: TransportListener | None) -> None:
        """Whom to tell when the pair goes down and comes back."""
        self._listener = listener

    # -- connecting ------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect the inbound link (failover order), then the outbound one to its broker."""
        if self.connected:
            return
        await self.inbound.connect()
        try:
            await self._pin()
        except BaseException:
            await self.inbound.close()
            raise
        self._up = True

    async def _pin(self) -> None:
        """(Re)open the outbound link on the inbound link's broker, unless it is there."""
        endpoint = self.inbound.current_endpoint
        if endpoint is None:
            raise TransportError(f"{self.display_url}: inbound link down")
        old = self.outbound
        if old is not None and old.current_endpoint == endpoint:
            return
        if old is not None and old.current_endpoint is None and old.brokers == (endpoint,):
            return  # same broker, reconnecting on its own
        fresh = self.inbound.companion()
        fresh.set_listener(_Side(self, inbound=False))
        self.outbound = fresh
        if old is not None:
            old.set_listener(None)
            await old.close()
        await fresh.connect()

    async def close(self) -> None:
        """Close both links; idempotent."""
        self._up = False
        task, self._repin = self._repin, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        out, self.outbound = self.outbound, None
        if out is not None:
            out.set_listener(None)
            await out.close()
        await self.inbound.close()

    async def flush(self) -> None:
        """Wait for the broker to take what the outbound link sent (see ``Transport.flush``)."""
        out = self.outbound
        if out is None:
            raise TransportError(f"{self.display_url}: not connected")
        await out.flush()

    async def switch_broker(self, reason: str) -> bool:
        """The inbound link moves (see ``Transport.switch_broker``); the outbound one follows."""
        return await self.inbound.switch_broker(reason)

    # -- traffic ---------------------------------------------------------------------------------

    def send(
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
    ) -> Coroutine[Any, Any, None]:
        """Send on the outbound link (see ``Transport.send``): the outbound link's own
        coroutine, returned rather than awaited in one of ours, since every command passes
        here."""
        out = self.outbound
        if out is None:
            raise TransportError(f"{self.display_url}: not connected")
        return out.send(
            destination,
            body,
            jms_type=jms_type,
            correlation_id=correlation_id,
            reply_to=reply_to,
            ttl=ttl,
            persistent=persistent,
            headers=headers,
            deadline=deadline,
        )

    async def subscribe(
        self, destination: str, handler: MessageHandler, *, prefetch: int | None = None
    ) -> str:
        """Subscribe on the inbound link (see ``Transport.subscribe``)."""
        return await self.inbound.subscribe(destination, handler, prefetch=prefetch)

    async def unsubscribe(self, subscription_id: str) -> None:
        """Unsubscribe on the inbound link."""
        await self.inbound.unsubscribe(subscription_id)

    # -- the links' news -------------------------------------------------------------------------

    def _link_lost(self, exc: BaseException | None) -> None:
        if self._up:
            self._up = False
            self._disconnects += 1
            self._notify("connection_lost", exc)

    def _link_restored(self, inbound: bool) -> None:
        if inbound and (self._repin is None or self._repin.done()):
            self._repin = asyncio.get_running_loop().create_task(self._follow())
            return
        self._maybe_up()

    async def _follow(self) -> None:
        """The inbound link is back: bring the outbound one to its broker, then report.

        Loops, with back-off, until both links are up on the inbound link's broker or the
        inbound link is down again: a broker that just came back may refuse a second
        connection for a moment, the outbound link may drop and reconnect on its own, and the
        inbound link may move again meanwhile (its ``connection_restored`` then finds this
        task still running, and this loop follows it).
        """
        backoff = Backoff(0.05, 2.0)
        while self.inbound.connected:
            try:
                await self._pin()
            except TransportError as exc:
                log.warning("%s: outbound link not reopened yet: %s", self.display_url, exc)
            if self.connected:
                self._maybe_up()
                return
            await asyncio.sleep(backoff.next())

    def _maybe_up(self) -> None:
        if not self._up and self.connected:
            self._up = True
            self._reconnects += 1
            self._notify("connection_restored")

    def _notify(self, what: str, *args: Any) -> None:
        notify_listener(log, self._listener, what, *args)


if TYPE_CHECKING:

    def _implements_transport(transport: SplitTransport) -> Transport:
        return transport
