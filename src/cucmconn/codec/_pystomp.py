"""STOMP 1.2 frames, sans-IO: bytes in, ``Frame`` objects out; ``encode_frame`` for bytes to send.

Wire format (STOMP 1.2, as parsed here)::

    stream    = *(EOL / NUL) *(frame *(EOL / NUL))
    frame     = command EOL *(header EOL) EOL body NUL
    command   = 1*("A".."Z")                 ; anything else is a ProtocolError (desync guard)
    header    = name ":" value               ; split at the FIRST ':'; first occurrence wins
    name      = 1*<octet but CR, LF, ":">    ; an empty name is a ProtocolError
    value     = *<octet but CR, LF>          ; ':' allowed (RabbitMQ, ActiveMQ's CONNECTED)
    EOL       = [CR] LF                      ; CR only as the first byte of an EOL: a CR anywhere
                                             ; else in a head or between frames is an error
    body      = content-length octets (may hold NUL) / octets up to the first NUL
    heartbeat = EOL between frames           ; counted in ``FrameParser.heartbeats``

A NUL between frames (an empty frame, which some clients send after a frame's own NUL) is
skipped and not counted as a heart-beat, as RabbitMQ's and stomp-php's parsers do.

Header escapes ``\\r \\n \\c \\\\`` apply to every frame except CONNECT and CONNECTED (the spec
exempts them for 1.0 compatibility); an undefined escape is an error.

Why this parser is ours and not aiostomp's or stomp.py's: docs/architecture.md.

This module is the pure-Python twin of ``_cstomp.pyx``; ``Frame`` and ``FrameError`` are
defined here only, and the compiled twin builds and raises these same classes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec

from ..errors import ProtocolError
from ._pyevents import decode_event
from .events import Event

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_HEADER_LINE",
    "HEARTBEAT",
    "Frame",
    "FrameError",
    "FrameParser",
    "decode_message",
    "encode_frame",
]

DEFAULT_MAX_FRAME_SIZE: Final = 4 * 1024 * 1024
DEFAULT_MAX_HEADERS: Final = 128
DEFAULT_MAX_HEADER_LINE: Final = 64 * 1024
HEARTBEAT: Final = b"\n"

# Header values a repr must never show (credentials of CONNECT / STOMP frames).
_SECRET_HEADERS: Final = frozenset({"login", "passcode", "authorization"})
# CONNECT/CONNECTED headers are not escaped (STOMP 1.2, "Value Encoding").
_RAW_COMMANDS: Final = frozenset({"CONNECT", "CONNECTED"})
_COMMAND_RE: Final = re.compile(r"[A-Z]+")
_ESCAPE_RE: Final = re.compile(r"\\(.?)", re.DOTALL)
_UNESCAPES: Final = {"r": "\r", "n": "\n", "c": ":", "\\": "\\"}
_NEEDS_ESCAPE: Final = re.compile(r"[\\\r\n:\x00]")
_ESCAPES: Final = str.maketrans({"\\": "\\\\", "\r": "\\r", "\n": "\\n", ":": "\\c"})


class Frame(msgspec.Struct, gc=False):
    """One STOMP frame.  A msgspec Struct because it is built once per received message.

    ``gc=False`` is safe: the fields are a str, a dict of str and bytes, which cannot form a
    cycle through the frame.
    """

    command: str
    headers: dict[str, str]
    body: bytes = b""

    def __repr__(self) -> str:
        shown = {k: ("***" if k.lower() in _SECRET_HEADERS else v) for k, v in self.headers.items()}
        return f"Frame({self.command!r}, headers={shown!r}, body=<{len(self.body)} bytes>)"


class FrameError(ProtocolError):
    """A malformed frame.  ``frames`` holds the good frames of the same ``feed`` call that came
    before the bad one, so a caller that closes the link on this error loses nothing it got.
    """

    def __init__(self, message: str, frames: list[Frame] | None = None) -> None:
        super().__init__(message)
        self.frames: list[Frame] = frames if frames is not None else []


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value

    def repl(match: re.Match[str]) -> str:
        try:
            return _UNESCAPES[match.group(1)]
        except KeyError:
            raise ProtocolError(f"undefined escape {match.group(0)!r} in a header") from None

    return _ESCAPE_RE.sub(repl, value)


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    """Command and headers from the head (command line through the last header line)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"frame head is not valid UTF-8 at byte {exc.start}") from None
    lines = text.split("\n")
    command = lines[0].removesuffix("\r")
    if _COMMAND_RE.fullmatch(command) is None:
        raise ProtocolError(f"invalid STOMP command {command[:32]!r}")
    raw = command in _RAW_COMMANDS
    headers: dict[str, str] = {}
    for line in lines[1:]:
        line = line.removesuffix("\r")
        if "\r" in line:
            raise ProtocolError(f"CR inside a header line of {command} frame: {line[:32]!r}")
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"header line without ':' in {command} frame: {line[:32]!r}")
        if not name:
            raise ProtocolError(f"empty header name in {command} frame: {line[:32]!r}")
        if not raw:
            name = _unescape(name)
            value = _unescape(value)
        headers.setdefault(name, value)
    return command, headers


