"""STOMP 1.2 frame grammar, checked with vectors from other implementations' own test suites.

Each vector names its source (repository, file, test).  Both twins must give the same result
fed whole and fed one byte at a time, and ``decode_message`` must accept exactly the header
lines ``FrameParser`` accepts.  Where the other implementations disagree with each other, the
vector says which side cucmconn takes and why (the spec's grammar decides).

Sources, read at these commits:
- RabbitMQ: rabbitmq/rabbitmq-server ``deps/rabbitmq_stomp/test/frame_SUITE.erl`` (01092ff)
- netty: netty/netty ``codec-stomp/src/test/java/io/netty/handler/codec/stomp/
  StompSubframeDecoderTest.java`` with its frames in ``StompTestConstants.java`` (059752d)
- stomp-php: stomp-php/stomp-php ``tests/Unit/Transport/ParserTest.php`` (39ee536)
"""

from __future__ import annotations

import importlib
import os
import re
from types import ModuleType
from typing import NamedTuple

import pytest

from cucmconn.codec import _pyevents, _pystomp
from cucmconn.errors import ProtocolError

_NO_EXT = os.environ.get("CUCMCONN_NO_EXTENSIONS", "") not in ("", "0")
TWINS = [_pystomp] if _NO_EXT else [_pystomp, importlib.import_module("cucmconn.codec._cstomp")]

RABBITMQ = "rabbitmq/rabbitmq-server deps/rabbitmq_stomp/test/frame_SUITE.erl"
NETTY = "netty/netty codec-stomp/.../stomp/StompSubframeDecoderTest.java"
STOMP_PHP = "stomp-php/stomp-php tests/Unit/Transport/ParserTest.php"

Expected = list[tuple[str, dict[str, str], bytes]]


class Vector(NamedTuple):
    source: str  # "<repository> <file>::<test>"
    data: bytes
    frames: Expected | None = None  # what must be parsed, or None when it must fail
    error: str = ""  # a part of the ProtocolError's message when it must fail
    heartbeats: int | None = None  # EOLs counted between frames, when the source checks them


H2 = {"header1": "value1", "header2": "value2"}
CONNECT = b"CONNECT\nhost:stomp.github.org\naccept-version:1.1,1.2\n\n\x00"  # netty CONNECT_FRAME
CONNECTED = b"CONNECTED\nversion:1.2\n\n\x00\n"  # netty CONNECTED_FRAME
SEND_HEAD = b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n"  # netty SEND_FRAME_*
SEND_HEADERS = {"destination": "/queue/a", "content-type": "text/plain"}
# stomp-php's chunk-safety frames; its second command, COMMAND2, is spelled COMMANDB here:
# cucmconn's command rule is [A-Z]+ (every STOMP command is letters), a deliberate desync guard.
PHP_A = b"COMMAND\nheader1:values\\c[1,2]\nheader2:value2\n\nBody\x00"
PHP_B = b"COMMANDB\nheader3:value2\n\nBody \x00"
PHP_FRAMES = [
    ("COMMAND", {"header1": "values:[1,2]", "header2": "value2"}, b"Body"),
    ("COMMANDB", {"header3": "value2"}, b"Body "),
]

