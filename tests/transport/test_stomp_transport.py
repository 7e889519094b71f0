"""The native STOMP transport's own guarantees: session rules, heart-beats, the read watchdog,
reconnect, failover, TLS, backpressure and broker ERROR frames.

Session and back-off rules are unit tests (bytes in, bytes out).  Link behaviour runs against
a tiny scripted STOMP peer (for frames a real broker will not send on demand) or the real
ActiveMQ, with ``tests/faultproxy.py`` between them to stall, cut and half-open the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cucmconn.broker import free_ports
from cucmconn.codec import Frame, FrameParser
from cucmconn.errors import BrokerError, ConnectionLost, ProtocolError, TransportError
from cucmconn.transport import Message, open_transport, parse_url
from cucmconn.transport.backoff import Backoff
from cucmconn.transport.base import EARLY_CLOSE_ATTEMPTS
from cucmconn.transport.stomp import StompOptions, StompTransport
from cucmconn.transport.stomppy_adapter import StompPyTransport
from cucmconn.transport.stompsession import (
    BrokerFailure,
    Connected,
    Delivery,
    Orphan,
    ProtocolViolation,
    Receipt,
    SessionState,
    StompSession,
    negotiate_heartbeat,
)
from cucmconn.transport.tcp import QUICKACK_SUPPORTED
from cucmconn.transport.url import FailoverPolicy
from tests.faultproxy import FaultProxy
from tests.listeners import Recorder
from tests.transport.conftest import TLSPair
from tests.waiting import waiter

WAIT = 15.0  # upper bound for an expected event; never a speed assertion


_until = waiter(WAIT)


def _stats(transport: Any) -> dict[str, int]:
    assert isinstance(transport, StompTransport | StompPyTransport)
    return transport.stats()


def _name() -> str:
    return uuid.uuid4().hex[:12]


# -- session rules (sans-IO) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        ((10_000, 10_000), "5000,20000", (20_000, 10_000)),
        ((1000, 0), "0,500", (1000, 0)),  # we send, the broker sends nothing
        ((0, 1000), "2000,0", (0, 2000)),  # the broker sends, we don't
        ((1000, 1000), "0,0", (0, 0)),
        ((1000, 1000), None, (0, 0)),  # a 1.0 broker: no heart-beats at all
    ],
)
def test_heartbeat_negotiation_follows_stomp_1_2(
    ours: tuple[int, int], theirs: str | None, expected: tuple[int, int]
) -> None:
    assert negotiate_heartbeat(ours, theirs) == expected


def test_bad_heartbeat_header_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        negotiate_heartbeat((1000, 1000), "soon")


def _connected_session(**kwargs: Any) -> StompSession:
    session = StompSession(host="broker-a", **kwargs)
    session.connect_frame()
    session.receive_data(b"CONNECTED\nversion:1.2\nheart-beat:4000,4000\n\n\x00")
    return session


def test_connect_frame_offers_1_2_host_credentials_and_heartbeat() -> None:
    session = StompSession(host="broker-a", login="agent", passcode="pw:secret", heartbeat=3000)
    (frame,) = FrameParser().feed(session.connect_frame())
    assert frame.command == "CONNECT"
    assert frame.headers == {
        "accept-version": "1.2",
        "host": "broker-a",
        "heart-beat": "3000,3000",
        "login": "agent",
        "passcode": "pw:secret",  # CONNECT headers are not escaped: ':' passes as is
    }
    assert "secret" not in repr(session)
    assert "secret" not in repr(frame)
    assert session.state is SessionState.CONNECTING


def test_connected_negotiates_and_opens_the_session() -> None:
    session = StompSession(host="h", heartbeat=1000)
    session.connect_frame()
    (event,) = session.receive_data(
        b"CONNECTED\nversion:1.2\nserver:AMQ\nheart-beat:0,3000\n\n\x00"
    )
    assert event == Connected("1.2", "AMQ", 3000, 0)
    assert session.state is SessionState.OPEN
    assert (session.send_interval, session.recv_interval) == (3000, 0)


@pytest.mark.parametrize(
    "data",
    [
        b"CONNECTED\nversion:1.1\n\n\x00",  # we asked for 1.2 only
        b"MESSAGE\nsubscription:x\n\n\x00CONNECTED\nversion:1.2\n\n\x00",  # not before CONNECT
    ],
)
def test_unacceptable_connected_is_a_protocol_error(data: bytes) -> None:
    session = StompSession(host="h")
    session.connect_frame()
    if data.startswith(b"MESSAGE"):
        session.new_connection()  # no CONNECT pending: CONNECTED is unexpected
    with pytest.raises(ProtocolError):
        session.receive_data(data)


def test_send_frame_carries_jms_headers_and_never_content_length() -> None:
    session = _connected_session()
    raw = session.send_frame(
        "/queue/Connector1",
        "MakeCall#1001 é".encode(),
        jms_type="MakeCall#1001",
        correlation_id="c-1",
        reply_to="/topic/crm",
        expires=1_700_000_000_000,
        headers={"priority": "4"},
    )
    (frame,) = FrameParser().feed(raw)
    assert frame == Frame(
        "SEND",
        {
            "destination": "/queue/Connector1",
            "priority": "4",
            "type": "MakeCall#1001",
            "correlation-id": "c-1",
            "reply-to": "/topic/crm",
            "expires": "1700000000000",
            "persistent": "false",
        },
        "MakeCall#1001 é".encode(),
    )
    assert b"content-length" not in raw
    with pytest.raises(ValueError, match="content-length"):
        session.send_frame("/queue/q", b"x", headers={"content-length": "1"})


def test_subscriptions_are_remembered_and_reissued_after_reconnect() -> None:
    session = _connected_session()
    sub_a, receipt, raw = session.subscribe("/topic/crm-1", "handler-a", 50)
    sub_b, _, _ = session.subscribe("/queue/q", "handler-b", 1)
    (frame,) = FrameParser().feed(raw)
    assert frame.headers == {
        "id": sub_a.sub_id,
        "destination": "/topic/crm-1",
        "ack": "auto",
        "activemq.prefetchSize": "50",
        "receipt": receipt,
    }
    session.new_connection()
    reissued = [FrameParser().feed(f)[0] for f in session.resubscribe_frames()]
    assert [(f.headers["id"], f.headers["destination"]) for f in reissued] == [
        (sub_a.sub_id, "/topic/crm-1"),
        (sub_b.sub_id, "/queue/q"),
    ]
    assert all("receipt" not in f.headers for f in reissued)
    assert session.unsubscribe(sub_a.sub_id) is not None
    assert session.unsubscribe(sub_a.sub_id) is None
    assert list(session.subscriptions) == [sub_b.sub_id]


def test_incoming_frames_become_events() -> None:
    session = _connected_session()
    sub, _, _ = session.subscribe("/topic/t", "h", 10)
    events = session.receive_data(
        b"MESSAGE\nsubscription:" + sub.sub_id.encode() + b"\ndestination:/topic/t\n"
        b"message-id:m1\n\nSystem#IN_SERVICE\x00\n"
        b"MESSAGE\nsubscription:gone\ndestination:/topic/t\n\n\x00"
        b"RECEIPT\nreceipt-id:r-9\n\n\x00"
        b"ERROR\nmessage:Illegal destination\nreceipt-id:r-7\n\njava.lang.Exception: x\n\tat ..\x00"
    )
    delivery, orphan, receipt, failure = events
    assert isinstance(delivery, Delivery)
    assert delivery.subscription is sub
    assert delivery.message.body == b"System#IN_SERVICE"
    assert delivery.message.message_id == "m1"
    assert orphan == Orphan("gone")
    assert receipt == Receipt("r-9")
    assert failure == BrokerFailure("Illegal destination", "java.lang.Exception: x", "r-7")


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12))
def test_events_do_not_depend_on_how_tcp_splits_the_stream(cuts: list[int]) -> None:
    def run(split_at: list[int]) -> list[tuple[str, bytes]]:
        session = _connected_session()
        sub, _, _ = session.subscribe("/topic/t", "h", 10)
        stream = b"".join(frames).replace(b"SUB", sub.sub_id.encode())
        out: list[tuple[str, bytes]] = []
        for chunk in _split(stream, split_at):
            for event in session.receive_data(chunk):
                if isinstance(event, Delivery):
                    out.append((event.message.headers["message-id"], event.message.body))
                else:
                    out.append((type(event).__name__, b""))
        return out

    frames = [
        f"MESSAGE\nsubscription:SUB\ndestination:/topic/t\nmessage-id:{i}\n\n"
        f"1001#AgentState#READY#{i} é😀\x00\n".encode()
        for i in range(8)
    ]
    frames.insert(3, b"\n\nRECEIPT\nreceipt-id:r-1\n\n\x00")
    expected = run([])  # the whole stream in one read
    assert len(expected) == 9
    assert run(cuts) == expected


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def test_a_refused_subscribe_is_forgotten() -> None:
    session = _connected_session()
    kept, kept_receipt, _ = session.subscribe("/topic/ok", "h", 10)
    _, refused_receipt, _ = session.subscribe("/queue/forbidden", "h", 10)
    session.receive_data(f"RECEIPT\nreceipt-id:{kept_receipt}\n\n\x00".encode())
    session.receive_data(
        f"ERROR\nmessage:Not authorized\nreceipt-id:{refused_receipt}\n\n\x00".encode()
    )
    assert list(session.subscriptions) == [kept.sub_id]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("expires", "soon"),
        ("expires", "-5"),
        ("expires", " 17"),
        ("expires", "1" * 19),
        ("priority", "high"),
        ("priority", "10"),
        ("priority", "\u0665"),  # a Unicode digit: int() takes it, Java's parseByte does not
    ],
)
def test_send_frame_refuses_numeric_headers_activemq_would_drop_the_link_over(
    header: str, value: str
) -> None:
    session = _connected_session()
    with pytest.raises(ValueError, match=header):
        session.send_frame("/queue/q", b"x", headers={header: value})


def test_send_frame_passes_numeric_headers_through_unchanged() -> None:
    session = _connected_session()
    raw = session.send_frame("/queue/q", b"x", headers={"expires": "0", "priority": "9"})
    (frame,) = FrameParser().feed(raw)
    assert (frame.headers["expires"], frame.headers["priority"]) == ("0", "9")


def test_an_unexpected_frame_keeps_the_events_before_it() -> None:
    session = _connected_session()
    sub, receipt, _ = session.subscribe("/topic/t", "h", 10)
    data = (
        f"RECEIPT\nreceipt-id:{receipt}\n\n\x00"
        f"MESSAGE\nsubscription:{sub.sub_id}\ndestination:/topic/t\n\ngood\x00"
        "SEND\ndestination:/queue/x\n\nbad\x00"
        f"MESSAGE\nsubscription:{sub.sub_id}\ndestination:/topic/t\n\nafter\x00"
    ).encode()
    with pytest.raises(ProtocolViolation, match="unexpected SEND") as caught:
        session.receive_data(data)
    receipt_event, delivery = caught.value.events  # nothing after the bad frame
    assert receipt_event == Receipt(receipt)
    assert isinstance(delivery, Delivery) and delivery.message.body == b"good"


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (b"SEND\ndestination:/q\n\n\x00MESSAGE\nh:\\t\n\n\x00", "unexpected SEND"),
        (b"MESSAGE\nh:\\t\n\n\x00", "undefined escape"),
    ],
)
def test_a_malformed_stream_keeps_the_events_before_the_first_bad_frame(
    bad: bytes, why: str
) -> None:
    session = _connected_session()
    data = b"RECEIPT\nreceipt-id:r-5\n\n\x00" + bad
    with pytest.raises(ProtocolViolation, match=why) as caught:
        session.receive_data(data)
    assert caught.value.events == [Receipt("r-5")]


def test_backoff_grows_is_capped_and_jittered() -> None:
    fixed = Backoff(0.1, 1.0, jitter=0.5, random_fn=lambda: 1.0)  # maximal jitter
    delays = [fixed.next() for _ in range(8)]
    assert delays[:4] == pytest.approx([0.05, 0.1, 0.2, 0.4])
    assert delays[-1] == pytest.approx(0.5)  # capped at 1.0, halved by jitter
    no_jitter = Backoff(0.1, 1.0, jitter=0.5, random_fn=lambda: 0.0)
    assert [no_jitter.next() for _ in range(6)][-1] == pytest.approx(1.0)
    no_jitter.reset()
    assert no_jitter.next() == pytest.approx(0.1)
    huge = Backoff(0.1, 30.0)
    for _ in range(5000):  # a week-long outage must not overflow
        assert 0 < huge.next() <= 30.0
    with pytest.raises(ValueError):
        Backoff(0, 1)


def test_options_from_url_and_kwargs_are_typed_and_checked() -> None:
    transport = open_transport(
        "failover:(stomp://u:pw@a:1,stomp://b:2)?randomize=false&heartbeat=2500&reconnect=false",
        prefetch=7,
    )
    assert isinstance(transport, StompTransport)
    assert transport.options.heartbeat == 2500
    assert transport.options.reconnect is False
    assert transport.options.prefetch == 7
    assert transport.display_url == "failover:(stomp://a:1,stomp://b:2)"
    assert "pw" not in repr(transport)
    in_query = open_transport("failover:(stomp://a:1)?login=agent&passcode=pw-9")
    assert isinstance(in_query, StompTransport)
    assert "pw-9" not in repr(in_query) + in_query.display_url
    assert in_query._session.connect_frame().count(b"passcode:pw-9") == 1
    with pytest.raises(ValueError, match="unknown stomp transport option 'bogus'"):
        open_transport("stomp://a:1?bogus=1")
    with pytest.raises(ValueError, match="heartbeat"):
        StompOptions.build({"heartbeat": "often"})


# -- against a scripted STOMP peer -------------------------------------------------------------


async def _connect_recorded(closing: list[Any], url: str, **options: Any) -> tuple[Any, Recorder]:
    """A transport to ``url``, closed after the test, connected with a Recorder listening."""
    transport = open_transport(url, **options)
    closing.append(transport)
    recorder = Recorder()
    transport.set_listener(recorder)
    await transport.connect()
    return transport, recorder


HANG_UP = b""
"""A script's empty reply closes the connection without a word (as ActiveMQ now and then
does with a refused log-in)."""


class ScriptedBroker:
    """A minimal STOMP peer on 127.0.0.1: records frames, answers CONNECT with ``on_connect``
    and other frames with ``on_frame`` (default: a RECEIPT when one is asked for)."""

    def __init__(
        self,
        on_connect: Callable[[Frame], bytes | None],
        on_frame: Callable[[Frame], bytes | None] | None = None,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``tls``: a server context, to speak STOMP over TLS (``stomp+ssl://`` URLs)."""
        self.on_connect = on_connect
        self.tls = tls
        self.on_frame = on_frame or self.receipt
        self.frames: list[Frame] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    @staticmethod
    def receipt(frame: Frame) -> bytes | None:
        if "receipt" not in frame.headers:
            return None
        return f"RECEIPT\nreceipt-id:{frame.headers['receipt']}\n\n\x00".encode()

    async def start(self) -> ScriptedBroker:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        scheme = "stomp" if self.tls is None else "stomp+ssl"
        return f"{scheme}://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        parser = FrameParser()
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                for frame in parser.feed(data):
                    self.frames.append(frame)
                    script = self.on_connect if frame.command == "CONNECT" else self.on_frame
                    reply = script(frame)
                    if reply == HANG_UP:
                        writer.close()
                        return
                    if reply is not None:
                        writer.write(reply)
        writer.close()