def _content_length(value: str | None, limit: int) -> int | None:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):
        raise ProtocolError(f"bad content-length {value[:32]!r}")
    # Leading zeros dropped first, so "0" and "000" are the valid empty body (int("") is not);
    # the length is checked before int(): a 5,000-digit value would hit int()'s digit limit.
    digits = value.lstrip("0") or "0"
    length = int(digits) if len(digits) <= 18 else limit + 1
    if length > limit:
        raise ProtocolError(f"frame too large: content-length {length} > {limit}")
    return length


def _partial_line(buf: bytearray, start: int) -> int:
    """Length of the unfinished line at ``start``, not counting a final CR: it may be the first
    half of a CRLF, so counting it would make the line limit depend on where TCP split the data.
    """
    end = len(buf)
    if end > start and buf[end - 1] == 13:
        end -= 1
    return end - start


class FrameParser:
    """Incremental STOMP frame parser: ``feed(bytes) -> list[Frame]``, buffering partial frames.

    Limits bound memory against a hostile or broken peer; any violation raises ``FrameError``
    and poisons the parser (every later ``feed`` raises), because after a framing error the
    byte stream cannot be resynchronised and the link must be closed.  Reads no clock:
    ``heartbeats`` counts EOLs received between frames for the caller's watchdog.
    """

    __slots__ = (
        "_body_scan",
        "_buf",
        "_error",
        "_frame_start",
        "_line",
        "_nlines",
        "_pending",
        "heartbeats",
        "max_frame_size",
        "max_header_line",
        "max_headers",
    )

    def __init__(
        self,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_headers: int = DEFAULT_MAX_HEADERS,
        max_header_line: int = DEFAULT_MAX_HEADER_LINE,
    ) -> None:
        if min(max_frame_size, max_headers, max_header_line) < 1:
            raise ValueError("parser limits must be positive")
        self.max_frame_size = max_frame_size
        self.max_headers = max_headers
        self.max_header_line = max_header_line
        self.heartbeats = 0
        self._buf = bytearray()
        self._frame_start = 0  # offset in _buf of the frame being parsed (or of the next byte)
        self._line = -1  # start of the head line being scanned; -1: no frame started
        self._nlines = 0
        self._pending: tuple[str, dict[str, str], int, int | None] | None = None
        self._body_scan = 0
        self._error: str | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for a frame not yet complete."""
        return len(self._buf) - self._frame_start

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Every frame completed by ``data``, in order; partial frames stay buffered."""
        if self._error is not None:
            raise FrameError(f"parser unusable after an earlier error: {self._error}")
        self._buf += data
        frames: list[Frame] = []
        try:
            while (frame := self._next_frame()) is not None:
                frames.append(frame)
        except ProtocolError as exc:
            self._error = str(exc)
            self._buf = bytearray()
            self._frame_start = 0
            raise FrameError(str(exc), frames) from None
        self._compact()
        return frames

    def _compact(self) -> None:
        # ``del bytearray[:n]`` only moves CPython's start pointer: no copy per frame.
        start = self._frame_start
        if start:
            del self._buf[:start]
            self._frame_start = 0
            if self._line >= 0:
                self._line -= start
            if self._pending is not None:
                cmd, hdrs, body_start, length = self._pending
                self._pending = (cmd, hdrs, body_start - start, length)
            self._body_scan = max(self._body_scan - start, 0)

    def _skip_heartbeats(self) -> bool:
        """Consume EOLs (heart-beats) and stray NULs before a frame; False: more data needed."""
        buf = self._buf
        pos = self._frame_start
        end = len(buf)
        while pos < end:
            c = buf[pos]
            if c == 10:
                self.heartbeats += 1
                pos += 1
            elif c == 0:
                pos += 1
            elif c == 13:
                if pos + 1 == end:
                    break
                if buf[pos + 1] != 10:
                    self._frame_start = pos
                    raise ProtocolError("bare CR between frames")
                self.heartbeats += 1
                pos += 2
            else:
                self._frame_start = pos
                return True
        self._frame_start = pos
        return False

    def _next_frame(self) -> Frame | None:
        if self._pending is None:
            if self._line < 0:
                if not self._skip_heartbeats():
                    return None
                self._line = self._frame_start
                self._nlines = 0
            if not self._scan_head():
                return None
        return self._read_body()

    def _scan_head(self) -> bool:
        """Find the blank line ending the head, checking limits line by line."""
        buf = self._buf
        start = self._line
        frame_start = self._frame_start
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                self._line = start
                self._check_line(_partial_line(buf, start), len(buf) - frame_start)
                return False
            length = nl - start
            if length and buf[nl - 1] == 13:
                length -= 1
            self._check_line(length, nl + 1 - frame_start)
            if length == 0 and self._nlines:
                command, headers = _parse_head(bytes(buf[frame_start : start - 1]))
                limit = self.max_frame_size - (nl + 2 - frame_start)
                length_value = _content_length(headers.get("content-length"), limit)
                self._pending = (command, headers, nl + 1, length_value)
                self._body_scan = nl + 1
                self._line = -1
                return True
            self._nlines += 1
            if self._nlines > self.max_headers + 1:
                raise ProtocolError(f"too many headers (more than {self.max_headers})")
            start = nl + 1

    def _check_line(self, length: int, frame_bytes: int) -> None:
        if length > self.max_header_line:
            raise ProtocolError(f"header line too long (more than {self.max_header_line} bytes)")
        if frame_bytes > self.max_frame_size:
            raise ProtocolError(f"frame too large (more than {self.max_frame_size} bytes)")

    def _read_body(self) -> Frame | None:
        assert self._pending is not None
        command, headers, body_start, length = self._pending
        buf = self._buf
        if length is not None:
            end = body_start + length
            if len(buf) <= end:
                return None
            if buf[end] != 0:
                raise ProtocolError(f"no NUL after the {length}-byte body given by content-length")
        else:
            end = buf.find(b"\x00", self._body_scan)
            if end < 0:
                self._body_scan = len(buf)
                if len(buf) - self._frame_start > self.max_frame_size:
                    raise ProtocolError(f"frame too large (more than {self.max_frame_size} bytes)")
                return None
            if end + 1 - self._frame_start > self.max_frame_size:
                raise ProtocolError(f"frame too large (more than {self.max_frame_size} bytes)")
        body = bytes(buf[body_start:end])
        self._pending = None
        self._frame_start = end + 1
        return Frame(command, headers, body)