ACCEPTED = [
    # --- RabbitMQ ---
    Vector(
        f"{RABBITMQ}::parse_simple_frame",
        b"COMMAND\nheader1:value1\nheader2:value2\n\nBody Content\x00\n",
        [("COMMAND", H2, b"Body Content")],
    ),
    Vector(
        f"{RABBITMQ}::parse_simple_frame_crlf",
        b"COMMAND\r\nheader1:value1\r\nheader2:value2\r\n\r\nBody Content\x00\r\n",
        [("COMMAND", H2, b"Body Content")],
    ),
    Vector(f"{RABBITMQ}::parse_command_only", b"COMMAND\n\n\x00", [("COMMAND", {}, b"")]),
    Vector(
        f"{RABBITMQ}::parse_command_prefixed_with_newline",
        b"\nCOMMAND\n\n\x00",
        [("COMMAND", {}, b"")],
        heartbeats=1,
    ),
    Vector(
        f"{RABBITMQ}::parse_ignore_empty_frames (stray NULs)",
        b"\x00\x00COMMAND\n\n\x00",
        [("COMMAND", {}, b"")],
        heartbeats=0,
    ),
    Vector(
        f"{RABBITMQ}::parse_crlf_interframe",
        b"\r\nCOMMAND\n\n\x00",
        [("COMMAND", {}, b"")],
        heartbeats=1,
    ),
    Vector(
        f"{RABBITMQ}::parse_no_header_stripping",
        b"COMMAND\nheader: foo \n\n\x00",
        [("COMMAND", {"header": " foo "}, b"")],
    ),
    Vector(
        f"{RABBITMQ}::parse_multiple_headers (the first wins)",
        b"COMMAND\nheader:correct\nheader:incorrect\n\n\x00",
        [("COMMAND", {"header": "correct"}, b"")],
    ),
    Vector(
        f"{RABBITMQ}::header_value_with_colon",
        b"COMMAND\nheader:val:ue\n\n\x00",
        [("COMMAND", {"header": "val:ue"}, b"")],
    ),
    Vector(  # its command COM\\rAND is left out: our command rule is [A-Z]+
        f"{RABBITMQ}::no_nested_escapes (headers)",
        b"COMMAND\nhdr\\\\rname:hdr\\\\rval\n\n\x00",
        [("COMMAND", {"hdr\\rname": "hdr\\rval"}, b"")],
    ),
    Vector(
        f"{RABBITMQ}::headers_escaping_roundtrip",
        b"COMMAND\nhead\\r\\c\\ner:\\c\\n\\r\\\\\n\n\x00\n",
        [("COMMAND", {"head\r:\ner": ":\n\r\\"}, b"")],
    ),
    # --- netty ---
    Vector(
        f"{NETTY}::testSingleFrameDecoding (CONNECT_FRAME)",
        CONNECT,
        [("CONNECT", {"host": "stomp.github.org", "accept-version": "1.1,1.2"}, b"")],
    ),
    Vector(
        f"{NETTY}::testMultipleFramesDecoding (CONNECT_FRAME + CONNECTED_FRAME)",
        CONNECT + CONNECTED,
        [
            ("CONNECT", {"host": "stomp.github.org", "accept-version": "1.1,1.2"}, b""),
            ("CONNECTED", {"version": "1.2"}, b""),
        ],
    ),
    Vector(
        f"{NETTY}::testSingleFrameWithBodyWithoutContentLength (SEND_FRAME_1)",
        SEND_HEAD + b"\nhello, queue a!\x00\n",
        [("SEND", SEND_HEADERS, b"hello, queue a!")],
    ),
    Vector(
        f"{NETTY}::testSingleFrameWithBodyAndContentLength (SEND_FRAME_2)",
        SEND_HEAD + b"content-length:17\n\nhello, queue a!!!\x00\n",
        [("SEND", {**SEND_HEADERS, "content-length": "17"}, b"hello, queue a!!!")],
    ),
    Vector(
        f"{NETTY}::SEND_FRAMES_3 (a body split over two reads)",
        SEND_HEAD + b"\nfirst part of body\n" + b"second part of body\x00",
        [("SEND", SEND_HEADERS, b"first part of body\nsecond part of body")],
    ),
    Vector(
        f"{NETTY}::testUtf8FrameDecoding (SEND_FRAME_UTF8)",
        "SEND\ndestination:/queue/№11±♛нетти♕\ncontent-type:text/plain\n\nbody\x00".encode(),
        [("SEND", {"destination": "/queue/№11±♛нетти♕", "content-type": "text/plain"}, b"body")],
    ),
    Vector(  # netty's validating decoder refuses ':' in a value; RabbitMQ (above) and we accept it
        f"{NETTY}::testValidateHeadersDecodingDisabled (FRAME_WITH_INVALID_HEADER)",
        b"SEND\ndestination:/some-destination\ncontent-type:text/plain\n"
        b"current-time:2000-01-01T00:00:00\n\nsome body\x00",
        [
            (
                "SEND",
                {
                    "destination": "/some-destination",
                    "content-type": "text/plain",
                    "current-time": "2000-01-01T00:00:00",
                },
                b"some body",
            )
        ],
    ),
    # --- stomp-php ---
    Vector(
        f"{STOMP_PHP}::testEndOfLineWithCarriageReturn",
        b"COMMAND\r\nheader1:value1\r\nheader2:value2\r\n\r\nBody\x00",
        [("COMMAND", H2, b"Body")],
    ),
    Vector(
        f"{STOMP_PHP}::testEndOfLineWithoutCarriageReturn",
        b"COMMAND\nheader1:value1\nheader2:value2\n\nBody\x00",
        [("COMMAND", H2, b"Body")],
    ),
    Vector(
        f"{STOMP_PHP}::testLengthHeaderSetContentContainsNullByteAtEnd",
        b"COMMAND\ncontent-length:5\n\nBody\x00\x00",
        [("COMMAND", {"content-length": "5"}, b"Body\x00")],
    ),
    Vector(
        f"{STOMP_PHP}::testHeaderDecode",
        b"COMMAND\nX-Proof:Hello\\c\\r\\n  \\\\World!\n\nBody\x00",
        [("COMMAND", {"X-Proof": "Hello:\r\n  \\World!"}, b"Body")],
    ),
    Vector(
        f"{STOMP_PHP}::testParseFrameTransformsToFrameByDefault (an EOL opening the body)",
        b"CMD\nheader1:value1\n\n\nvar\x00",
        [("CMD", {"header1": "value1"}, b"\nvar")],
    ),
    Vector(
        f"{STOMP_PHP}::testParseFrameTransformsToFrameZeroByteContent",
        b"CMD\nheader1:value1\ncontent-length:9\n\nvar\x00var\x002\x00",
        [("CMD", {"header1": "value1", "content-length": "9"}, b"var\x00var\x002")],
    ),
    Vector(
        f"{STOMP_PHP}::testParserIsChunkSafe",
        PHP_A + b"\r\n\r\n\r\n" + PHP_B + b"\r\n\r\n",
        PHP_FRAMES,
        heartbeats=5,
    ),
    Vector(
        f"{STOMP_PHP}::testParserDetectsHeartBeats (stray NULs around frames)",
        b"\x00\x00" + PHP_A + b"\x00\r\n\r\n\r\n\x00\x00" + PHP_B + b"\r\n\r\n\x00\x00",
        PHP_FRAMES,
        heartbeats=5,
    ),
    Vector(
        f"{STOMP_PHP}::testParserWhenHeaderStopSequenceWithCarriageReturnIsPartOfBody",
        b'MESSAGE\n\n{ \n"value1" : "hello world"\n,\n\n  "value2" : "2002-02-01"\r\n\r\n}\x00',
        [("MESSAGE", {}, b'{ \n"value1" : "hello world"\n,\n\n  "value2" : "2002-02-01"\r\n\r\n}')],
    ),
    Vector(
        f"{STOMP_PHP}::testParserTriggersObserversOnSingleHeartBeat",
        b"\n",
        [],
        heartbeats=1,
    ),
]

