"""The STOMP 1.2 frame codec, run against both twins (pure ``_pystomp`` and compiled ``_cstomp``).

The compiled twin is skipped only when ``CUCMCONN_NO_EXTENSIONS`` is set; otherwise a missing
build fails here, so a silently absent extension cannot pass for a tested one.
"""

from __future__ import annotations

import importlib
import itertools
import os
import re
from types import ModuleType
from typing import Any

import pytest
from aiostomp.protocol import StompProtocol
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cucmconn.codec import _pyevents, _pystomp
from cucmconn.errors import ProtocolError

_NO_EXT = os.environ.get("CUCMCONN_NO_EXTENSIONS", "") not in ("", "0")


def _cython() -> ModuleType:
    if _NO_EXT:
        pytest.skip("CUCMCONN_NO_EXTENSIONS is set: compiled twin not under test")
    return importlib.import_module("cucmconn.codec._cstomp")


@pytest.fixture(params=["python", "cython"])
def stomp(request: pytest.FixtureRequest) -> ModuleType:
    return _pystomp if request.param == "python" else _cython()


def _twins() -> list[ModuleType]:
    return [_pystomp] if _NO_EXT else [_pystomp, importlib.import_module("cucmconn.codec._cstomp")]


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Captured from ActiveMQ 5.17.2 (Debian) over STOMP 1.2: a TextMessage event (no content-length;
# ActiveMQ escapes the colons of message-id) and a BytesMessage one (content-length set).
CONNECTED = (
    b"CONNECTED\nserver:ActiveMQ/5.17.2\nheart-beat:10000,10000\n"
    b"session:ID:vm-45195-1795586942002-3:1\nversion:1.2\n\n\x00\n"
)
EVENT_BODY = b"1001#DialogState#ACTIVE#2024-11-25 06:00:00#16777215#1001,1002"
MESSAGE = (
    b"MESSAGE\nexpires:1795587559256\ncorrelation-id:c0ffee-42\ndestination:/topic/cucm.desk-7\n"
    b"subscription:sub-0\npriority:4\ntype:\n"
    b"message-id:ID\\cvm-45195-1795586942002-3\\c2\\c-1\\c1\\c1\npersistent:true\n"
    b"reply-to:/queue/Connector1\ntimestamp:1795586959260\n\n%s\x00\n" % EVENT_BODY
)
BYTES_MESSAGE = (
    b"MESSAGE\ncontent-length:62\nexpires:0\ndestination:/topic/cucm.desk-7\n"
    b"subscription:sub-0\npriority:4\n"
    b"message-id:ID\\cvm-45195-1795586942002-3\\c2\\c-1\\c1\\c2\n"
    b"timestamp:1795586959299\n\n%s\x00\n" % EVENT_BODY
)
RECEIPT = b"RECEIPT\nreceipt-id:77\n\n\x00\n"
STREAM = CONNECTED + MESSAGE + b"\n" + BYTES_MESSAGE + RECEIPT


def _split_feed(parser: Any, data: bytes, cut: int) -> list[Any]:
    return list(parser.feed(data[:cut])) + list(parser.feed(data[cut:]))


# --- golden frames ----------------------------------------------------------------------------


def test_golden_connected(stomp: ModuleType) -> None:
    parser = stomp.FrameParser()
    (frame,) = parser.feed(CONNECTED)
    assert frame.command == "CONNECTED"
    assert frame.headers["session"] == "ID:vm-45195-1795586942002-3:1"
    assert frame.headers["heart-beat"] == "10000,10000"
    assert frame.body == b""
    assert (parser.heartbeats, parser.buffered) == (1, 0)  # ActiveMQ's EOL after each NUL


def test_golden_activemq_messages(stomp: ModuleType) -> None:
    text, binary = stomp.FrameParser().feed(MESSAGE + BYTES_MESSAGE)
    assert (text.command, text.body, binary.body) == ("MESSAGE", EVENT_BODY, EVENT_BODY)
    assert text.headers == {
        "expires": "1795587559256",
        "correlation-id": "c0ffee-42",
        "destination": "/topic/cucm.desk-7",
        "subscription": "sub-0",
        "priority": "4",
        "type": "",
        "message-id": "ID:vm-45195-1795586942002-3:2:-1:1:1",
        "persistent": "true",
        "reply-to": "/queue/Connector1",
        "timestamp": "1795586959260",
    }
    assert binary.headers["content-length"] == str(len(EVENT_BODY))
    assert binary.headers["message-id"] == "ID:vm-45195-1795586942002-3:2:-1:1:2"


def test_frame_is_the_one_shared_class(stomp: ModuleType) -> None:
    (frame,) = stomp.FrameParser().feed(RECEIPT)
    assert type(frame) is _pystomp.Frame
    assert stomp.Frame is _pystomp.Frame and stomp.FrameError is _pystomp.FrameError


def test_repr_hides_credentials_and_body() -> None:
    frame = _pystomp.Frame("CONNECT", {"login": "alice", "passcode": "s3cret"}, b"top-secret")
    text = repr(frame)
    assert "alice" not in text and "s3cret" not in text and "top-secret" not in text
    assert "CONNECT" in text and "10 bytes" in text


# --- framing ----------------------------------------------------------------------------------


def test_every_split_offset(stomp: ModuleType) -> None:
    expected = stomp.FrameParser().feed(STREAM)
    assert [f.command for f in expected] == ["CONNECTED", "MESSAGE", "MESSAGE", "RECEIPT"]
    for cut in range(len(STREAM) + 1):
        parser = stomp.FrameParser()
        assert _split_feed(parser, STREAM, cut) == expected, cut
        assert parser.heartbeats == 5  # one EOL after each NUL, plus one between frames


def test_byte_by_byte(stomp: ModuleType) -> None:
    parser = stomp.FrameParser()
    got = [frame for i in range(len(STREAM)) for frame in parser.feed(STREAM[i : i + 1])]
    assert got == stomp.FrameParser().feed(STREAM)


def test_many_frames_in_one_chunk_keep_order(stomp: ModuleType) -> None:
    frames = [
        _pystomp.encode_frame("MESSAGE", {"message-id": str(i)}, b"x" * (i % 7)) for i in range(500)
    ]
    got = stomp.FrameParser().feed(b"".join(frames))
    assert [f.headers["message-id"] for f in got] == [str(i) for i in range(500)]
    assert [len(f.body) for f in got] == [i % 7 for i in range(500)]


def test_heartbeats_are_counted_not_framed(stomp: ModuleType) -> None:
    parser = stomp.FrameParser()
    assert parser.feed(b"\n\r\n\n\r") == []
    assert (parser.heartbeats, parser.buffered) == (3, 1)  # a CR waits for its LF
    assert parser.feed(b"\n") == []
    assert (parser.heartbeats, parser.buffered) == (4, 0)
    assert [f.command for f in parser.feed(RECEIPT + b"\n\n")] == ["RECEIPT"]
    assert parser.heartbeats == 7


def test_crlf_frames(stomp: ModuleType) -> None:
    data = b"MESSAGE\r\ndestination:/topic/a\r\nid:1\r\n\r\nbody\x00\r\n"
    (frame,) = stomp.FrameParser().feed(data)
    assert frame.headers == {"destination": "/topic/a", "id": "1"}
    assert frame.body == b"body"


def test_content_length_body_may_hold_nul(stomp: ModuleType) -> None:
    (frame,) = stomp.FrameParser().feed(b"MESSAGE\ncontent-length:5\n\na\x00b\x00c\x00")
    assert frame.body == b"a\x00b\x00c"


@pytest.mark.parametrize("length", ["0", "000"])
def test_zero_content_length_is_an_empty_body(stomp: ModuleType, length: str) -> None:
    """Regression (fuzzing): the pure twin computed ``int("")`` for an all-zero length."""
    data = stomp.encode_frame("ERROR", {"content-length": length, "message": "m"}, b"")
    frames = stomp.FrameParser().feed(data + RECEIPT)
    assert [(f.command, f.body) for f in frames] == [("ERROR", b""), ("RECEIPT", b"")]
    assert frames[0].headers["content-length"] == length
    with pytest.raises(ProtocolError, match="no NUL"):  # a length of 0 still needs its NUL
        stomp.FrameParser().feed(b"ERROR\ncontent-length:0\n\nx\x00")


def test_first_repeated_header_wins(stomp: ModuleType) -> None:
    data = b"MESSAGE\nfoo:first\nfoo:second\ncontent-length:1\ncontent-length:9\n\nx\x00"
    (frame,) = stomp.FrameParser().feed(data)
    assert frame.headers == {"foo": "first", "content-length": "1"}


def test_repeated_values_never_leak_between_frames(stomp: ModuleType) -> None:
    """The compiled twin reuses the str of a repeated well-known header value."""
    values = ["/topic/a", "/topic/b", "/topic/a", "/topic\\cc", "/topic/é", "/topic/é", ""]
    data = b"".join(b"MESSAGE\ndestination:%s\n\n\x00" % v.encode() for v in values)
    got = [f.headers["destination"] for f in stomp.FrameParser().feed(data)]
    assert got == [v.replace("\\c", ":") for v in values]


def test_value_may_contain_colons_and_be_empty(stomp: ModuleType) -> None:
    (frame,) = stomp.FrameParser().feed(b"RECEIPT\nurl:a:b:c\nempty:\n\n\x00")
    assert frame.headers == {"url": "a:b:c", "empty": ""}


def test_accepts_bytearray_and_memoryview(stomp: ModuleType) -> None:
    parser = stomp.FrameParser()
    assert parser.feed(bytearray(RECEIPT)) + parser.feed(memoryview(RECEIPT)) == 2 * [
        _pystomp.Frame("RECEIPT", {"receipt-id": "77"}, b"")
    ]


# --- escaping ---------------------------------------------------------------------------------


def test_header_unescaping(stomp: ModuleType) -> None:
    data = b"MESSAGE\nna\\cme:a\\nb\\rc\\cd\\\\e\n\n\x00"
    (frame,) = stomp.FrameParser().feed(data)
    assert frame.headers == {"na:me": "a\nb\rc:d\\e"}


def test_connect_and_connected_are_not_unescaped(stomp: ModuleType) -> None:
    for command in (b"CONNECT", b"CONNECTED"):
        (frame,) = stomp.FrameParser().feed(command + b"\nserver:Active\\cMQ\\t\n\n\x00")
        assert frame.headers == {"server": "Active\\cMQ\\t"}


def test_encode_escapes_exactly() -> None:
    for twin in _twins():
        data = twin.encode_frame("SEND", {"a:b": "x\ny\rz\\w:v"}, "é")
        assert data == b"SEND\na\\cb:x\\ny\\rz\\\\w\\cv\n\n\xc3\xa9\x00"
        raw = twin.encode_frame("CONNECT", [("login", "u"), ("host", "a:b\\c")])
        assert raw == b"CONNECT\nlogin:u\nhost:a:b\\c\n\n\x00"


_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
_raw_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\r\n"))


@SETTINGS
@given(
    command=st.sampled_from(["SEND", "MESSAGE", "ERROR", "SUBSCRIBE", "RECEIPT"]),
    headers=st.dictionaries(_text.filter(bool).filter(lambda s: s != "content-length"), _text),
    body=st.binary().map(lambda b: b.replace(b"\x00", b"")),
)
def test_round_trip_escaped(command: str, headers: dict[str, str], body: bytes) -> None:
    for twin in _twins():
        data = twin.encode_frame(command, headers, body)
        for parse in _twins():
            assert parse.FrameParser().feed(data) == [_pystomp.Frame(command, headers, body)]


@SETTINGS
@given(
    command=st.sampled_from(["CONNECT", "CONNECTED"]),
    headers=st.dictionaries(
        _raw_text.filter(lambda s: bool(s) and ":" not in s and s != "content-length"), _raw_text
    ),
)
def test_round_trip_raw(command: str, headers: dict[str, str]) -> None:
    for twin in _twins():
        data = twin.encode_frame(command, headers)
        assert twin.FrameParser().feed(data) == [_pystomp.Frame(command, headers, b"")]


@SETTINGS
@given(body=st.binary(min_size=1))
def test_round_trip_binary_body_with_explicit_length(body: bytes) -> None:
    for twin in _twins():
        data = twin.encode_frame("SEND", {"content-length": str(len(body))}, body)
        (frame,) = twin.FrameParser().feed(data)
        assert frame.body == body


# --- encoding rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "headers", "body", "error"),
    [
        ("send", {}, b"", ValueError),
        ("SEND\n", {}, b"", ValueError),
        ("SEND", {}, b"a\x00b", ValueError),
        ("SEND", {"content-length": "2"}, b"a\x00b", ValueError),
        ("SEND", {"content-length": "x"}, b"ab", ValueError),
        ("CONNECT", {"content-length": ""}, b"", ValueError),
        ("SEND", {"a": "b\x00"}, b"", ValueError),
        ("SEND", {"a\x00": "b"}, b"", ValueError),
        ("SEND", {"": "b"}, b"", ValueError),
        ("CONNECT", {"host": "a\nb"}, b"", ValueError),
        ("CONNECT", {"a:b": "c"}, b"", ValueError),
        ("SEND", {"a": 1}, b"", TypeError),
        ("SEND", {}, 5, TypeError),
    ],
)
def test_encode_refuses(
    stomp: ModuleType, command: str, headers: Any, body: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        stomp.encode_frame(command, headers, body)


def test_encode_never_adds_content_length(stomp: ModuleType) -> None:
    data = stomp.encode_frame("SEND", {"destination": "/queue/Connector1"}, "Login#1001")
    assert b"content-length" not in data
    assert data == b"SEND\ndestination:/queue/Connector1\n\nLogin#1001\x00"


def test_encode_keeps_pair_order_and_duplicates(stomp: ModuleType) -> None:
    data = stomp.encode_frame("SEND", [("b", "1"), ("a", "2"), ("b", "3")])
    assert data == b"SEND\nb:1\na:2\nb:3\n\n\x00"
    (frame,) = stomp.FrameParser().feed(data)
    assert frame.headers == {"b": "1", "a": "2"}


# --- errors and limits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"MESSAGE\nno-colon\n\n\x00", "without ':'"),
        (b"message\n\n\x00", "invalid STOMP command"),
        (b"SEND 1\n\n\x00", "invalid STOMP command"),
        (b"SEND\na:\\t\n\n\x00", "undefined escape"),
        (b"SEND\na:b\\\n\n\x00", "undefined escape"),
        (b"SEND\ncontent-length:x\n\n\x00", "bad content-length"),
        (b"SEND\ncontent-length:-1\n\n\x00", "bad content-length"),
        (b"SEND\ncontent-length:\n\n\x00", "bad content-length"),
        (b"SEND\ncontent-length:1\n\nab\x00", "no NUL after"),
        (b"SEND\na:\xff\n\n\x00", "UTF-8"),
        (b"\rSEND\n\n\x00", "bare CR"),
    ],
)
def test_malformed_frames(stomp: ModuleType, data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=re.escape(message)):
        stomp.FrameParser().feed(data)


