"""Fuzz targets: one function per parser, ``bytes -> None``, raising only on a contract breach.

The contract every parser of network input keeps: malformed input raises ``ProtocolError``
(``FrameError`` is one) and nothing else, in bounded time and memory, and the compiled codec
and its pure-Python twin give the same answer.  Each target also checks a property the
hypothesis suites cannot reach by construction:

``events``   ``decode_event`` twins agree; a decoded event re-encodes to text both twins decode.
``frames``   ``FrameParser`` gives the same frames whether the bytes arrive at once or in
             fuzzer-chosen chunks, under default and tiny limits; never buffers past its limit.
``message``  ``decode_message`` (the receive hot path) twins agree.
``command``  ``parse_command`` raises only ``ProtocolError``; ``encode_command`` output always
             parses back to the same command, target and number of arguments (no injection).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from cucmconn.codec import _pyevents, _pystomp
from cucmconn.codec.commands import encode_command, parse_command
from cucmconn.errors import ProtocolError

__all__ = [
    "KNOWN_BUGS",
    "SEEDS",
    "TARGETS",
    "check_command",
    "check_events",
    "check_frames",
    "check_message",
]

KNOWN_BUGS: dict[str, str] = {}
"""Open bugs these targets found, skipped by signature so fuzzing can go on past them; each has
a strict-xfail regression test in ``tests/system/test_reliability_input.py``.  Delete an entry (and
its check below) when that test starts to XPASS."""


def _compiled(name: str) -> ModuleType | None:
    try:
        return __import__(f"cucmconn.codec.{name}", fromlist=["_"])
    except ImportError:
        return None


_EVENT_TWINS = [m for m in (_pyevents, _compiled("_cevents")) if m is not None]
_STOMP_TWINS = [m for m in (_pystomp, _compiled("_cstomp")) if m is not None]

# Tiny limits make the limit paths (too many headers, line too long, frame too large) reachable
# by inputs a few hundred bytes long, which is where a fuzzer spends its time.
_LIMITS: tuple[dict[str, int], ...] = (
    {},
    {"max_frame_size": 256, "max_headers": 4, "max_header_line": 48},
)


def _outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """``("ok", value)`` or ``("error", None)`` for a ProtocolError; anything else propagates."""
    try:
        return "ok", fn(*args)
    except ProtocolError:
        return "error", None


def check_events(data: bytes) -> None:
    results = [_outcome(m.decode_event, data) for m in _EVENT_TWINS]
    assert all(r == results[0] for r in results), f"event twins disagree on {data!r}: {results}"
    kind, event = results[0]
    if kind != "ok":
        return
    for fmt in ("default", "json"):
        try:
            text = _pyevents.encode_event(event, fmt)
        except (ValueError, TypeError):
            continue  # documented: encode refuses what would not round-trip
        for twin in _EVENT_TWINS:
            again = _outcome(twin.decode_event, text)
            assert again[0] == "ok", f"{twin.__name__} cannot read its own {fmt} {text!r}"


def _feed_all(parser: Any, chunks: list[bytes]) -> tuple[list[Any], bool]:
    """Frames produced before any error, and whether an error occurred; checks the buffer bound."""
    frames: list[Any] = []
    for chunk in chunks:
        try:
            frames.extend(parser.feed(chunk))
        except ProtocolError as exc:
            frames.extend(getattr(exc, "frames", []))
            try:
                parser.feed(b"\n")
            except ProtocolError:
                return frames, True
            raise AssertionError("parser accepted input after an error") from None
        assert parser.buffered <= parser.max_frame_size + 64 * 1024, "parser buffer unbounded"
    return frames, False


def _chunks(data: bytes) -> list[bytes]:
    """Split ``data`` at offsets chosen by its first byte, so the fuzzer controls the split."""
    if not data:
        return [data]
    step = data[0] % 17 + 1
    body = data[1:]
    return [body[i : i + step] for i in range(0, len(body), step)] or [b""]


def check_frames(data: bytes) -> None:
    whole = data[1:] if data else data
    for limits in _LIMITS:
        outcomes = []
        for twin in _STOMP_TWINS:
            at_once = _feed_all(twin.FrameParser(**limits), [whole])
            chunked = _feed_all(twin.FrameParser(**limits), _chunks(data))
            # A split can only move an error later, never create or hide a frame before it.
            assert at_once[1] == chunked[1], f"split changed the verdict for {data!r}"
            assert at_once[0] == chunked[0], f"split changed the frames for {data!r}"
            outcomes.append(at_once)
        assert all(o == outcomes[0] for o in outcomes), f"stomp twins disagree on {data!r}"


def check_message(data: bytes) -> None:
    results = [_outcome(m.decode_message, data) for m in _STOMP_TWINS]
    assert all(r == results[0] for r in results), f"decode_message twins disagree on {data!r}"


def check_command(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    jms_type, _, body = text.partition("\n")
    _outcome(parse_command, jms_type, body)
    fields = text.split("\x1e")  # record separator: fuzzer-chosen name, target, args
    name, target, args = fields[0], fields[1] if len(fields) > 1 else "", fields[2:]
    try:
        wire_type, wire_body = encode_command(name, target, *args)
    except (ValueError, TypeError):
        return  # refused before sending: the safe outcome
    parsed_name, parsed_target, parsed_args = parse_command(wire_type, wire_body)
    assert parsed_target == target.strip(), f"target injected: {target!r} -> {parsed_target!r}"
    assert len(parsed_args) == len(args), f"arguments injected: {args!r} -> {parsed_args!r}"
    assert parsed_name.lower() == wire_type.split("#", 1)[0].lower()


TARGETS: dict[str, Callable[[bytes], None]] = {
    "events": check_events,
    "frames": check_frames,
    "message": check_message,
    "command": check_command,
}

_FRAME = (
    b"MESSAGE\nsubscription:sub-1\nmessage-id:ID:1\ndestination:/topic/t\n"
    b"correlation-id:c-1\n\n1001#AgentState#READY#2026-01-01 10:00:00\x00\n"
)
SEEDS: dict[str, list[bytes]] = {
    "events": [
        b"System#IN_SERVICE",
        b"Terminal#CiscoTermOutOfServiceEv",
        b"1001#AgentInfo#1001#SEP1001",
        b"1001#AgentState#READY#2026-01-01 10:00:00",
        b"1001#DialogState#ACTIVE#2026-01-01 10:00:00#17#1001,1002",
        b"1001#InboundCall#ALERTING#2026-01-01 10:00:00#17#1002",
        b"1001#Error#PRIVILLEGE_VIOLATION",
        b'{"type":"AgentState","agentId":"1001","state":"READY"}',
        b'{"type":"DialogState","agentId":"1","State":"HELD","connectionID":7,"participants":[1,2]}',
        b'{"type":"Error","agentId":"1001","errorType":"WRONG_EXTENSION","message":"x"}',
    ],
    "frames": [
        b"\x03" + _FRAME,
        b"\x00CONNECTED\nversion:1.2\nheart-beat:1000,1000\n\n\x00",
        b"\x05RECEIPT\nreceipt-id:r-1\n\n\x00\n\n",
        b"\x01ERROR\nmessage:bad\ncontent-length:3\n\na\x00b\x00",
        b"\x07MESSAGE\r\nh\\c:v\\n\r\n\r\nbody\x00",
    ],
    "message": [_FRAME, _FRAME.replace(b"1001#AgentState", b'{"type":"System","status":"UP"}')],
    "command": [
        b"MakeCall#1001\n1002",
        b"Transfer_sst#1001\n1002,17",
        b"Hello#crm-1\n",
        b"MakeCall\x1e1001\x1e1002",
        b"ConsultCall\x1e1001\x1e1002\x1e17",
    ],
}