CONNECTED = b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\x00"


async def test_connect_send_and_close_on_the_wire(closing: list[Any]) -> None:
    broker = await ScriptedBroker(lambda f: CONNECTED).start()
    closing.append(broker)
    url = broker.url.replace("stomp://", "stomp://agent:pw%40x@")
    transport = open_transport(url, heartbeat=0)
    closing.append(transport)
    await transport.connect()
    await transport.send("/queue/Connector1", "Hello#crm", jms_type="Hello#crm", ttl=5)
    await transport.close()
    commands = [f.command for f in broker.frames]
    assert commands == ["CONNECT", "SEND", "DISCONNECT"]
    connect, send, disconnect = broker.frames
    assert connect.headers["login"] == "agent"
    assert connect.headers["passcode"] == "pw@x"
    assert connect.headers["accept-version"] == "1.2"
    assert "content-length" not in send.headers
    assert send.headers["persistent"] == "false"
    assert "receipt" in disconnect.headers  # close() asked for (and got) a receipt


SCHEMES = ["stomp", "stomppy"]
"""The native transport and the stomp.py adapter answer these scripted-broker cases alike."""


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_error_frame_on_connect_is_a_broker_error_without_the_passcode(
    closing: list[Any], scheme: str
) -> None:
    broker = await ScriptedBroker(
        lambda f: b"ERROR\nmessage:User name [agent] or password is invalid.\n\n\x00"
    ).start()
    closing.append(broker)
    transport = open_transport(broker.url.replace("stomp://", f"{scheme}://agent:hunter2@"))
    closing.append(transport)
    with pytest.raises(BrokerError) as caught:
        await transport.connect()
    assert caught.value.broker_message == "User name [agent] or password is invalid."
    assert "hunter2" not in str(caught.value) + repr(transport)
    assert not transport.connected