@pytest.mark.parametrize(
    ("limits", "data", "message"),
    [
        ({"max_frame_size": 64}, b"SEND\n\n" + b"x" * 80, "frame too large"),
        ({"max_frame_size": 64}, b"SEND\ncontent-length:80\n\n", "frame too large"),
        ({"max_frame_size": 64}, b"SEND\n" + b"a:b\n" * 20, "frame too large"),
        ({"max_headers": 3}, b"SEND\n" + b"a:b\n" * 4, "too many headers"),
        ({"max_header_line": 16}, b"SEND\na:" + b"b" * 20, "header line too long"),
        ({"max_header_line": 16}, b"SEND\na:" + b"b" * 20 + b"\n", "header line too long"),
        ({"max_frame_size": 64}, b"SEND\ncontent-length:" + b"9" * 5000 + b"\n\n", "too large"),
        ({"max_frame_size": 2**62}, b"SEND\ncontent-length:" + b"9" * 40 + b"\n\n", "too large"),
    ],
)
def test_limits(stomp: ModuleType, limits: dict[str, int], data: bytes, message: str) -> None:
    parser = stomp.FrameParser(**limits)
    with pytest.raises(ProtocolError, match=message):
        parser.feed(data)


def test_limits_hold_exactly_at_the_boundary(stomp: ModuleType) -> None:
    frame = b"SEND\na:b\n\n" + b"x" * 10 + b"\x00"
    assert len(stomp.FrameParser(max_frame_size=len(frame)).feed(frame)) == 1
    with pytest.raises(ProtocolError, match="too large"):
        stomp.FrameParser(max_frame_size=len(frame) - 1).feed(frame)
    assert len(stomp.FrameParser(max_headers=1, max_header_line=4).feed(frame)) == 1


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_header_line_limit_does_not_depend_on_the_split(stomp: ModuleType, eol: bytes) -> None:
    """Regression (fuzzing): the limit is on the line without its EOL, so a line exactly at it
    passes and one byte more fails at every split offset, also between the CR and the LF."""
    limit = 24
    for line, ok in ((b"h:" + b"v" * (limit - 2), True), (b"h:" + b"v" * (limit - 1), False)):
        data = b"SEND" + eol + line + eol + eol + b"body\x00"
        for cut in range(len(data) + 1):
            parser = stomp.FrameParser(max_header_line=limit)
            if ok:
                assert [f.body for f in _split_feed(parser, data, cut)] == [b"body"], cut
            else:
                with pytest.raises(ProtocolError, match="header line too long"):
                    _split_feed(parser, data, cut)