REJECTED = [
    # --- RabbitMQ ---
    Vector(
        f"{RABBITMQ}::parse_carriage_return_not_ignored_interframe",
        b"\rCOMMAND\n\n\x00",
        error="bare CR between frames",
    ),
    Vector(
        f"{RABBITMQ}::parse_carriage_return_mid_command",
        b"COMM\rAND\n\n\x00",
        error="invalid STOMP command",
    ),
    Vector(
        f"{RABBITMQ}::parse_carriage_return_end_command",
        b"COMMAND\r\r\n\n\x00",
        error="invalid STOMP command",
    ),
    Vector(
        f"{RABBITMQ}::header_no_colon",
        b"COMMAND\nhdr1:val1\nhdrerror\nhdr2:val2\n\n\x00",
        error="header line without ':'",
    ),
    Vector(
        f"{RABBITMQ}::header_name_with_cr",
        b"COMMAND\nhead\rer:val\n\n\x00",
        error="CR inside a header line",
    ),
    Vector(
        f"{RABBITMQ}::header_value_with_cr",
        b"COMMAND\nheader:val\rue\n\n\x00",
        error="CR inside a header line",
    ),
    # --- netty ---
    Vector(
        f"{NETTY}::testNotValidFrameWithEmptyHeaderName (FRAME_WITH_EMPTY_HEADER_NAME)",
        b"SEND\ndestination:/some-destination\ncontent-type:text/plain\n:header-value\n\n"
        b"some body\x00",
        error="empty header name",
    ),
    Vector(
        f"{NETTY}::testFrameWithContentLengthAndWithoutNullEnding (FRAME_WITHOUT_NULL_ENDING)",
        SEND_HEAD + b"content-length:4\n\nbody\x01",
        error="no NUL after the 4-byte body",
    ),
    # --- stomp-php, where it is more lenient than RabbitMQ, netty and the spec's grammar ---
    Vector(  # stomp-php keeps the line as a header set to true; RabbitMQ's header_no_colon refuses
        f"{STOMP_PHP}::testParserOnFrameWithIncorrectHeaderValue",
        b"CMD\nheader1 value1\n\nvar\x00",
        error="header line without ':'",
    ),
    Vector(  # stomp-php keeps the CR; RabbitMQ's header_value_with_cr and the grammar refuse it
        f"{STOMP_PHP}::testParserCanHandleMessagesWithReturnCharacterInHeaderValues",
        b"CMD\nheader1:valu\re1\n\nvar\x00",
        error="CR inside a header line",
    ),
    # --- issue 12's own lines (a CR just before the EOL's CR LF) ---
    Vector("cucmconn issue 12", b"SEND\nheader:value\r\r\n\n\x00", error="CR inside a header line"),
    Vector("cucmconn issue 12", b"SEND\n:value\n\n\x00", error="empty header name"),
]