EARLY_CLOSE_SCHEMES = [*SCHEMES, "aiostomp"]
"""aiostomp:// answers the brokers that hang up (``HANG_UP``) alike too."""


@pytest.mark.parametrize("scheme", EARLY_CLOSE_SCHEMES)
async def test_a_close_before_connected_without_an_error_is_tried_again(
    closing: list[Any], scheme: str
) -> None:
    """ActiveMQ 5.17 closes about 4 refused log-ins in 1,000 without their ERROR frame: the
    transport tries again at once, so the caller gets the broker's reason from the next one."""
    replies = iter([HANG_UP, b"ERROR\nmessage:User name [agent] or password is invalid.\n\n\x00"])
    broker = await ScriptedBroker(lambda f: next(replies)).start()
    closing.append(broker)
    transport = open_transport(broker.url.replace("stomp://", f"{scheme}://agent:hunter2@"))
    closing.append(transport)
    with pytest.raises(BrokerError, match="password is invalid"):
        await transport.connect()
    assert broker.connections == 2


@pytest.mark.parametrize("scheme", EARLY_CLOSE_SCHEMES)
async def test_a_broker_that_always_closes_before_connected_is_tried_three_times(
    closing: list[Any], scheme: str
) -> None:
    broker = await ScriptedBroker(lambda f: HANG_UP).start()
    closing.append(broker)
    transport = open_transport(broker.url.replace("stomp://", f"{scheme}://"))
    closing.append(transport)
    with pytest.raises(TransportError, match="closed before CONNECTED"):
        await transport.connect()
    assert broker.connections == EARLY_CLOSE_ATTEMPTS
    assert not transport.connected


