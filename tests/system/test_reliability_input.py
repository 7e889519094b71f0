"""Bad input, for real: coverage-guided fuzzing of every parser, hostile frames on real sockets.

* ``tests/fuzz`` targets run under atheris for a bounded number of inputs each (a crash, a
  non-ProtocolError exception, a twin disagreement or a 10 s hang fails the test);
* the bugs those runs found stay here as regressions (strict-xfail while open);
* a tiny STOMP server on loopback feeds our transport oversized frames, too many headers, bad
  UTF-8, undefined escapes and lying content-lengths: the good frames before the bad one are
  delivered, the link is closed deliberately with a ProtocolError saying why, and it comes back;
* a hostile raw-socket peer hits the real ActiveMQ with the same garbage, and publishes junk to
  a client's topic, while a well-behaved client's commands keep succeeding.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cucmconn import Client, ProtocolError
from cucmconn.cli.traffic import LoadDriver
from cucmconn.codec import _pystomp
from cucmconn.codec.commands import encode_command, parse_command
from cucmconn.transport import Message, open_transport
from tests.activemq import BrokerHandle
from tests.fakeconnector import FakeConnector
from tests.fuzz.targets import TARGETS
from tests.waiting import waiter

# -- coverage-guided fuzzing (atheris) -----------------------------------------------------------

FUZZ_RUNS = {"events": 20_000, "frames": 10_000, "message": 20_000, "command": 20_000}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_atheris_target_holds(target: str, tmp_path: Any) -> None:
    pytest.importorskip("atheris", reason="atheris (pip install atheris) is not installed")
    from tests.fuzz.run import fuzz

    result = fuzz(target, runs=FUZZ_RUNS[target], artifacts=tmp_path)
    assert result.ok, f"{target} crashed on {result.crash}:\n{result.tail}"
    assert result.inputs >= FUZZ_RUNS[target], result.tail
    assert result.coverage > 0, "the harness measured no coverage: is instrumentation working?"
    print(f"\nFIGURE fuzz {result.row()}")


# -- what fuzzing found: fixed, kept as regression tests (open ones: strict xfail + KNOWN_BUGS) ---


@pytest.mark.parametrize("length", [b"0", b"000"])
def test_bug_pure_parser_zero_content_length(length: bytes) -> None:
    frames = _pystomp.FrameParser().feed(b"ERROR\ncontent-length:" + length + b"\n\n\x00")
    assert [(f.command, f.body) for f in frames] == [("ERROR", b"")]


def test_bug_event_twins_disagree_on_agent_system_event() -> None:
    from cucmconn.codec import _pyevents

    _cevents = pytest.importorskip("cucmconn.codec._cevents")
    body = b"1001#System#IN_SERVICE"
    assert _cevents.decode_event(body) == _pyevents.decode_event(body)


@pytest.mark.parametrize("twin", ["_pystomp", "_cstomp"])
def test_bug_crlf_split_across_reads_at_the_header_line_limit(twin: str) -> None:
    module = pytest.importorskip(f"cucmconn.codec.{twin}")
    line = b"h:" + b"v" * 46  # exactly max_header_line (48) bytes before the CRLF
    assert module.FrameParser(max_header_line=48).feed(b"MESSAGE\n" + line + b"\r\n\nbody\x00")
    parser = module.FrameParser(max_header_line=48)  # the same bytes, split inside the CRLF
    frames = parser.feed(b"MESSAGE\n" + line + b"\r") + parser.feed(b"\n\nbody\x00")
    assert [f.body for f in frames] == [b"body"]


def test_bug_blank_argument_vanishes_on_the_wire() -> None:
    try:
        jms_type, body = encode_command("MakeCall", "1001", " ")
    except ValueError:
        return  # refused before sending: what the fix should do
    assert len(parse_command(jms_type, body)[2]) == 1


# -- a tiny hostile STOMP server, to see what our transport does with garbage -----------------


def _frame(command: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    head = "".join(f"{k}:{v}\n" for k, v in headers.items())
    return f"{command}\n{head}\n".encode() + body + b"\x00"


class HostileServer:
    """Speaks just enough STOMP to connect a client, then sends ``scripts[n]`` on link ``n``.

    Every link gets the good MESSAGE ``good-<n>`` on each subscription first; the script's
    bytes follow.  Links past the end of ``scripts`` get only the good message.
    """

    def __init__(self, scripts: list[bytes]) -> None:
        self.scripts = scripts
        self.links = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> HostileServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"stomp://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        link = self.links
        self.links += 1
        parser = _pystomp.FrameParser()
        with contextlib.suppress(OSError, ProtocolError):
            while data := await reader.read(65536):
                for frame in parser.feed(data):
                    if frame.command == "CONNECT":
                        writer.write(_frame("CONNECTED", {"version": "1.2", "heart-beat": "0,0"}))
                    elif frame.command == "SUBSCRIBE":
                        self._subscribed(writer, frame.headers, link)

    def _subscribed(self, writer: asyncio.StreamWriter, headers: dict[str, str], link: int) -> None:
        if "receipt" in headers:
            writer.write(_frame("RECEIPT", {"receipt-id": headers["receipt"]}))
        good = {"subscription": headers["id"], "destination": headers["destination"],
                "message-id": f"m-{link}", "expires": "not-a-number"}  # fmt: skip
        writer.write(_frame("MESSAGE", good, f"good-{link}".encode()))
        if link < len(self.scripts):
            writer.write(self.scripts[link].replace(b"@SUB@", headers["id"].encode()))


class Recorder:
    def __init__(self) -> None:
        self.lost: list[BaseException | None] = []
        self.restored = 0

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)

    def connection_restored(self) -> None:
        self.restored += 1


MAX_FRAME = 64 * 1024
_MSG = b"MESSAGE\nsubscription:@SUB@\ndestination:/topic/t\n"
HOSTILE_FRAMES = {
    "oversized frame": (_MSG + b"\n" + b"x" * (MAX_FRAME + 1) + b"\x00", "frame too large"),
    "oversized content-length": (_MSG + b"content-length:99999999\n\nx\x00", "frame too large"),
    "too many headers": (
        _MSG + b"".join(b"h%d:v\n" % i for i in range(200)) + b"\nx\x00",
        "too many headers",
    ),
    "header line too long": (_MSG + b"h:" + b"v" * 70_000 + b"\n\nx\x00", "too long"),
    "bad UTF-8 in a header": (_MSG + b"h:\xff\xfe\n\nx\x00", "not valid UTF-8"),
    "undefined escape": (_MSG + b"h:\\t\n\nx\x00", "undefined escape"),
    "invalid command": (b"message\n\nx\x00", "invalid STOMP command"),
    "content-length lies": (_MSG + b"content-length:1\n\nxyz\x00", "no NUL after"),
    # Junk with no blank line is only refused at a limit (the command line is checked once the
    # whole head is in): here the header count, after 128 of its 300 newlines.
    "binary junk": (bytes(range(1, 256)) * 300, "too many headers"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_FRAMES))
async def test_hostile_frame_closes_the_link_deliberately_and_loses_nothing(case: str) -> None:
    payload, why = HOSTILE_FRAMES[case]
    server = await HostileServer([payload]).start()
    transport = open_transport(server.url, max_frame_size=MAX_FRAME, max_backoff=0.2, heartbeat=0)
    recorder = Recorder()
    transport.set_listener(recorder)
    got: list[Message] = []
    try:
        await transport.connect()
        await transport.subscribe("/topic/t", got.append)
        await _until(lambda: recorder.restored == 1, what="the link to be closed and re-opened")
        await _until(lambda: len(got) == 2, what="the good message on the new link")
        assert [m.body for m in got] == [b"good-0", b"good-1"]  # nothing before the bad frame lost
        assert got[0].expires is None  # a non-numeric expires is tolerated, not a crash
        (exc,) = recorder.lost
        assert isinstance(exc, ProtocolError), repr(exc)
        assert why in str(exc)
        assert transport.connected and server.links == 2
    finally:
        await transport.close()
        await server.close()


async def test_bug_unexpected_frame_drops_good_frames_of_the_same_read() -> None:
    server = await HostileServer([b"SEND\ndestination:/queue/x\n\nx\x00"]).start()
    transport = open_transport(server.url, max_backoff=0.2, heartbeat=0)
    got: list[Message] = []
    try:
        await transport.connect()
        await transport.subscribe("/topic/t", got.append)  # RECEIPT, MESSAGE, SEND in one read
        await _until(lambda: len(got) == 2, what="good-0 before the bad frame, good-1 after it")
        assert [m.body for m in got] == [b"good-0", b"good-1"]
    finally:
        await transport.close()
        await server.close()


async def test_orphan_messages_are_counted_not_fatal() -> None:
    orphan = b"MESSAGE\nsubscription:sub-999\ndestination:/topic/x\n\nstray\x00"
    server = await HostileServer([orphan * 3]).start()
    transport = open_transport(server.url, heartbeat=0)
    got: list[Message] = []
    try:
        await transport.connect()
        await transport.subscribe("/topic/t", got.append)
        stats = transport.stats  # type: ignore[attr-defined]
        await _until(lambda: stats()["orphan_messages"] == 3, what="orphans to be counted")
        assert [m.body for m in got] == [b"good-0"]
        assert transport.connected
    finally:
        await transport.close()
        await server.close()


_until = waiter(10.0)


# -- the real ActiveMQ: a hostile peer beside a well-behaved client --------------------------------


def _raw_connect(broker: BrokerHandle) -> socket.socket:
    sock = socket.create_connection((broker.host, broker.stomp_port), timeout=5)
    sock.sendall(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\x00")
    assert sock.recv(4096).startswith(b"CONNECTED")
    return sock


def _answer(sock: socket.socket, wait: float = 5.0) -> bytes:
    """What the broker says within ``wait`` s: a frame, b"" for a close, b"?" for silence."""
    sock.settimeout(wait)
    try:
        return sock.recv(65536)
    except TimeoutError:
        return b"?"
    except OSError:
        return b""


BROKER_GARBAGE = {
    "too many headers": b"SEND\ndestination:/queue/g\n"
    + b"".join(b"h%d:v\n" % i for i in range(2000))
    + b"\nx\x00",
    "header line too long": b"SEND\ndestination:/queue/g\nh:" + b"v" * 20_000 + b"\n\nx\x00",
    "unknown command": b"BOGUS\n\n\x00",
    "missing destination": b"SEND\nreceipt:r1\n\nx\x00",
    "non-numeric expires": b"SEND\ndestination:/queue/g\nexpires:soon\n\nx\x00",
    "non-numeric priority": b"SEND\ndestination:/queue/g\npriority:high\n\nx\x00",
    "binary junk": bytes(range(1, 256)) * 8,
}


@pytest.fixture
def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"In-{tag}", f"in-{tag}"


@pytest.fixture
async def fake(activemq: BrokerHandle, names: tuple[str, str]) -> AsyncIterator[FakeConnector]:
    connector = await FakeConnector(
        open_transport(activemq.stomp_url), queue=f"/queue/{names[0]}"
    ).start()
    yield connector
    await connector.stop()


async def test_broker_garbage_hurts_only_the_sender(
    activemq: BrokerHandle, fake: FakeConnector, names: tuple[str, str]
) -> None:
    client = Client(activemq.stomp_url, queue=names[0], client_destination=names[1], ttl=5.0)
    answers: dict[str, bytes] = {}
    async with client:
        driver = LoadDriver(client, [str(62_000 + i) for i in range(10)], 100.0)
        assert (await driver.login_all()).answered == 10
        driver.start()
        for case, data in BROKER_GARBAGE.items():
            sock = await asyncio.to_thread(_raw_connect, activemq)
            try:
                sock.sendall(data)
                answers[case] = await asyncio.to_thread(_answer, sock)
            finally:
                sock.close()
        await asyncio.sleep(0.5)
        await driver.stop()
        tally = driver.tally
        assert tally.sent > 0 and tally.answered == tally.sent, tally.line()
        assert client.stats().reconnects == 0
    # ActiveMQ's own behaviour, recorded so a broker upgrade that changes it is noticed.
    for case in ("too many headers", "header line too long", "unknown command"):
        assert answers[case].startswith(b"ERROR"), (case, answers[case][:80])
    assert b"without a Destination" in answers["missing destination"]
    # Silent close, no ERROR frame: why our transport must refuse these before sending.
    assert answers["non-numeric expires"] == b""
    assert answers["non-numeric priority"] == b""
    summary = ", ".join(f"{k}: {_verdict(v)}" for k, v in answers.items())
    print(f"\nFIGURE broker-garbage: {tally.line()}; broker answers: {summary}")


def _verdict(answer: bytes) -> str:
    if answer == b"":
        return "closed silently"
    if answer == b"?":
        return "no answer (waits)"
    lines = answer.split(b"\n")
    message = next((line for line in lines if line.startswith(b"message:")), b"ERROR")
    return message.decode(errors="replace")[:60]


JUNK_EVENTS: list[tuple[bytes, dict[str, str]]] = [
    (b"\xff\xfe\xfd", {}),
    (b"####", {}),
    (b"1001#Error", {}),
    (b'{"type": 5, "agentId": []}', {}),
    (b"{not json", {}),
    (b"x" * 1_000_000, {}),
    (b"System#IN_SERVICE", {"correlation-id": "not-one-of-ours"}),
    (b"62000#AgentState#READY#2026-01-01 10:00:00", {"correlation-id": "x,y#z|w"}),
    (b"62000#Agent\x00State#READY", {"content-length": "23"}),
]


async def test_junk_on_the_client_topic_is_counted_and_harmless(
    activemq: BrokerHandle, fake: FakeConnector, names: tuple[str, str]
) -> None:
    client = Client(activemq.stomp_url, queue=names[0], client_destination=names[1], ttl=5.0)
    topic = f"/topic/{names[1]}"
    async with client:
        driver = LoadDriver(client, [str(62_000 + i) for i in range(10)], 100.0)
        assert (await driver.login_all()).answered == 10
        driver.start()
        sock = await asyncio.to_thread(_raw_connect, activemq)
        try:
            for body, headers in JUNK_EVENTS:
                head = "".join(f"{k}:{v}\n" for k, v in headers.items())
                frame = f"SEND\ndestination:{topic}\n{head}\n".encode() + body + b"\x00"
                await asyncio.to_thread(sock.sendall, frame)
            await asyncio.sleep(1.0)
        finally:
            sock.close()
        await driver.stop()
        stats = client.stats()
        tally = driver.tally
        assert tally.answered == tally.sent, tally.line()  # nothing unavailable, lost, late
        assert stats.malformed >= 5, stats  # the undecodable bodies, counted and dropped
        assert stats.unmatched >= 2, stats  # correlation ids that are not ours resolve nothing
        assert stats.reconnects == 0 and client.in_service
        print(
            f"\nFIGURE junk-events: {len(JUNK_EVENTS)} junk messages: malformed {stats.malformed}, "
            f"unmatched {stats.unmatched}; load {tally.line()}"
        )


@pytest.mark.parametrize("header", [{"expires": "soon"}, {"priority": "high"}])
async def test_bug_transport_sends_non_numeric_expires(
    activemq: BrokerHandle, header: dict[str, str]
) -> None:
    transport = open_transport(activemq.stomp_url, max_backoff=0.2)
    recorder = Recorder()
    transport.set_listener(recorder)
    await transport.connect()
    try:
        with pytest.raises(ValueError):
            await transport.send(f"/queue/bad-{uuid.uuid4().hex[:6]}", "x", headers=header)
        await asyncio.sleep(0.5)
        assert recorder.lost == []
    finally:
        await transport.close()


# -- the emulator over the wire: random and hostile commands beside a well-behaved client -------

FUZZ_AGENTS = [str(65_000 + i) for i in range(10)]


def _hostile_commands(rng: random.Random, queue: str, own_topic: str) -> list[dict[str, Any]]:
    """SEND arguments for our transport: random names, targets, bodies, headers and TTLs."""
    alphabet = "ABCxyz019#,|: \t\u00e9\u202e%$'\"<>;"
    names = ["MakeCall", "Login", "Logout", "GetState", "AnswerCall", "Hello", "Beat",
             "Transfer_sst", "Conferencecall", "DROP TABLE", "", "x" * 600]  # fmt: skip
    out: list[dict[str, Any]] = []
    for i in range(400):
        name = rng.choice(names)
        target = rng.choice([*FUZZ_AGENTS, "65099", "", "1001,1002", "65000#Logout", "-1"])
        body = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        kind = i % 8
        send: dict[str, Any] = {
            "destination": queue,
            "body": body,
            "jms_type": f"{name}#{target}",
            "reply_to": own_topic,
            "correlation_id": f"h-{i}",
        }
        if kind == 1:
            # Missing reply-to: nowhere to answer, and no owner's rights, so it may aim at the
            # good client's agents too (test_reliability_access pins that ownership rule).
            send["reply_to"] = None
            send["jms_type"] = f"{name}#{rng.choice([*FUZZ_AGENTS[:3], '65090', '65099'])}"
        elif kind == 2:
            send["reply_to"] = queue  # answer into the command queue: a loop, must be refused
        elif kind == 3:
            send["body"] = "9" * rng.choice([5_000, 100_000, 1_000_000])  # huge
        elif kind == 4:
            send["ttl"] = rng.choice([-60.0, 1e-6])  # already expired on arrival
        elif kind == 5:
            send["jms_type"] = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 80)))
        elif kind == 6:
            send["headers"] = {"expires": "0", "priority": "9", "x-junk": body or "-"}
        elif kind == 7:
            send["body"] = f"{rng.choice(FUZZ_AGENTS)},{body}|{body}"  # injection attempts
        out.append(send)
    return out


async def test_emulator_answers_hostile_commands_and_keeps_serving(
    activemq: BrokerHandle, names: tuple[str, str]
) -> None:
    from cucmconn import Emulator

    rng = random.Random(20261125)
    queue = f"/queue/{names[0]}"
    emulator = Emulator(activemq.stomp_url, queue=names[0], extensions="65000-65099")
    good = Client(activemq.stomp_url, queue=names[0], client_destination=names[1], ttl=5.0)
    hostile = open_transport(activemq.stomp_url)
    hostile_topic = f"/topic/hostile-{uuid.uuid4().hex[:6]}"
    answers: list[Message] = []
    async with emulator, good:
        driver = LoadDriver(good, FUZZ_AGENTS, 100.0)
        assert (await driver.login_all()).answered == len(FUZZ_AGENTS)
        await hostile.connect()
        await hostile.subscribe(hostile_topic, answers.append)
        driver.start()
        sent = 0
        for command in _hostile_commands(rng, queue, hostile_topic):
            destination, body = command.pop("destination"), command.pop("body")
            await hostile.send(destination, body, **command)
            sent += 1
        raw = await asyncio.to_thread(_raw_connect, activemq)
        try:  # bytes our transport would never send: bad UTF-8, NUL with content-length
            for payload in (b"\xff\xfe\xfd", b"6500\x001", "\u00e9".encode("latin-1")):
                frame = (
                    f"SEND\ndestination:{queue}\ntype:MakeCall#65001\nreply-to:"
                    f"{hostile_topic}\ncontent-length:{len(payload)}\n\n"
                ).encode()
                await asyncio.to_thread(raw.sendall, frame + payload + b"\x00")
                sent += 1
            await asyncio.sleep(1.0)
        finally:
            raw.close()
        await _until(lambda: emulator.stats().backlog == 0, 30, "the emulator to work through it")
        await driver.stop()
        await hostile.close()
        stats = emulator.stats()
        tally = driver.tally
        assert tally.sent > 0 and tally.answered == tally.sent, tally.line()
        assert stats.internal_errors == 0, stats
        assert stats.commands_malformed > 0 and stats.errors_sent > 0, stats
        assert stats.unroutable > 0, "the loop/missing reply-to commands must go nowhere"
        assert stats.unauthorised > 0, "commands on the good client's agents must be refused"
        errors = [m for m in answers if b"#Error#" in m.body]
        assert errors, "the hostile sender must be told, with errors"
        # The good client's agents are still its own: nobody logged them out or took them.
        assert {good.agent(e).state for e in FUZZ_AGENTS} <= {"READY", "TALKING", "NOT_READY"}
        violations = sum(b"PRIVILLEGE_VIOLATION" in m.body for m in answers)
        print(
            f"\nFIGURE emulator-fuzz: {sent} hostile commands -> {len(answers)} answers "
            f"({len(errors)} errors, {violations} PRIVILLEGE_VIOLATION); emulator malformed "
            f"{stats.commands_malformed}, unroutable {stats.unroutable}, unauthorised "
            f"{stats.unauthorised}, expired "
            f"{stats.commands_expired}, internal errors 0; good client {tally.line()}"
        )
