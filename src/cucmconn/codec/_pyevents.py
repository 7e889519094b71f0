"""Event codec, pure-Python twin of ``_cevents.pyx`` (same behaviour, tested differentially).

Wire format (docs/protocol.md "Events")::

    default  <Event_For>#<Event_Type>[#<arg>...]      one event per JMS text message
             System#IN_SERVICE | System#OUT_OF_SERVICE
             Terminal#CiscoTermInServiceEv | Terminal#CiscoTermOut[Of]ServiceEv
             InboundCall#<state>#<start>[#<connection_id>#<other_party>]        (guide: no agent)
             <agent>#AgentInfo#<extension>#<device_name>
             <agent>#AgentState#<state>#<changed_at>
             <agent>#DialogState#<state>#<changed_at>[#<connection_id>#<p1,p2,...>]
             <agent>#InboundCall#<state>#<start>#<connection_id>#<other_party>
             <agent>#Terminal#<status>
             <for>#Error#<CODE>[#<message>]
    json     {"type": ..., "agentId": ..., "state"|"State": ..., ...}   (first non-space char '{')

msgspec decodes the JSON into a permissive "wire" Struct and this module normalises it into the
typed model (why no library does this: docs/architecture.md).  Every malformed input raises
``ProtocolError`` and nothing else, because one bad message must never take down the client's
event loop.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ..errors import ProtocolError
from .events import (
    AgentInfo,
    AgentState,
    DialogState,
    ErrorEvent,
    Event,
    InboundCall,
    SystemStatus,
    TerminalStatus,
    UnknownEvent,
)

__all__ = ["MAX_EVENT_BODY", "decode_event", "encode_event"]

MAX_EVENT_BODY = 65_536
"""Default input limit of ``decode_event``: bytes of a bytes body, characters of a str body.

The house profile's largest event is well under 1 KiB; a bigger body is a fault or an attack
(a 1 MB ``changed_at`` would otherwise be kept in every agent's state)."""

WHITESPACE = " \t\r\n\x0b\x0c"
"""Stripped around a body (ASCII only, so both twins strip exactly the same bytes)."""

KNOWN_TYPES = frozenset(
    {"error", "agentstate", "dialogstate", "inboundcall", "agentinfo", "terminal", "system"}
)
"""Event types (after ``type_key``) that decode into a typed event in some format."""

RESERVED_FOR = frozenset({"system", "terminal", "inboundcall"})
"""``<Event_For>`` values that name an event family, not an agent."""

Scalar = str | int | None
Many = list[str | int] | str | int | None


class InnerState(msgspec.Struct, gc=False):
    """A ``state`` given as an object: the guide's AgentState table shows an "inside part"."""

    state: Scalar = None
    State: Scalar = None
    stateChangeTimeString: Scalar = None


class Wire(msgspec.Struct, gc=False):
    """Every attribute name the guide's JSON tables use; unknown attributes are ignored.

    Fields are in the order the house profile emits them: msgspec tries the field after the
    last one it matched first, so a well-ordered object is decoded without key searches.
    """

    type: str | None = None
    agentId: Scalar = None
    state: Scalar | InnerState = None
    stateChangeTimeString: Scalar = None
    startTime: Scalar = None
    connectionID: Scalar = None
    participants: Many = None
    status: Scalar = None
    errorType: Scalar = None
    message: Scalar = None
    extension: Scalar = None
    deviceName: Scalar = None
    State: Scalar = None
    connectionId: Scalar = None
    Connection: Scalar = None
    otherParticipants: Many = None
    otherParty: Scalar = None
    args: list[str | int] | None = None


WIRE_DECODER = msgspec.json.Decoder(Wire)
JSON_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)
"""RecursionError: msgspec's answer to deeply nested (hostile) JSON, even in ignored attributes."""


def _bad(what: str) -> ProtocolError:
    return ProtocolError(f"malformed event: {what}")


def type_key(name: str) -> str:
    """``AGENT_STATE``, ``agent_state`` and ``AgentState`` are one event type."""
    return name.lower().replace("_", "")


# --------------------------------------------------------------------------- text