def _hang_up_on_send(frame: Frame) -> bytes | None:
    return HANG_UP if frame.command == "SEND" else ScriptedBroker.receipt(frame)


@pytest.mark.parametrize("scheme", EARLY_CLOSE_SCHEMES)
async def test_reconnects_whose_link_closes_before_connected_back_off(
    closing: list[Any], scheme: str
) -> None:
    """The link drops; the broker then accepts three connections and closes each before
    CONNECTED, and answers the fourth.  One connection per attempt, spaced by the back-off:
    aiostomp alone used to reconnect thousands of times a second to such a broker."""
    replies = iter([CONNECTED, HANG_UP, HANG_UP, HANG_UP, CONNECTED])
    broker = await ScriptedBroker(lambda f: next(replies), _hang_up_on_send).start()
    closing.append(broker)
    transport, recorder = await _connect_recorded(
        closing, broker.url.replace("stomp://", f"{scheme}://"), heartbeat=0
    )
    await transport.send("/queue/q", "the broker hangs up on this")
    await _until(lambda: recorder.kinds == ["lost", "restored"], what="the reconnect")
    assert broker.connections == 5
    await asyncio.sleep(0.2)
    assert broker.connections == 5 and transport.connected


@pytest.mark.parametrize("scheme", EARLY_CLOSE_SCHEMES)
async def test_reconnect_false_stays_down_after_a_loss(closing: list[Any], scheme: str) -> None:
    broker = await ScriptedBroker(lambda f: CONNECTED, _hang_up_on_send).start()
    closing.append(broker)
    url = broker.url.replace("stomp://", f"{scheme}://")
    transport, recorder = await _connect_recorded(closing, url, heartbeat=0, reconnect=False)
    await transport.send("/queue/q", "the broker hangs up on this")
    await _until(lambda: recorder.kinds == ["lost"], what="the loss")
    await asyncio.sleep(0.3)
    assert broker.connections == 1 and not transport.connected
    assert recorder.kinds == ["lost"]


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_error_frame_mid_session_fails_the_request_and_reconnects(
    closing: list[Any], scheme: str
) -> None:
    def refuse_forbidden(frame: Frame) -> bytes | None:
        if frame.headers.get("destination") == "/queue/forbidden":
            receipt = frame.headers["receipt"]
            return f"ERROR\nmessage:Not authorized\nreceipt-id:{receipt}\n\n\x00".encode()
        return ScriptedBroker.receipt(frame)

    broker = await ScriptedBroker(lambda f: CONNECTED, refuse_forbidden).start()
    closing.append(broker)
    url = broker.url.replace("stomp://", f"{scheme}://")
    transport, recorder = await _connect_recorded(closing, url, heartbeat=0, initial_backoff=0.01)
    await transport.subscribe("/queue/allowed", lambda m: None)
    with pytest.raises(BrokerError, match="Not authorized"):
        await transport.subscribe("/queue/forbidden", lambda m: None)
    await _until(lambda: recorder.kinds == ["lost", "restored"], what="the reconnect after ERROR")
    assert isinstance(recorder.events[0][1], BrokerError)
    assert broker.connections == 2
    assert _stats(transport)["reconnects"] == 1
    resubscribed = [f.headers["destination"] for f in broker.frames if f.command == "SUBSCRIBE"]
    assert resubscribed == ["/queue/allowed", "/queue/forbidden", "/queue/allowed"]


async def test_garbage_from_the_broker_drops_the_link_not_the_client(closing: list[Any]) -> None:
    def garbage_after_send(frame: Frame) -> bytes | None:
        return b"not stomp at all\n\n\x00" if frame.command == "SEND" else None

    broker = await ScriptedBroker(lambda f: CONNECTED, garbage_after_send).start()
    closing.append(broker)
    transport, recorder = await _connect_recorded(
        closing, broker.url, heartbeat=0, initial_backoff=0.01
    )
    await transport.send("/queue/q", "x")
    await _until(lambda: recorder.kinds == ["lost", "restored"], what="the reconnect after garbage")
    assert isinstance(recorder.events[0][1], ProtocolError)


async def test_close_stops_reconnecting(closing: list[Any]) -> None:
    broker = await ScriptedBroker(lambda f: CONNECTED).start()
    closing.append(broker)
    proxy = await FaultProxy("127.0.0.1", int(broker.url.rsplit(":", 1)[1])).start()
    closing.append(proxy)
    transport = open_transport(proxy.url(), heartbeat=0, initial_backoff=0.01, max_backoff=0.05)
    recorder = Recorder()
    transport.set_listener(recorder)
    await transport.connect()
    proxy.cut(refuse=True)
    await _until(lambda: recorder.kinds == ["lost"], what="the loss")
    await asyncio.sleep(0.2)  # a few refused attempts
    await transport.close()
    await asyncio.sleep(0.2)  # let the proxy refuse attempts the kernel had already accepted
    attempts = broker.connections
    proxy.heal()
    await asyncio.sleep(0.3)
    assert broker.connections == attempts  # nobody came back after close()
    assert not transport.connected
    assert recorder.kinds == ["lost"]