def test_a_cr_waiting_for_its_lf_is_not_counted_but_a_bare_cr_is(stomp: ModuleType) -> None:
    parser = stomp.FrameParser(max_header_line=8)
    assert parser.feed(b"SEND\nh:123456\r") == []  # 8 bytes + a CR that may begin the EOL
    with pytest.raises(ProtocolError, match="header line too long"):
        parser.feed(b"x")  # it did not: the CR is content, and the line is now 10 bytes


def test_error_poisons_and_keeps_earlier_frames(stomp: ModuleType) -> None:
    parser = stomp.FrameParser()
    with pytest.raises(stomp.FrameError) as info:
        parser.feed(RECEIPT + MESSAGE + b"bogus\n\n\x00" + RECEIPT)
    assert [f.command for f in info.value.frames] == ["RECEIPT", "MESSAGE"]
    assert parser.buffered == 0
    with pytest.raises(ProtocolError, match="earlier error"):
        parser.feed(RECEIPT)


def test_buffer_is_released_as_frames_complete(stomp: ModuleType) -> None:
    parser = stomp.FrameParser()
    parser.feed(MESSAGE * 100 + MESSAGE[:40])
    assert parser.buffered == 40  # only the partial frame stays
    parser.feed(MESSAGE[40:])
    assert parser.buffered == 0


