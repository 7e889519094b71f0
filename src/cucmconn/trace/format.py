"""The trace format: JSON Lines, one versioned header line, then one line per message.

A trace keeps what crossed one client's link to the broker, exactly as sent and received, so
that a real connector's behaviour can be replayed offline (``Replayer``) or compared with the
emulator (``check``).  The format is documented for users in ``docs/trace-format.md``; this
module is its one definition (writer and readers share it).

Only the headers that matter are kept (:data:`KEPT_HEADERS`): never ``login``/``passcode`` or
any other header, and command bodies that can carry a password are redacted
(:func:`redact_command_body`).  URLs are written through ``redact_url``.
"""

from __future__ import annotations

import base64
import datetime
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import msgspec

from ..codec.commands import ALIASES, COMMANDS, canonical_command
from ..codec.text import decode_text
from ..errors import ProtocolError
from ..transport.base import correlation_id_of, jms_type_of, reply_to_of
from ..transport.url import redact_url

__all__ = [
    "KEPT_HEADERS",
    "SECRET_COMMANDS",
    "TRACE_FORMAT",
    "TRACE_VERSION",
    "Trace",
    "TraceError",
    "TraceHeader",
    "TraceRecord",
    "body_text",
    "read_trace",
    "redact_command_body",
    "write_trace",
]

TRACE_FORMAT = "cucmconn-trace"
TRACE_VERSION = 1
"""Bumped on any change a version-1 reader would misread; readers refuse other versions."""

KEPT_HEADERS = (
    "type",
    "correlation-id",
    "reply-to",
    "expires",
    "timestamp",
    "message-id",
    "persistent",
    "priority",
)
"""STOMP headers a trace keeps (ActiveMQ's JMS mapping); every other header is left out."""

REDACTED = "***"
SECRET_COMMANDS = frozenset(
    alias for alias, name in ALIASES.items() if not COMMANDS[name].echo_args and name != "Login"
)
"""Lower-cased names (and aliases) of commands whose body may hold a password."""
_SECRET_ARGS = {"MobileAgentLogin": (0,)}
"""Argument positions holding a password, for commands whose other arguments are useful."""


class TraceError(ValueError):
    """A trace file that cannot be read: the message names the line and what is wrong."""


class TraceHeader(msgspec.Struct, kw_only=True):
    """The first line of a trace: what wrote it, when, and over which (redacted) URL."""

    format: str = TRACE_FORMAT
    version: int = TRACE_VERSION
    created: str = ""
    """ISO 8601 UTC time the recording started."""
    wall: float = 0.0
    """Epoch seconds at the start; records' ``wall`` are on the same clock."""
    mono: float = 0.0
    """Monotonic seconds at the start; records' ``mono`` minus this is their offset."""
    url: str = ""
    source: str = ""
    """Who recorded: ``cucmconn <version>``, a guide transcription, ..."""
    note: str = ""


class TraceRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One message: ``dir`` is ``out`` (sent by the client) or ``in`` (received by it)."""

    dir: Literal["out", "in"]
    seq: int
    wall: float
    mono: float
    dest: str
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    body: str = ""
    body_b64: str | None = None
    """Set instead of ``body`` when the bytes were not text (kept, never lost)."""

    @property
    def jms_type(self) -> str:
        """The recorded JMSType (``type`` header): ``Login#1001`` for a command; ``""`` if none."""
        return jms_type_of(self.headers)

    @property
    def correlation_id(self) -> str | None:
        """The recorded JMSCorrelationID, pairing a command with its answers; None if none."""
        return correlation_id_of(self.headers)

    @property
    def reply_to(self) -> str | None:
        """The recorded JMSReplyTo of a command (where it asked to be answered); None if none."""
        return reply_to_of(self.headers)

    @property
    def is_command(self) -> bool:
        """A client's command: sent to a queue with a ``<Command>#<target>`` type."""
        return self.dir == "out" and self.dest.startswith("/queue/") and "#" in self.jms_type

    @property
    def is_event(self) -> bool:
        """A message the client received (``dir`` ``in``): an event or an answer."""
        return self.dir == "in"

    def raw_body(self) -> bytes:
        """The body's bytes as they crossed the wire (from ``body_b64`` when not text)."""
        if self.body_b64 is not None:
            return base64.b64decode(self.body_b64)
        return self.body.encode("utf-8")


