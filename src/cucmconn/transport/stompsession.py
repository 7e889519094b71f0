"""The STOMP 1.2 client session as a sans-IO state machine: bytes in, events out, bytes to send.

Everything that decides *what* goes on the wire lives here (CONNECT and its heart-beat offer,
the negotiation of CONNECTED, subscriptions and their re-issue after a reconnect, receipts,
SEND headers); the asyncio glue in ``stomp.py`` only moves bytes and runs timers.  No socket,
clock or task is touched, so every rule can be tested by feeding bytes.

States::

    IDLE --connect_frame()--> CONNECTING --CONNECTED--> OPEN --disconnect_frame()--> CLOSING
      ^                            |  ERROR -> BrokerFailure                          |
      +------------------------ new_connection() (after any link loss) <--------------+

Why it is ours and not a STOMP library's: docs/architecture.md.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..codec import FrameParser, encode_frame
from ..errors import ProtocolError
from .base import Message, send_headers

__all__ = [
    "BrokerFailure",
    "Connected",
    "Delivery",
    "Orphan",
    "ProtocolViolation",
    "Receipt",
    "SessionEvent",
    "SessionState",
    "StompSession",
    "Subscription",
    "negotiate_heartbeat",
]


class SessionState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"


@dataclass(eq=False)
class Subscription:
    """A subscription as remembered across reconnects; ``handler`` is opaque to the session."""

    sub_id: str
    destination: str
    prefetch: int
    handler: Any


class Connected(NamedTuple):
    """CONNECTED arrived; intervals in ms (0 = none) after negotiation."""

    version: str
    server: str
    send_interval: int
    recv_interval: int


class Delivery(NamedTuple):
    subscription: Subscription
    message: Message


class Receipt(NamedTuple):
    receipt_id: str


class BrokerFailure(NamedTuple):
    """An ERROR frame: the broker's ``message`` header, body text, and the receipt it answers."""

    message: str
    details: str
    receipt_id: str | None


class Orphan(NamedTuple):
    """A MESSAGE for a subscription we no longer hold (unsubscribed while it was in flight)."""

    subscription_id: str


SessionEvent = Connected | Delivery | Receipt | BrokerFailure | Orphan


class ProtocolViolation(ProtocolError):
    """The stream broke the protocol; ``events`` are those of the good frames before it.

    The session is unusable on this link afterwards: deliver ``events``, then close it.
    """

    def __init__(self, message: str, events: list[SessionEvent]) -> None:
        super().__init__(message)
        self.events = events


def _parse_pair(value: str) -> tuple[int, int]:
    try:
        left, right = value.split(",")
        return max(int(left), 0), max(int(right), 0)
    except ValueError:
        raise ProtocolError(f"bad heart-beat header {value[:32]!r}") from None


def negotiate_heartbeat(ours: tuple[int, int], theirs: str | None) -> tuple[int, int]:
    """STOMP 1.2 negotiation: ``(we send every, we expect data every)`` in ms, 0 meaning never.

    ``ours`` is what CONNECT offered (cx, cy); ``theirs`` the CONNECTED ``heart-beat`` (sx, sy).
    """
    if not theirs:
        return 0, 0
    cx, cy = ours
    sx, sy = _parse_pair(theirs)
    send = max(cx, sy) if cx and sy else 0
    recv = max(cy, sx) if cy and sx else 0
    return send, recv