def test_bad_limits_are_refused(stomp: ModuleType) -> None:
    with pytest.raises(ValueError, match="positive"):
        stomp.FrameParser(max_frame_size=0)


# --- fuzzing and the differential test --------------------------------------------------------


def _outcome(twin: ModuleType, chunks: list[bytes]) -> tuple[Any, ...]:
    parser = twin.FrameParser(max_frame_size=300, max_headers=6, max_header_line=60)
    frames: list[Any] = []
    try:
        for chunk in chunks:
            got = parser.feed(chunk)
            assert all(type(f) is _pystomp.Frame for f in got)
            frames += got
    except ProtocolError as exc:
        return ("error", frames + list(getattr(exc, "frames", [])), parser.heartbeats)
    return ("ok", frames, parser.heartbeats, parser.buffered)


@SETTINGS
@given(st.lists(st.binary(max_size=64), max_size=6))
def test_random_bytes_raise_only_protocol_error(chunks: list[bytes]) -> None:
    outcomes = {repr(_outcome(twin, chunks)) for twin in _twins()}
    assert len(outcomes) == 1, outcomes


# Bytes that matter to the grammar, plus a length header and UTF-8 fragments.
_PIECES = [*(bytes([c]) for c in b"\x00\n\r:\\3\xff\xa9"), b"\\c", b"content-length:"]


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    data = bytearray(draw(st.sampled_from([STREAM, MESSAGE, CONNECTED, RECEIPT * 3])))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.integers(0, 2))
        if op == 0:
            data[at:at] = draw(st.sampled_from(_PIECES))
        elif at < len(data):
            del data[at]
            if op == 2:
                data[at:at] = draw(st.sampled_from(_PIECES))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
    return bytes(data), cuts