async def test_handler_errors_are_counted_and_logged_once_per_kind(
    closing: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    delivered = b"".join(
        f"MESSAGE\nsubscription:sub-1\ndestination:/topic/t\nmessage-id:{i}\n\n{i}\x00".encode()
        for i in range(6)
    )

    def deliver_on_subscribe(frame: Frame) -> bytes | None:
        reply = ScriptedBroker.receipt(frame) or b""
        return reply + delivered if frame.command == "SUBSCRIBE" else reply or None

    broker = await ScriptedBroker(lambda f: CONNECTED, deliver_on_subscribe).start()
    closing.append(broker)
    transport = open_transport(broker.url, heartbeat=0)
    closing.append(transport)
    await transport.connect()
    seen: list[bytes] = []

    def handler(message: Message) -> None:
        seen.append(message.body)
        raise (KeyError if int(message.body) % 2 else ValueError)("bug")

    await transport.subscribe("/topic/t", handler)
    await _until(lambda: len(seen) == 6, what="all six messages despite the errors")
    assert transport.connected
    assert _stats(transport)["handler_errors"] == 6
    logged = [r for r in caplog.records if "handler for /topic/t raised" in r.getMessage()]
    assert len(logged) == 2  # one ValueError, one KeyError


async def test_silent_broker_is_a_connect_timeout(closing: list[Any]) -> None:
    broker = await ScriptedBroker(lambda f: None).start()
    closing.append(broker)
    transport = open_transport(broker.url, connect_timeout=0.3)
    closing.append(transport)
    with pytest.raises(TransportError, match=r"no CONNECTED within 0\.3s"):
        await transport.connect()


async def test_nothing_listening_is_a_transport_error() -> None:
    (port,) = free_ports(1)
    transport = open_transport(f"stomp://127.0.0.1:{port}")
    with pytest.raises(TransportError, match=str(port)):
        await transport.connect()


# -- against the real ActiveMQ ----------------------------------------------------------------


@pytest.mark.activemq
async def test_wrong_credentials_are_a_broker_error(
    secure_activemq: Any, closing: list[Any]
) -> None:
    url = secure_activemq.url(ssl=False, credentials=False)
    transport = open_transport(url, login=secure_activemq.login, passcode="wrong-pass-xyz")
    closing.append(transport)
    with pytest.raises(BrokerError) as caught:
        await transport.connect()
    assert caught.value.broker_message  # the broker's own words
    assert "wrong-pass-xyz" not in str(caught.value)
    good = open_transport(secure_activemq.url(ssl=False))
    closing.append(good)
    await good.connect()
    assert good.connected


@pytest.mark.activemq
async def test_tls_with_the_ca_connects_and_an_untrusted_cert_is_refused(
    secure_activemq: Any, closing: list[Any]
) -> None:
    trusted = open_transport(secure_activemq.url(ssl=True))
    closing.append(trusted)
    await trusted.connect()
    got: list[Message] = []
    destination = f"/queue/tls-{_name()}"
    await trusted.subscribe(destination, got.append)
    await trusted.send(destination, "over TLS")
    await _until(lambda: len(got) == 1, what="the message over TLS")
    untrusted_url = secure_activemq.url(ssl=True).split("?")[0]  # no cafile: system CAs only
    untrusted = open_transport(untrusted_url)
    closing.append(untrusted)
    with pytest.raises(TransportError, match="TLS handshake failed") as caught:
        await untrusted.connect()
    assert secure_activemq.passcode not in str(caught.value)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    unverified = open_transport(untrusted_url, ssl=ctx)
    closing.append(unverified)
    await unverified.connect()
    assert unverified.connected


@pytest.mark.activemq
async def test_heartbeats_keep_an_idle_link_alive(activemq: Any, closing: list[Any]) -> None:
    # ActiveMQ drops a client silent for 1.5x the interval; we stay idle for 6 intervals.
    transport, recorder = await _connect_recorded(closing, activemq.stomp_url, heartbeat=400)
    await asyncio.sleep(2.4)
    stats = _stats(transport)
    assert transport.connected
    assert recorder.events == []
    assert stats["disconnects"] == 0
    assert stats["heartbeats_out"] >= 2
    assert stats["heartbeats_in"] >= 2
    got: list[Message] = []
    destination = f"/queue/hb-{_name()}"
    await transport.subscribe(destination, got.append)
    await transport.send(destination, "still here")
    await _until(lambda: len(got) == 1, what="a message after the idle period")


@pytest.mark.activemq
async def test_half_open_link_is_detected_by_the_watchdog_and_reconnected(
    activemq: Any, closing: list[Any]
) -> None:
    proxy = await FaultProxy(activemq.host, activemq.stomp_port).start()
    closing.append(proxy)
    transport = open_transport(proxy.url(), heartbeat=300, connect_timeout=1.0)
    closing.append(transport)
    producer = open_transport(activemq.stomp_url)
    closing.append(producer)
    recorder = Recorder()
    transport.set_listener(recorder)
    await transport.connect()
    await producer.connect()
    destination = f"/topic/half-{_name()}"
    got: list[bytes] = []
    await transport.subscribe(destination, lambda m: got.append(m.body))

    proxy.half_open()  # both sockets stay open; nothing gets through either way
    await _until(lambda: recorder.kinds == ["lost"], what="the watchdog to declare the link dead")
    lost = recorder.events[0][1]
    assert isinstance(lost, ConnectionLost)
    assert "no data" in str(lost)
    proxy.heal()
    await _until(lambda: recorder.kinds == ["lost", "restored"], what="the reconnect")
    assert transport.connected
    assert _stats(transport)["reconnects"] == 1
    await producer.send(destination, "after reconnect")  # the subscription was re-issued
    await _until(lambda: got == [b"after reconnect"], what="delivery on the re-issued subscription")


@pytest.mark.activemq
async def test_broker_restart_reconnects_resubscribes_and_tells_the_listener(
    fresh_activemq: Any, closing: list[Any]
) -> None:
    transport, recorder = await _connect_recorded(
        closing, fresh_activemq.stomp_url, heartbeat=1000, max_backoff=0.5
    )
    destination = f"/queue/restart-{_name()}"
    got: list[bytes] = []
    await transport.subscribe(destination, lambda m: got.append(m.body))
    with pytest.raises(ConnectionLost):  # nothing waits forever on a dead broker
        fresh_activemq.kill()
        await _until(lambda: not transport.connected, what="the loss")
        await transport.send(destination, "lost in the outage")
    await asyncio.to_thread(fresh_activemq.start)
    await _until(lambda: recorder.kinds == ["lost", "restored"], 60, "the reconnect")
    await transport.send(destination, "after restart")
    await _until(lambda: got == [b"after restart"], what="delivery on the re-issued subscription")
    assert _stats(transport)["reconnects"] == 1


@pytest.mark.activemq
async def test_failover_skips_a_dead_first_broker(activemq: Any, closing: list[Any]) -> None:
    (dead,) = free_ports(1)
    url = f"failover:(stomp://127.0.0.1:{dead},{activemq.stomp_url})?randomize=false"
    transport = open_transport(url)
    closing.append(transport)
    await transport.connect()
    assert isinstance(transport, StompTransport)
    assert transport.endpoint == f"stomp://{activemq.host}:{activemq.stomp_port}"


@pytest.mark.activemq
async def test_failover_moves_to_the_second_broker_when_the_first_goes(
    activemq: Any, closing: list[Any]
) -> None:
    first = await FaultProxy(activemq.host, activemq.stomp_port).start()
    second = await FaultProxy(activemq.host, activemq.stomp_port).start()
    closing.extend([first, second])
    url = f"failover:({first.url()},{second.url()})?randomize=false"
    transport, recorder = await _connect_recorded(closing, url, max_backoff=0.5)
    assert isinstance(transport, StompTransport)
    assert transport.endpoint == f"stomp://127.0.0.1:{first.port}"
    got: list[bytes] = []
    destination = f"/topic/failover-{_name()}"
    await transport.subscribe(destination, lambda m: got.append(m.body))
    first.cut(refuse=True)
    await _until(lambda: recorder.kinds == ["lost", "restored"], what="failover")
    assert transport.endpoint == f"stomp://127.0.0.1:{second.port}"
    await transport.send(destination, "via the second")
    await _until(lambda: got == [b"via the second"], what="delivery after failover")


@pytest.mark.activemq
async def test_stalled_broker_blocks_senders_within_the_buffer_bound(
    activemq: Any, closing: list[Any]
) -> None:
    proxy = await FaultProxy(activemq.host, activemq.stomp_port, rcvbuf=16 * 1024).start()
    closing.append(proxy)
    limit = 64 * 1024
    transport = open_transport(proxy.url(), heartbeat=0, send_buffer_limit=limit, reconnect=False)
    closing.append(transport)
    await transport.connect()
    assert isinstance(transport, StompTransport)
    body = "x" * 4096
    frame_size = len(body) + 200
    destination = f"/topic/stall-{_name()}"  # no subscriber: the broker discards after heal
    proxy.stall("up")

    async def sender() -> None:
        for _ in range(50_000):  # ~200 MB if nothing pushed back: the bound must stop it
            await transport.send(destination, body)

    senders = [asyncio.create_task(sender()) for _ in range(3)]
    await _until(lambda: _stats(transport)["sender_waits"] >= 3, what="senders to block")
    # The kernel's buffers may still take a little; wait until no send completes for a while.
    deadline = time.monotonic() + WAIT
    sent = -1
    while sent != _stats(transport)["messages_out"]:
        assert time.monotonic() < deadline, "senders never settled: nothing pushes back"
        sent = _stats(transport)["messages_out"]
        await asyncio.sleep(0.3)
    assert not any(task.done() for task in senders)
    # Our two buffers together never exceed the transport's limit, one tick's frames aside.
    assert transport.buffered_bytes <= 2 * limit + 3 * frame_size
    assert sent * len(body) < 50_000 * len(body)

    proxy.cut()  # the link dies under the blocked senders: they fail, none waits forever
    results = await asyncio.wait_for(asyncio.gather(*senders, return_exceptions=True), WAIT)
    assert all(isinstance(r, ConnectionLost) for r in results)


# -- failover options (ActiveMQ's names and meaning), switch_broker, deadlines in our buffer ---


def test_failover_takes_activemqs_options_with_activemqs_meaning() -> None:
    url = (
        "failover:(stomp://a:1,stomp://b:2)?randomize=false&priorityBackup=true"
        "&initialReconnectDelay=50&maxReconnectDelay=2000&useExponentialBackOff=false"
        "&backOffMultiplier=3&maxReconnectAttempts=4&heartbeat=2500"
    )
    parsed = parse_url(url)
    assert parsed.policy == FailoverPolicy(
        randomize=False,
        priority_backup=True,
        initial_reconnect_delay=0.05,
        max_reconnect_delay=2.0,
        use_exponential_backoff=False,
        backoff_multiplier=3.0,
        max_reconnect_attempts=4,
    )
    assert parsed.options == {"heartbeat": "2500"}  # ours stay for the transport
    transport = open_transport(url)
    assert isinstance(transport, StompTransport)
    assert transport.options.initial_backoff == pytest.approx(0.05)
    assert transport.options.max_backoff == pytest.approx(2.0)
    assert transport.options.heartbeat == 2500
    # ActiveMQ's defaults: randomize is on, no priority broker, retry forever.
    default = parse_url("failover:(stomp://a:1,stomp://b:2)").policy
    assert default.randomize is True
    assert default.priority_backup is False
    assert default.max_reconnect_attempts == -1
    # maxReconnectAttempts=0: connect once, never reconnect (ActiveMQ >= 5.6).
    never = open_transport("failover:(stomp://a:1,stomp://b:2)?maxReconnectAttempts=0")
    assert isinstance(never, StompTransport)
    assert never.options.reconnect is False


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("backup=true", "ActiveMQ failover option 'backup' is not supported"),
        ("timeout=3000", "ActiveMQ failover option 'timeout' is not supported"),
        ("nested.wireFormat.maxInactivityDuration=0", "not supported"),
        ("randomize=maybe", "randomize must be true or false"),
        ("initialReconnectDelay=-5", "initialReconnectDelay must be >= 1"),
        ("maxReconnectAttempts=1.5", "maxReconnectAttempts must be an integer"),
        ("initialReconnectDelay=500&maxReconnectDelay=100", "below initialReconnectDelay"),
    ],
)
def test_bad_failover_options_are_a_clear_error(query: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        open_transport(f"failover:(stomp://a:1,stomp://b:2)?{query}")


def test_a_misspelt_failover_option_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ValueError, match="did you mean 'priorityBackup'"):
        open_transport("failover:(stomp://a:1,stomp://b:2)?prioritybackup=true")
    with pytest.raises(ValueError, match="did you mean 'maxReconnectDelay'"):
        open_transport("failover:(stomp://a:1,stomp://b:2)?maxReconectDelay=10")