def _repair(data: bytes) -> str:
    """CESU-8 repair (ActiveMQ AMQ-8398): surrogate pairs sent as two 3-byte sequences."""
    try:
        text = data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise _bad(f"body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return _pair_surrogates(text)


def _pair_surrogates(text: str) -> str:
    try:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        raise _bad("body holds an unpaired UTF-16 surrogate") from None


def _to_text(body: bytes | bytearray | memoryview | str) -> str:
    if isinstance(body, str):
        if not body.isascii():
            try:
                body.encode("utf-8")
            except UnicodeEncodeError:
                return _pair_surrogates(body)
        return body
    if isinstance(body, (bytearray, memoryview)):
        body = bytes(body)
    if not isinstance(body, bytes):
        raise ProtocolError(f"event body must be bytes or str, not {type(body).__name__}")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return _repair(body)


# --------------------------------------------------------------------------- default format


def _opt(parts: list[str], index: int) -> str | None:
    if index < len(parts):
        return parts[index] or None
    return None


def _req(parts: list[str], index: int, kind: str, what: str) -> str:
    if index < len(parts) and parts[index]:
        return parts[index]
    raise _bad(f"{kind} event without {what}")


def _participants(parts: list[str], index: int) -> tuple[str, ...] | None:
    if index >= len(parts):
        return None
    field = parts[index]
    return tuple(field.split(",")) if field else ()


def _check_type(event_type: str) -> None:
    if _CONTROL.search(event_type) is not None:
        raise _bad("control character in the event type")


def _decode_default(text: str) -> Event:
    parts = text.split("#")
    if len(parts) < 2:
        raise _bad("no '#' separator (and not a JSON object)")
    event_for, event_type = parts[0], parts[1]
    if not event_type:
        raise _bad("empty event type")
    _check_type(event_type)
    kind = type_key(event_type)
    if kind == "error":
        code = _req(parts, 2, "Error", "a code")
        message = "#".join(parts[3:]) if len(parts) > 3 else ""
        return ErrorEvent(event_for, code, message or None)
    family = event_for.lower()
    if family == "system":
        return SystemStatus(event_type)
    if family == "terminal":
        return TerminalStatus(None, event_type)
    if family == "inboundcall":
        return InboundCall(None, event_type, _opt(parts, 2), _opt(parts, 3), _opt(parts, 4))
    if not event_for:
        raise _bad("empty <Event_For>")
    if kind == "agentstate":
        return AgentState(event_for, _req(parts, 2, "AgentState", "a state"), _opt(parts, 3))
    if kind == "dialogstate":
        state = _req(parts, 2, "DialogState", "a state")
        return DialogState(
            event_for, state, _opt(parts, 3), _opt(parts, 4), _participants(parts, 5)
        )
    if kind == "inboundcall":
        state = _req(parts, 2, "InboundCall", "a state")
        return InboundCall(event_for, state, _opt(parts, 3), _opt(parts, 4), _opt(parts, 5))
    if kind == "agentinfo":
        return AgentInfo(event_for, _opt(parts, 2), _opt(parts, 3))
    if kind == "terminal":
        return TerminalStatus(event_for, _req(parts, 2, "Terminal", "a status"))
    return UnknownEvent(event_for, event_type, tuple(parts[2:]), text)


# --------------------------------------------------------------------------- JSON format


def _scalar(value: Scalar) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text or None


def _first(*values: Scalar) -> str | None:
    for value in values:
        text = _scalar(value)
        if text is not None:
            return text
    return None


def _many(value: Many) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(item if isinstance(item, str) else str(item) for item in value)
    text = value if isinstance(value, str) else str(value)
    return tuple(text.split(",")) if text else ()


def _state_and_time(wire: Wire) -> tuple[str | None, str | None]:
    """``state`` (or ``State``) and ``stateChangeTimeString``, also from a ``state`` object."""
    state = wire.state
    changed_at = _scalar(wire.stateChangeTimeString)
    if isinstance(state, InnerState):
        if changed_at is None:
            changed_at = _scalar(state.stateChangeTimeString)
        state = _first(state.state, state.State)
    return _first(state, wire.State), changed_at


def _json_req(value: str | None, kind: str, what: str) -> str:
    if value is None:
        raise _bad(f"JSON {kind} event without {what}")
    return value


def _decode_json(text: str) -> Event:
    try:
        wire = WIRE_DECODER.decode(text)
    except JSON_ERRORS as exc:
        raise _bad(f"JSON event: {exc}") from None
    if not wire.type:
        raise _bad("JSON event without a 'type'")
    _check_type(wire.type)
    kind = type_key(wire.type)
    agent = _scalar(wire.agentId)
    if kind == "error":
        error_type = _scalar(wire.errorType)
        message = _scalar(wire.message)
        if error_type is None:
            error_type, message = message, None
        code = _json_req(error_type, "Error", "errorType or message")
        return ErrorEvent(agent or "", code, message)
    state, changed_at = _state_and_time(wire)
    if kind in ("system", "terminal"):
        status = _json_req(_first(wire.status, state), wire.type, "a status")
        if kind == "system" and not status.lower().startswith("ciscoterm"):
            return SystemStatus(status)
        return TerminalStatus(agent, status)
    connection = _first(wire.connectionID, wire.connectionId, wire.Connection)
    if kind == "inboundcall":
        other = _scalar(wire.otherParty)
        if other is None:
            party = _many(
                wire.participants if wire.participants is not None else wire.otherParticipants
            )
            other = (party[0] or None) if party else None
        return InboundCall(
            agent,
            _json_req(state, "InboundCall", "a state"),
            _scalar(wire.startTime),
            connection,
            other,
        )
    if kind not in ("agentstate", "dialogstate", "agentinfo"):
        return UnknownEvent(agent or "", wire.type, _many(wire.args) or (), text)
    agent_id = _json_req(agent, wire.type, "an agentId")
    if kind == "agentinfo":
        return AgentInfo(agent_id, _scalar(wire.extension), _scalar(wire.deviceName))
    if kind == "agentstate":
        return AgentState(agent_id, _json_req(state, "AgentState", "a state"), changed_at)
    participants = _many(
        wire.participants if wire.participants is not None else wire.otherParticipants
    )
    return DialogState(
        agent_id, _json_req(state, "DialogState", "a state"), changed_at, connection, participants
    )


# --------------------------------------------------------------------------- decode


def decode_event(
    body: bytes | bytearray | memoryview | str, max_size: int = MAX_EVENT_BODY
) -> Event:
    """One event from one message body; ``ProtocolError`` (and nothing else) when malformed.

    Malformed includes a body longer than ``max_size`` (bytes, or characters for a str) and a
    control character (U+0000-U+001F, U+007F) in the event type.
    """
    if isinstance(body, memoryview):
        body = bytes(body)
    if isinstance(body, (bytes, bytearray, str)) and len(body) > max_size:
        raise _bad(f"body of {len(body)} over the limit of {max_size}")
    text = _to_text(body).strip(WHITESPACE)
    if not text:
        raise _bad("empty body")
    if text[0] == "{":
        return _decode_json(text)
    return _decode_default(text)


# --------------------------------------------------------------------------- encode

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NON_BMP = re.compile("[\U00010000-\U0010ffff]")


def _check(name: str, value: str, *, comma: bool = False) -> str:
    if not isinstance(value, str):
        raise TypeError(f"field {name} must be str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"field {name} is empty (use None for an absent value)")
    if "#" in value:
        raise ValueError(f"field {name} ({value!r}) contains '#'")
    if comma and "," in value:
        raise ValueError(f"field {name} ({value!r}) contains ','")
    if _CONTROL.search(value):
        raise ValueError(f"field {name} ({value!r}) contains a control character")
    return value


def _agent(name: str, value: str) -> str:
    _check(name, value)
    if value.lower() in RESERVED_FOR:
        raise ValueError(f"field {name} ({value!r}) would be read as an event family")
    return value


def _fields(event: Event) -> list[tuple[str, str | tuple[str, ...] | None]]:
    """The event's wire fields in ``#`` order, as (name, value) pairs."""
    if isinstance(event, SystemStatus):
        return [("event_for", "System"), ("status", event.status)]
    if isinstance(event, TerminalStatus):
        if event.agent_id is None:
            return [("event_for", "Terminal"), ("status", event.status)]
        return [("agent_id", event.agent_id), ("type", "Terminal"), ("status", event.status)]
    if isinstance(event, AgentInfo):
        return [
            ("agent_id", event.agent_id),
            ("type", "AgentInfo"),
            ("extension", event.extension),
            ("device_name", event.device_name),
        ]
    if isinstance(event, AgentState):
        return [
            ("agent_id", event.agent_id),
            ("type", "AgentState"),
            ("state", event.state),
            ("changed_at", event.changed_at),
        ]
    if isinstance(event, DialogState):
        return [
            ("agent_id", event.agent_id),
            ("type", "DialogState"),
            ("state", event.state),
            ("changed_at", event.changed_at),
            ("connection_id", event.connection_id),
            ("participants", event.participants),
        ]
    if isinstance(event, InboundCall):
        head: list[tuple[str, str | tuple[str, ...] | None]] = (
            [("event_for", "InboundCall")]
            if event.agent_id is None
            else [("agent_id", event.agent_id), ("type", "InboundCall")]
        )
        return [
            *head,
            ("state", event.state),
            ("start_time", event.start_time),
            ("connection_id", event.connection_id),
            ("other_party", event.other_party),
        ]
    if isinstance(event, ErrorEvent):
        return [
            ("target", event.target),
            ("type", "Error"),
            ("code", event.code),
            ("message", event.message),
        ]
    raise TypeError(f"not an event: {type(event).__name__}")


_REQUIRED = frozenset({"agent_id", "target", "status", "state", "code"})


def _encode_default(event: Event) -> str:
    fields = _fields(event)
    if fields[0][0] == "event_for" and type_key(str(fields[1][1])) == "error":
        raise ValueError(f"{fields[1][0]} {fields[1][1]!r} would be read as an Error event")
    for name, value in fields:
        if value is None and name in _REQUIRED:
            raise ValueError(f"field {name} is required")
    while fields[-1][1] is None:
        fields.pop()
    out: list[str] = []
    for name, value in fields:
        if value is None:
            out.append("")
        elif isinstance(value, tuple):
            out.append(",".join(_check(f"{name}[{i}]", v, comma=True) for i, v in enumerate(value)))
        elif name == "agent_id":
            out.append(_agent(name, value))
        elif name == "target" and value == "":
            out.append("")  # an Error for nobody (JSON errors carry no agentId)
        else:
            out.append(_check(name, value))
    text = "#".join(out)
    if text != text.strip(WHITESPACE):
        raise ValueError("a field starts or ends the body with whitespace, which decoding strips")
    if text.startswith("{"):
        raise ValueError("the first field starts with '{', which decoding reads as JSON")
    return text


def _escape_non_bmp(match: re.Match[str]) -> str:
    code = ord(match.group()) - 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


_JSON_NAMES = {
    "status": "status",
    "agent_id": "agentId",
    "target": "agentId",
    "extension": "extension",
    "device_name": "deviceName",
    "state": "state",
    "changed_at": "stateChangeTimeString",
    "start_time": "startTime",
    "connection_id": "connectionID",
    "participants": "participants",
    "other_party": "participants",
    "code": "errorType",
    "message": "message",
}
_JSON_TYPES = {
    SystemStatus: "System",
    TerminalStatus: "Terminal",
    AgentInfo: "AgentInfo",
    AgentState: "AgentState",
    DialogState: "DialogState",
    InboundCall: "InboundCall",
    ErrorEvent: "Error",
}
_ENCODER = msgspec.json.Encoder()


def _encode_json(event: Event) -> str:
    obj: dict[str, Any] = {"type": _JSON_TYPES[type(event)]}
    status = event.status if isinstance(event, SystemStatus) else None
    if isinstance(status, str) and status.lower().startswith("ciscoterm"):
        raise ValueError(f"System status {status!r} would be read as a Terminal event")
    for name, value in _fields(event):
        key = _JSON_NAMES.get(name)
        if key is None or value is None:
            if value is None and name in _REQUIRED:
                raise ValueError(f"field {name} is required")
            continue
        if isinstance(value, tuple):
            for i, item in enumerate(value):
                _check_json(f"{name}[{i}]", item, comma=True)
            obj[key] = list(value)
        elif name == "target" and value == "":
            continue
        else:
            obj[key] = _check_json(name, value, comma=name == "other_party")
    text = _ENCODER.encode(obj).decode("utf-8")
    return text if text.isascii() else _NON_BMP.sub(_escape_non_bmp, text)


def _check_json(name: str, value: str, *, comma: bool = False) -> str:
    if not isinstance(value, str):
        raise TypeError(f"field {name} must be str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"field {name} is empty (use None for an absent value)")
    if comma and "," in value:
        raise ValueError(f"field {name} ({value!r}) contains ','")
    return value


def _encode_unknown(event: UnknownEvent, fmt: str) -> str:
    if event.raw:
        return event.raw
    if fmt == "json":
        obj: dict[str, Any] = {"type": event.event_type}
        if event.event_for:
            obj["agentId"] = event.event_for
        if event.args:
            obj["args"] = list(event.args)
        text = _ENCODER.encode(obj).decode("utf-8")
        return text if text.isascii() else _NON_BMP.sub(_escape_non_bmp, text)
    fields = [event.event_for, event.event_type, *event.args]
    for i, value in enumerate(fields):
        if "#" in value or _CONTROL.search(value):
            raise ValueError(f"UnknownEvent field {i} ({value!r}) contains '#' or a control char")
    return "#".join(fields)


def encode_event(event: Event, fmt: str = "default") -> str:
    """The body the connector would send for ``event`` (the emulator's side).

    ``fmt`` is ``"default"`` (``#``-separated, house profile) or ``"json"``.  Values that the
    format cannot carry (``#``, ``,`` in a participant, control characters, empty strings) are
    refused with ``ValueError`` so that decoding the result always gives ``event`` back.
    An ``UnknownEvent`` is re-sent verbatim (its ``raw``) in either format.
    """
    if fmt not in ("default", "json"):
        raise ValueError(f"unknown event format {fmt!r} (expected 'default' or 'json')")
    if isinstance(event, UnknownEvent):
        return _encode_unknown(event, fmt)
    if fmt == "json":
        if type(event) not in _JSON_TYPES:
            raise TypeError(f"not an event: {type(event).__name__}")
        return _encode_json(event)
    return _encode_default(event)