def _escape(text: str, what: str) -> str:
    if "\x00" in text:
        raise ValueError(f"NUL in a header {what}")
    return text.translate(_ESCAPES)


def _raw(text: str, what: str) -> str:
    if "\x00" in text or "\r" in text or "\n" in text:
        raise ValueError(f"CONNECT/CONNECTED header {what} cannot carry NUL, CR or LF")
    return text


def _escaped_lines(pairs: list[tuple[str, str]], raw: bool) -> list[str]:
    if raw:
        if any(":" in name for name, _ in pairs):
            raise ValueError("CONNECT/CONNECTED header name cannot carry ':'")
        return [f"{_raw(name, 'name')}:{_raw(value, 'value')}" for name, value in pairs]
    return [f"{_escape(name, 'name')}:{_escape(value, 'value')}" for name, value in pairs]


def encode_frame(
    command: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    body: bytes | str = b"",
) -> bytes:
    """Bytes of one frame, strict: what we send is always valid STOMP 1.2.

    Never adds ``content-length`` (ActiveMQ would turn the SEND into a BytesMessage); a body with
    NUL therefore needs an explicit, matching ``content-length`` or raises ``ValueError``.
    """
    if _COMMAND_RE.fullmatch(command) is None:
        raise ValueError(f"invalid STOMP command {command!r}")
    if isinstance(body, str):
        data = body.encode("utf-8")
    elif isinstance(body, bytes | bytearray | memoryview):
        data = bytes(body)
    else:
        raise TypeError(f"body must be bytes or str, not {type(body).__name__}")
    items: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else headers
    pairs: list[tuple[str, str]] = []
    declared: str | None = None
    for name, value in items:
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"header names and values must be str, got {name!r}")
        if not name:
            raise ValueError("empty header name")
        if name == "content-length" and declared is None:
            declared = value
        pairs.append((name, value))
    # One regex pass over all headers: the common case (nothing to escape) skips per-header work.
    if _NEEDS_ESCAPE.search("".join([s for pair in pairs for s in pair])) is None:
        lines = [f"{name}:{value}" for name, value in pairs]
    else:
        lines = _escaped_lines(pairs, command in _RAW_COMMANDS)
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()) or int(declared) != len(data):
            raise ValueError(
                f"content-length {declared!r} does not match the {len(data)}-byte body"
            )
    elif b"\x00" in data:
        raise ValueError("a body containing NUL needs an explicit content-length header")
    return "\n".join([command, *lines, "", ""]).encode() + data + b"\x00"


def decode_message(frame: bytes | bytearray | memoryview) -> tuple[str | None, Event]:
    """One complete MESSAGE frame's bytes to ``(correlation-id or None, typed event)`` in one call.

    For a caller that already holds one frame's bytes; the client parses its stream with
    ``FrameParser`` and decodes each body with ``decode_event`` instead.  EOLs and stray NULs
    around the frame are allowed; anything else (not exactly one MESSAGE frame) raises
    ``ProtocolError``.
    """
    parser = FrameParser()
    frames = parser.feed(frame)
    if len(frames) != 1 or parser.buffered:
        raise ProtocolError(f"expected exactly one complete frame, got {len(frames)}")
    only = frames[0]
    if only.command != "MESSAGE":
        raise ProtocolError(f"expected a MESSAGE frame, got {only.command}")
    return only.headers.get("correlation-id"), decode_event(only.body)