def _order(url: str, lost_index: int | None) -> list[int]:
    transport = open_transport(url)
    assert isinstance(transport, StompTransport)
    endpoints = list(parse_url(url).endpoints)
    lost = endpoints[lost_index] if lost_index is not None else None
    return [e.port for e in transport._order(lost)]


def test_broker_order_follows_randomize_and_priority_backup() -> None:
    three = "failover:(stomp://a:1,stomp://b:2,stomp://c:3)"
    # randomize=false: the URL's order, rotated past the broker just lost (it comes last).
    assert _order(f"{three}?randomize=false", None) == [1, 2, 3]
    assert _order(f"{three}?randomize=false", 0) == [2, 3, 1]
    assert _order(f"{three}?randomize=false", 1) == [3, 1, 2]
    # priorityBackup: the priority broker (first) is tried first unless it was just lost.
    assert _order(f"{three}?randomize=false&priorityBackup=true", 1) == [1, 3, 2]
    assert _order(f"{three}?randomize=false&priorityBackup=true", 0) == [2, 3, 1]
    # randomize (ActiveMQ's default): every order appears, the lost broker always last.
    firsts = {_order(three, 2)[0] for _ in range(200)}
    assert firsts == {1, 2}
    assert {tuple(_order(three, 2))[-1] for _ in range(50)} == {3}
    assert {_order(f"{three}?priorityBackup=true", 2)[0] for _ in range(50)} == {1}


