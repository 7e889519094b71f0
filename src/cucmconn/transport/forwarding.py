"""``ForwardingTransport``: a Transport that hands every call to another one.

The base of the transports that wrap a real one to watch or steer its traffic (the trace
``RecordingTransport``, the emulator's scenario ``Tap``): each overrides only what it changes,
and a member added to the Transport protocol is forwarded here once, for all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .base import MessageHandler, Transport, TransportListener

__all__ = ["ForwardingTransport"]


class ForwardingTransport:
    """Every Transport member forwarded to ``inner``; subclass and override what you watch."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    @property
    def connected(self) -> bool:
        """The wrapped transport's (see ``Transport.connected``)."""
        return self.inner.connected

    @property
    def display_url(self) -> str:
        """The wrapped transport's (see ``Transport.display_url``)."""
        return self.inner.display_url

    @property
    def write_blocked(self) -> bool:
        """The wrapped transport's (see ``Transport.write_blocked``)."""
        return self.inner.write_blocked

    @property
    def flow_control_held(self) -> float:
        """The wrapped transport's (see ``Transport.flow_control_held``)."""
        return self.inner.flow_control_held

    async def connect(self) -> None:
        """Connect the wrapped transport."""
        await self.inner.connect()

    async def close(self) -> None:
        """Close the wrapped transport."""
        await self.inner.close()

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
        """Send through the wrapped transport."""
        await self.inner.send(
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
        self, destination: str, handler: MessageHandler, *, prefetch: int = 1000
    ) -> str:
        """Subscribe on the wrapped transport."""
        return await self.inner.subscribe(destination, handler, prefetch=prefetch)

    async def unsubscribe(self, subscription_id: str) -> None:
        """Unsubscribe on the wrapped transport."""
        await self.inner.unsubscribe(subscription_id)

    async def flush(self) -> None:
        """Delegated to the wrapped transport (see ``Transport.flush``)."""
        await self.inner.flush()

    async def switch_broker(self, reason: str) -> bool:
        """Delegated to the wrapped transport (see ``Transport.switch_broker``)."""
        return await self.inner.switch_broker(reason)

    def set_listener(self, listener: TransportListener | None) -> None:
        """Set the wrapped transport's listener."""
        self.inner.set_listener(listener)


if TYPE_CHECKING:

    def _implements_transport(transport: ForwardingTransport) -> Transport:
        return transport  # mypy proves ForwardingTransport satisfies the Transport protocol