class StompSession:
    """One logical client session; survives link losses, so subscriptions are kept.

    Call :meth:`new_connection` for every new TCP link, send :meth:`connect_frame`, then feed
    the link's bytes to :meth:`receive_data` and act on the events it returns.
    """

    def __init__(
        self,
        *,
        host: str,
        login: str | None = None,
        passcode: str | None = None,
        heartbeat: int = 10_000,
        max_frame_size: int = 4 * 1024 * 1024,
    ) -> None:
        if heartbeat < 0:
            raise ValueError("heartbeat must be >= 0 ms")
        self.host = host
        self._login = login
        self._passcode = passcode
        self.heartbeat = heartbeat
        self.max_frame_size = max_frame_size
        self.state = SessionState.IDLE
        self.subscriptions: dict[str, Subscription] = {}
        self.send_interval = 0
        self.recv_interval = 0
        self._parser = FrameParser(max_frame_size=max_frame_size)
        self._sub_ids = itertools.count(1)
        self._receipt_ids = itertools.count(1)
        # SUBSCRIBE receipts not yet answered: an ERROR naming one means "refused, forget it".
        self._pending_subscribes: dict[str, str] = {}

    def __repr__(self) -> str:  # credentials deliberately absent
        subs = len(self.subscriptions)
        return f"StompSession(host={self.host!r}, state={self.state.value}, subs={subs})"

    @property
    def heartbeats_received(self) -> int:
        return int(self._parser.heartbeats)

    # -- connection lifecycle ------------------------------------------------------------------

    def new_connection(self) -> None:
        """Forget the old link's partial input and negotiated state; keep subscriptions."""
        self._parser = FrameParser(max_frame_size=self.max_frame_size)
        self._pending_subscribes.clear()  # re-issued without receipts on the next link
        self.state = SessionState.IDLE
        self.send_interval = self.recv_interval = 0

    def connect_frame(self) -> bytes:
        if self.state is not SessionState.IDLE:
            raise RuntimeError(f"CONNECT in state {self.state.value}")
        headers = {
            "accept-version": "1.2",
            "host": self.host,
            # We offer to send every `heartbeat` ms and ask for the same from the broker.
            "heart-beat": f"{self.heartbeat},{self.heartbeat}",
        }
        if self._login is not None:
            headers["login"] = self._login
        if self._passcode is not None:
            headers["passcode"] = self._passcode
        self.state = SessionState.CONNECTING
        return encode_frame("CONNECT", headers)

    def disconnect_frame(self) -> tuple[str, bytes]:
        """DISCONNECT asking for a receipt, so the caller knows everything before it arrived."""
        receipt = self.next_receipt()
        self.state = SessionState.CLOSING
        return receipt, encode_frame("DISCONNECT", {"receipt": receipt})

    def barrier_frames(self) -> tuple[str, list[bytes]]:
        """Frames whose receipt the broker sends only once it has processed every frame before
        them (it handles a connection's frames in order): an empty transaction begun with a
        receipt, then aborted.  STOMP has no no-op frame; BEGIN/ABORT leave nothing behind
        (an UNSUBSCRIBE or ACK of nothing would be an ERROR)."""
        receipt = self.next_receipt()
        transaction = f"barrier-{receipt}"
        return receipt, [
            encode_frame("BEGIN", {"transaction": transaction, "receipt": receipt}),
            encode_frame("ABORT", {"transaction": transaction}),
        ]

    def next_receipt(self) -> str:
        return f"r-{next(self._receipt_ids)}"

    # -- outgoing ------------------------------------------------------------------------------

    def send_frame(
        self,
        destination: str,
        body: bytes,
        *,
        jms_type: str | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        expires: int | None = None,
        persistent: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """A SEND; never with ``content-length`` so ActiveMQ makes a JMS TextMessage.

        ValueError for a header ActiveMQ would drop the connection over (``send_headers``).
        """
        out = {"destination": destination}
        out.update(
            send_headers(
                headers,
                jms_type=jms_type,
                correlation_id=correlation_id,
                reply_to=reply_to,
                expires=expires,
                persistent=persistent,
            )
        )
        return encode_frame("SEND", out, body)

    def subscribe(
        self, destination: str, handler: Any, prefetch: int
    ) -> tuple[Subscription, str, bytes]:
        """Remember a subscription; return it, the receipt id and the SUBSCRIBE bytes."""
        if prefetch < 1:
            raise ValueError("prefetch must be >= 1")
        sub = Subscription(f"sub-{next(self._sub_ids)}", destination, prefetch, handler)
        self.subscriptions[sub.sub_id] = sub
        receipt = self.next_receipt()
        self._pending_subscribes[receipt] = sub.sub_id
        return sub, receipt, self._subscribe_frame(sub, receipt)

    def unsubscribe(self, sub_id: str) -> tuple[str, bytes] | None:
        """Forget a subscription; the UNSUBSCRIBE (with receipt id) or None if unknown."""
        if self.subscriptions.pop(sub_id, None) is None:
            return None
        receipt = self.next_receipt()
        return receipt, encode_frame("UNSUBSCRIBE", {"id": sub_id, "receipt": receipt})

    def resubscribe_frames(self, receipt: str | None = None) -> list[bytes]:
        """SUBSCRIBEs re-issuing every remembered subscription on a fresh link; the last one
        asks for ``receipt`` (when given), which tells that the broker has them all."""
        subs = list(self.subscriptions.values())
        return [
            self._subscribe_frame(sub, receipt if i == len(subs) - 1 else None)
            for i, sub in enumerate(subs)
        ]

    @staticmethod
    def _subscribe_frame(sub: Subscription, receipt: str | None) -> bytes:
        headers = {
            "id": sub.sub_id,
            "destination": sub.destination,
            "ack": "auto",
            "activemq.prefetchSize": str(sub.prefetch),
        }
        if receipt is not None:
            headers["receipt"] = receipt
        return encode_frame("SUBSCRIBE", headers)

    # -- incoming ------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[SessionEvent]:
        """Events for the frames completed by ``data``.

        Raises :class:`ProtocolViolation` for a malformed stream or a frame a STOMP 1.2 server
        must not send; its ``events`` are those of the good frames before the bad one, which
        the caller delivers before closing the link, so nothing it received is lost.
        """
        try:
            frames = self._parser.feed(data)
        except ProtocolError as exc:  # FrameError: ``frames`` are the good ones before it
            # May itself raise, for an unexpected frame among the good ones: that one came first.
            events = self.events_for(getattr(exc, "frames", []))
            raise ProtocolViolation(str(exc), events) from exc
        return self.events_for(frames)

    def events_for(self, frames: list[Any]) -> list[SessionEvent]:
        """Events for complete frames; :class:`ProtocolViolation` (carrying the events before
        it) at the first frame a STOMP 1.2 server must not send."""
        events: list[SessionEvent] = []
        for frame in frames:
            try:
                events.append(self._event_for(frame))
            except ProtocolError as exc:
                raise ProtocolViolation(str(exc), events) from None
        return events

    def _event_for(self, frame: Any) -> SessionEvent:
        command = frame.command
        headers = frame.headers
        if command == "MESSAGE":
            sub_id = headers.get("subscription", "")
            sub = self.subscriptions.get(sub_id)
            if sub is None:
                return Orphan(sub_id)
            return Delivery(
                sub, Message(headers.get("destination", sub.destination), frame.body, headers)
            )
        if command == "RECEIPT":
            receipt_id = headers.get("receipt-id", "")
            self._pending_subscribes.pop(receipt_id, None)
            return Receipt(receipt_id)
        if command == "CONNECTED":
            return self._on_connected(headers)
        if command == "ERROR":
            failure = self._on_error(headers, frame.body)
            if failure.receipt_id is not None:  # a refused SUBSCRIBE is not re-issued
                refused = self._pending_subscribes.pop(failure.receipt_id, None)
                if refused is not None:
                    self.subscriptions.pop(refused, None)
            return failure
        # STOMP 1.2 gives a server exactly four frames: MESSAGE, RECEIPT, ERROR, CONNECTED.
        # Anything else, even well-formed, means the peer is not a STOMP 1.2 server talking
        # to this session (a wrong port, a proxy splicing streams, a broker bug), so what it
        # sends next cannot be trusted to mean what it says.  Ignoring it would hide that
        # fault for good; closing lets the reconnect start clean (and resubscribe) and reports
        # it through ``connection_lost``.  The frames before it were complete and are kept.
        raise ProtocolError(f"unexpected {command} frame from the broker")

    def _on_connected(self, headers: Mapping[str, str]) -> Connected:
        if self.state is not SessionState.CONNECTING:
            raise ProtocolError("CONNECTED without a pending CONNECT")
        version = headers.get("version", "1.0")
        if version != "1.2":
            raise ProtocolError(f"broker speaks STOMP {version}, 1.2 is required")
        send, recv = negotiate_heartbeat(
            (self.heartbeat, self.heartbeat), headers.get("heart-beat")
        )
        self.send_interval, self.recv_interval = send, recv
        self.state = SessionState.OPEN
        return Connected(version, headers.get("server", ""), send, recv)

    @staticmethod
    def _on_error(headers: Mapping[str, str], body: bytes) -> BrokerFailure:
        details = body.decode("utf-8", "replace").strip()
        # ActiveMQ puts a Java stack trace in the body: the first line is the useful part.
        details = details.splitlines()[0] if details else ""
        return BrokerFailure(
            headers.get("message", "broker error"), details, headers.get("receipt-id")
        )