@pytest.mark.activemq
async def test_switch_broker_moves_to_the_next_broker_and_back(
    activemq: Any, closing: list[Any]
) -> None:
    first = await FaultProxy(activemq.host, activemq.stomp_port).start()
    second = await FaultProxy(activemq.host, activemq.stomp_port).start()
    closing.extend([first, second])
    transport, recorder = await _connect_recorded(
        closing, f"failover:({first.url()},{second.url()})?randomize=false"
    )
    assert isinstance(transport, StompTransport)
    assert transport.endpoint == f"stomp://127.0.0.1:{first.port}"
    got: list[bytes] = []
    destination = f"/topic/switch-{_name()}"
    await transport.subscribe(destination, lambda m: got.append(m.body))

    assert await transport.switch_broker("no connector answered Hello") is True
    assert recorder.kinds[0] == "lost"
    await _until(lambda: recorder.kinds == ["lost", "restored"], what="the switch")
    assert transport.endpoint == f"stomp://127.0.0.1:{second.port}"
    await transport.send(destination, "via the second")
    await _until(lambda: got == [b"via the second"], what="delivery after the switch")

    assert await transport.switch_broker("none there either") is True
    await _until(lambda: recorder.kinds == ["lost", "restored"] * 2, what="the switch back")
    assert transport.endpoint == f"stomp://127.0.0.1:{first.port}"
    assert _stats(transport)["broker_switches"] == 2


async def test_reconnecting_gives_up_after_max_reconnect_attempts(closing: list[Any]) -> None:
    broker = await ScriptedBroker(lambda f: CONNECTED).start()
    closing.append(broker)
    (dead,) = free_ports(1)
    url = (
        f"failover:({broker.url},stomp://127.0.0.1:{dead})?randomize=false"
        "&maxReconnectAttempts=2&initialReconnectDelay=10&maxReconnectDelay=20"
    )
    transport, recorder = await _connect_recorded(closing, url, heartbeat=0)
    await broker.close()  # no new connections from now on ...
    assert isinstance(transport, StompTransport)
    assert await transport.switch_broker("test") is True  # ... and the link is gone
    with pytest.raises(ConnectionLost, match="gave up reconnecting after 2 round"):
        await _until_raises(lambda: transport.send("/queue/x", "y"))
    assert recorder.kinds == ["lost"]