@settings(max_examples=400, deadline=None)
@given(_mutated())
def test_mutated_frames_twins_agree(case: tuple[bytes, list[int]]) -> None:
    data, cuts = case
    bounds = [0, *cuts, len(data)]
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    outcomes = [_outcome(twin, chunks) for twin in _twins()]
    assert all(o == outcomes[0] for o in outcomes), outcomes
    whole = _outcome(_pystomp, [data])
    assert whole[:2] == outcomes[0][:2]  # chunking never changes what is parsed


# --- the fused receive path -------------------------------------------------------------------


def test_decode_message(stomp: ModuleType) -> None:
    correlation, event = stomp.decode_message(MESSAGE)
    assert correlation == "c0ffee-42"
    assert event == _pyevents.decode_event(EVENT_BODY)
    assert stomp.decode_message(BYTES_MESSAGE) == (None, event)
    status = b"System#IN_SERVICE"
    uncorrelated = b"MESSAGE\ndestination:/topic/t\ncorrelation-id\\c:x\n\n%s\x00" % status
    assert stomp.decode_message(uncorrelated) == (None, _pyevents.decode_event(status))
    escaped = b"MESSAGE\r\ncorrelation-id:a\\cb\r\ncorrelation-id:zz\r\n\r\n%s\x00\r\n" % status
    assert stomp.decode_message(escaped)[0] == "a:b"