def _parse(twin: ModuleType, chunks: list[bytes]) -> tuple[Expected, int]:
    parser = twin.FrameParser()
    frames = [frame for chunk in chunks for frame in parser.feed(chunk)]
    assert parser.buffered == 0
    return [(f.command, f.headers, f.body) for f in frames], parser.heartbeats


def _ways(data: bytes) -> dict[str, list[bytes]]:
    return {"whole": [data], "byte by byte": [data[i : i + 1] for i in range(len(data))]}


@pytest.mark.parametrize("vector", ACCEPTED, ids=[v.source.split("::")[1] for v in ACCEPTED])
def test_accepted(vector: Vector) -> None:
    for twin in TWINS:
        for way, chunks in _ways(vector.data).items():
            frames, heartbeats = _parse(twin, chunks)
            assert frames == vector.frames, (twin.__name__, way, vector.source)
            if vector.heartbeats is not None:
                assert heartbeats == vector.heartbeats, (twin.__name__, way, vector.source)


@pytest.mark.parametrize("vector", REJECTED, ids=[v.source.split("::")[-1] for v in REJECTED])
def test_rejected(vector: Vector) -> None:
    for twin in TWINS:
        for chunks in _ways(vector.data).values():  # whole and byte by byte: the same error
            with pytest.raises(ProtocolError, match=re.escape(vector.error)):
                _parse(twin, chunks)


EVENT = b"System#IN_SERVICE"
HEADER_LINES = [
    (b"header: foo ", True),
    (b"header:val:ue", True),
    (b"hdr\\\\rname:hdr\\\\rval", True),
    (b"head\\r\\c\\ner:\\c\\n\\r\\\\", True),
    (b"hdrerror", False),
    (b"head\rer:val", False),
    (b"header:val\rue", False),
    (b"header:value\r\r", False),  # value\r\r\n with the LF EOL
    (b":header-value", False),
    (b"header1:valu\re1", False),
]


@pytest.mark.parametrize(("line", "ok"), HEADER_LINES)
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_decode_message_takes_the_header_lines_the_parser_takes(
    line: bytes, ok: bool, eol: bytes
) -> None:
    """The fused receive path validates each header line exactly as ``FrameParser`` does."""
    frame = b"MESSAGE" + eol + b"correlation-id:c-1" + eol + line + eol + eol + EVENT + b"\x00"
    for twin in TWINS:
        if ok:
            assert twin.decode_message(frame) == ("c-1", _pyevents.decode_event(EVENT))
            assert len(twin.FrameParser().feed(frame)) == 1
        else:
            with pytest.raises(ProtocolError):
                twin.decode_message(frame)
            with pytest.raises(ProtocolError):
                twin.FrameParser().feed(frame)


def test_decode_message_skips_stray_nuls_and_eols_around_the_frame() -> None:
    frame = b"\x00\r\n\x00MESSAGE\ncorrelation-id:c-1\n\n" + EVENT + b"\x00\x00\n\x00"
    for twin in TWINS:
        assert twin.decode_message(frame) == ("c-1", _pyevents.decode_event(EVENT))