async def _until_raises(call: Callable[[], Any]) -> None:
    """Call until it raises something other than a "reconnecting" ConnectionLost."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            await call()
        except ConnectionLost as exc:
            if not str(exc).endswith(": reconnecting"):
                raise
        await asyncio.sleep(0.02)
    pytest.fail("never raised")


@pytest.mark.parametrize("over_tls", [False, True])
async def test_a_frame_held_past_its_deadline_is_dropped_not_written(
    closing: list[Any], tls_pair: TLSPair, over_tls: bool
) -> None:
    tls = tls_pair.server if over_tls else None
    broker = await ScriptedBroker(lambda f: CONNECTED, tls=tls).start()
    closing.append(broker)
    options: dict[str, Any] = {"ssl": tls_pair.client} if over_tls else {}
    transport = open_transport(broker.url, heartbeat=0, **options)
    closing.append(transport)
    await transport.connect()
    loop = asyncio.get_running_loop()
    # Accepted into this loop turn's buffer; the loop then stalls past the deadline before
    # the turn's write: the frame must not go out late.
    await transport.send("/queue/held", "stale", deadline=loop.time() + 0.05)
    time.sleep(0.1)  # noqa: ASYNC251 - blocking the loop on purpose: a slow turn
    await transport.send("/queue/held", "fresh", deadline=loop.time() + WAIT)
    await _until(lambda: any(f.body == b"fresh" for f in broker.frames), what="the fresh frame")
    assert [f.body for f in broker.frames if f.command == "SEND"] == [b"fresh"]
    assert _stats(transport)["expired_unsent"] == 1


async def test_tls_runs_in_the_link_with_no_buffer_outside_ours(
    closing: list[Any], tls_pair: TLSPair
) -> None:
    """Over TLS the frames go through our own TLS layer straight into a TCP transport with
    zero write-buffer limits: nothing waits in a buffer we do not see (issue 11), and the link
    still writes and reads after CONNECT (asyncio's TLS layer with zero limits did not)."""
    broker = await ScriptedBroker(lambda f: CONNECTED, tls=tls_pair.server).start()
    closing.append(broker)
    url = f"{broker.url}?cafile={tls_pair.cafile}"
    transport = open_transport(url, heartbeat=0)
    closing.append(transport)
    await transport.connect()
    assert isinstance(transport, StompTransport)
    link = transport._link
    assert link is not None and link.transport is not None and link.tls is not None
    assert link.tls.ready
    assert link.transport.get_extra_info("sslcontext") is None  # not asyncio's TLS
    assert link.transport.get_write_buffer_limits() == (0, 0)
    for i in range(20):  # each waits for its receipt: writes and reads keep flowing
        await transport.subscribe(f"/topic/tls-{i}", lambda m: None)
    assert [f.headers["destination"] for f in broker.frames if f.command == "SUBSCRIBE"] == [
        f"/topic/tls-{i}" for i in range(20)
    ]
    await transport.close()
    assert broker.frames[-1].command == "DISCONNECT"


async def test_an_untrusted_tls_broker_is_a_clear_transport_error(
    closing: list[Any], tls_pair: TLSPair
) -> None:
    broker = await ScriptedBroker(lambda f: CONNECTED, tls=tls_pair.server).start()
    closing.append(broker)
    transport = open_transport(broker.url, heartbeat=0, reconnect=False)  # system CAs only
    closing.append(transport)
    with pytest.raises(TransportError, match=r"TLS handshake failed: .*certificate"):
        await transport.connect()


@pytest.mark.skipif(not QUICKACK_SUPPORTED, reason="TCP_QUICKACK is Linux-only")
async def test_sockets_get_nodelay_and_quickack_unless_turned_off(closing: list[Any]) -> None:
    broker = await ScriptedBroker(lambda f: CONNECTED).start()
    closing.append(broker)
    for enabled in (True, False):
        transport = open_transport(broker.url, heartbeat=0, tcp_quickack=enabled)
        closing.append(transport)
        await transport.connect()
        assert isinstance(transport, StompTransport)
        link = transport._link
        assert link is not None and link.transport is not None
        sock = link.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert (link.sock is not None) is enabled


@pytest.mark.activemq
async def test_priority_backup_returns_to_the_priority_broker_when_it_comes_back(
    two_activemq: Any, closing: list[Any]
) -> None:
    """The vendor's HA pair (two independent brokers): lose A, run on B, return to A."""
    pair = two_activemq
    url = pair.failover_url(initialReconnectDelay=100, maxReconnectDelay=500)
    transport, recorder = await _connect_recorded(closing, url, heartbeat=1000)
    assert isinstance(transport, StompTransport)
    on_a, on_b = (f"stomp://{h.host}:{h.stomp_port}" for h in (pair.a, pair.b))
    assert transport.endpoint == on_a
    got: list[bytes] = []
    destination = f"/topic/priority-{_name()}"
    await transport.subscribe(destination, lambda m: got.append(m.body))

    await asyncio.to_thread(pair.a.stop)
    await _until(lambda: recorder.kinds == ["lost", "restored"], 60, "failover to B")
    assert transport.endpoint == on_b
    await transport.send(destination, "on B")
    await _until(lambda: got == [b"on B"], what="delivery on B (subscription re-issued)")

    await asyncio.to_thread(pair.a.start)
    await _until(lambda: transport.endpoint == on_a, 60, "the return to the priority broker")
    assert recorder.kinds == ["lost", "restored", "lost", "restored"]
    await transport.send(destination, "back on A")
    await _until(lambda: got == [b"on B", b"back on A"], what="delivery back on A")
    assert _stats(transport)["broker_switches"] == 1


@pytest.mark.activemq
async def test_after_switch_broker_priority_backup_does_not_pull_the_link_back(
    activemq: Any, closing: list[Any]
) -> None:
    """The caller switched because its connector is not on the priority broker: the transport
    must not return there on its own (it would flap), until a link is lost for another reason."""
    first = await FaultProxy(activemq.host, activemq.stomp_port).start()
    second = await FaultProxy(activemq.host, activemq.stomp_port).start()
    closing.extend([first, second])
    url = (
        f"failover:({first.url()},{second.url()})?randomize=false&priorityBackup=true"
        "&initialReconnectDelay=20&maxReconnectDelay=50"
    )
    transport, recorder = await _connect_recorded(closing, url)
    assert isinstance(transport, StompTransport)
    assert await transport.switch_broker("the connector is on the backup") is True
    await _until(lambda: recorder.kinds == ["lost", "restored"], what="the switch")
    assert transport.endpoint == f"stomp://127.0.0.1:{second.port}"
    await asyncio.sleep(1.0)  # ~20 priority probes' worth of time at these delays
    assert transport.endpoint == f"stomp://127.0.0.1:{second.port}"
    assert recorder.kinds == ["lost", "restored"]
    second.cut(refuse=True)  # an ordinary loss: the priority broker comes first again
    await _until(lambda: recorder.kinds == ["lost", "restored"] * 2, what="the reconnect")
    assert transport.endpoint == f"stomp://127.0.0.1:{first.port}"


async def test_the_frames_of_one_loop_turn_leave_in_one_write(closing: list[Any]) -> None:
    """Fewer, fuller writes: what keeps a broker with 64 KB pinned buffers from pruning."""
    broker = await ScriptedBroker(lambda f: CONNECTED).start()
    closing.append(broker)
    transport = open_transport(broker.url, heartbeat=0)
    closing.append(transport)
    await transport.connect()
    await asyncio.sleep(0)  # let any write left from connecting go out first
    before = _stats(transport)["writes"]
    # 200 senders in one turn: each takes the fast path (no wait), so all share one write.
    await asyncio.gather(*(transport.send("/queue/turn", f"m{i}") for i in range(200)))
    await _until(lambda: len([f for f in broker.frames if f.command == "SEND"]) == 200)
    assert _stats(transport)["writes"] - before == 1
    await transport.send("/queue/turn", "next turn")
    await _until(lambda: len([f for f in broker.frames if f.command == "SEND"]) == 201)
    assert _stats(transport)["writes"] - before == 2