class Trace(msgspec.Struct):
    """A whole trace in memory: its header and its records in the order they were written."""

    header: TraceHeader
    records: list[TraceRecord]
    dropped: int = 0
    """Records the recorder could not keep (its queue overflowed), from the end line."""

    def commands(self) -> list[TraceRecord]:
        """The client's commands, in recorded order."""
        return [r for r in self.records if r.is_command]

    def events(self) -> list[TraceRecord]:
        """What the client received, in recorded order."""
        return [r for r in self.records if r.is_event]


class _End(msgspec.Struct, kw_only=True):
    end: bool
    records: int = 0
    dropped: int = 0


_encoder = msgspec.json.Encoder()
_record_decoder = msgspec.json.Decoder(TraceRecord)
_header_decoder = msgspec.json.Decoder(TraceHeader)


def body_text(body: bytes) -> tuple[str, str | None]:
    """``(body, body_b64)`` for raw bytes: text when it decodes (CESU-8 repaired), else base64."""
    try:
        return decode_text(body), None
    except (ProtocolError, UnicodeDecodeError):
        return "", base64.b64encode(body).decode("ascii")


def redact_command_body(jms_type: str, body: str) -> str:
    """A command body with any password replaced by ``***``.

    ``MobileAgentLogin`` keeps every argument but the password; other commands that may carry
    credentials (``CommandSpec.echo_args`` false, except ``Login`` whose only argument is the
    client destination) lose their whole body.
    """
    name = jms_type.split("#", 1)[0].strip()
    try:
        name = canonical_command(name)
    except ValueError:
        return body
    spec = COMMANDS.get(name)
    if spec is None or spec.echo_args or name == "Login" or not body:
        return body
    positions = _SECRET_ARGS.get(name)
    if positions is None:
        return REDACTED
    args = body.split(",")
    return ",".join(REDACTED if i in positions else a for i, a in enumerate(args))


def make_header(url: str = "", *, source: str = "", note: str = "", **times: float) -> TraceHeader:
    """A header with the URL redacted; ``wall``/``mono`` default to now."""
    wall = times.get("wall", time.time())
    mono = times.get("mono", time.monotonic())
    created = datetime.datetime.fromtimestamp(wall, datetime.UTC).isoformat(timespec="milliseconds")
    return TraceHeader(
        created=created, wall=wall, mono=mono, url=redact_url(url), source=source, note=note
    )


def encode_line(item: TraceHeader | TraceRecord | _End) -> bytes:
    return _encoder.encode(item) + b"\n"


def end_line(records: int, dropped: int) -> bytes:
    """The optional last line: how many records were written and how many were dropped."""
    return encode_line(_End(end=True, records=records, dropped=dropped))


def write_trace(
    path: str | os.PathLike[str], header: TraceHeader, records: Iterable[TraceRecord]
) -> None:
    """Write a whole trace at once (tools and tests; live recording uses ``TraceRecorder``)."""
    count = 0
    with open(path, "wb") as out:
        out.write(encode_line(header))
        for record in records:
            out.write(encode_line(record))
            count += 1
        out.write(end_line(count, 0))


def _lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as source:
        for number, line in enumerate(source, 1):
            if line.strip():
                yield number, line


def read_trace(path: str | os.PathLike[str]) -> Trace:
    """Read and validate a trace; TraceError names the line for anything malformed."""
    name = Path(path).name
    lines = _lines(path)
    try:
        number, first = next(lines)
    except StopIteration:
        raise TraceError(f"{name}: empty file, not a trace") from None
    try:
        header = _header_decoder.decode(first)
    except msgspec.DecodeError as exc:
        raise TraceError(f"{name}:{number}: not a trace header: {exc}") from None
    if header.format != TRACE_FORMAT:
        raise TraceError(f"{name}:{number}: format {header.format!r}, not {TRACE_FORMAT!r}")
    if header.version != TRACE_VERSION:
        raise TraceError(
            f"{name}:{number}: trace version {header.version}; this cucmconn reads "
            f"version {TRACE_VERSION}"
        )
    records: list[TraceRecord] = []
    dropped = 0
    for number, line in lines:
        try:
            records.append(_record_decoder.decode(line))
            continue
        except msgspec.ValidationError as exc:
            error: Exception = exc
        except msgspec.DecodeError as exc:
            raise TraceError(f"{name}:{number}: not JSON: {exc}") from None
        try:
            end = msgspec.json.decode(line, type=_End)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise TraceError(f"{name}:{number}: not a trace record: {error}") from None
        dropped = end.dropped
    return Trace(header, records, dropped)