@pytest.mark.parametrize(
    "data",
    [
        RECEIPT,
        MESSAGE + RECEIPT,
        MESSAGE[:-3],
        MESSAGE + b"\r",
        b"\n\n",
        MESSAGE.replace(b"type:", b"type"),
        BYTES_MESSAGE.replace(b"content-length:", b"content-length:x"),
        MESSAGE.replace(b"priority:4", b"priority:\\x"),
        MESSAGE.replace(b"priority:4", b"priority:\xff"),
    ],
    ids=[
        "receipt",
        "two-frames",
        "incomplete",
        "lone-cr-after",
        "only-eols",
        "no-colon",
        "bad-length",
        "bad-escape",
        "bad-utf8",
    ],
)
def test_decode_message_refuses(stomp: ModuleType, data: bytes) -> None:
    with pytest.raises(ProtocolError):
        stomp.decode_message(data)


@settings(max_examples=300, deadline=None)
@given(_mutated())
def test_decode_message_twins_agree(case: tuple[bytes, list[int]]) -> None:
    def run(twin: ModuleType) -> Any:
        try:
            return twin.decode_message(case[0])
        except ProtocolError:
            return "error"

    results = [run(twin) for twin in _twins()]
    assert all(r == results[0] for r in results), results


# --- peer compatibility with aiostomp ---------------------------------------------------------


def _aiostomp_frames(data: bytes) -> list[tuple[str, dict[str, str], bytes]]:
    parser = StompProtocol()
    parser.feed_data(data)
    return [
        (f.command, f.headers, f.body or b"")
        for f in parser.pop_frames()
        if f.command != "HEARTBEAT"
    ]


def test_aiostomp_parses_the_same_frames(stomp: ModuleType) -> None:
    """aiostomp unescapes only values and lets the last repeated header win; our golden frames
    have neither, so both parsers must agree exactly."""
    data = STREAM + MESSAGE.replace(b"sub-0", b"a\\cb")
    ours = [(f.command, f.headers, f.body) for f in stomp.FrameParser().feed(data)]
    assert ours == _aiostomp_frames(data)
    assert ours[-1][1]["subscription"] == "a:b"


def test_aiostomp_reads_what_we_encode(stomp: ModuleType) -> None:
    headers = {"destination": "/queue/Connector1", "type": "Login#1001", "reply-to": "/topic/a:b"}
    data = stomp.encode_frame("SEND", headers, "desk-7")
    assert _aiostomp_frames(data) == [("SEND", headers, b"desk-7")]


def test_we_read_what_aiostomp_encodes(stomp: ModuleType) -> None:
    headers = {"destination": "/queue/Connector1", "correlation-id": "x\ny:z"}
    data = StompProtocol().build_frame("SEND", headers, "Hello")
    assert stomp.FrameParser().feed(data) == [_pystomp.Frame("SEND", headers, b"Hello")]
