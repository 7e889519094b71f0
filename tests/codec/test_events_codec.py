"""The event codec, run against BOTH twins (pure Python and Cython), plus a differential test.

Golden vectors are the guide's literal forms, its JSON tables with their inconsistent names, and
the house profile (docs/protocol.md "Events").  Fuzzing proves that nothing but ProtocolError
escapes, and that the two implementations agree on every input.
"""

from __future__ import annotations

import importlib
import json
import os
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cucmconn.codec import ERROR_CODES, MAX_EVENT_BODY, _pyevents
from cucmconn.codec.events import (
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
from cucmconn.errors import ProtocolError


def _load_cython() -> ModuleType | None:
    try:
        return importlib.import_module("cucmconn.codec._cevents")
    except ImportError:
        if os.environ.get("CUCMCONN_NO_EXTENSIONS", "") not in ("", "0"):
            return None
        raise


_CEVENTS = _load_cython()


@pytest.fixture(params=["python", "cython"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    if request.param == "python":
        return _pyevents
    if _CEVENTS is None:
        pytest.skip("extension not built and CUCMCONN_NO_EXTENSIONS is set")
    return _CEVENTS


IMPLS = [_pyevents] + ([_CEVENTS] if _CEVENTS is not None else [])
T = "2019-09-17 12:46:21"

# --------------------------------------------------------------------------- golden vectors

GUIDE_DEFAULT: list[tuple[bytes, Event]] = [
    (b"System#IN_SERVICE", SystemStatus("IN_SERVICE")),
    (b"System#OUT_OF_SERVICE", SystemStatus("OUT_OF_SERVICE")),
    (b"Terminal#CiscoTermInServiceEv", TerminalStatus(None, "CiscoTermInServiceEv")),
    (b"Terminal#CiscoTermOutServiceEv", TerminalStatus(None, "CiscoTermOutServiceEv")),
    (b"Terminal#CiscoTermOutOfServiceEv", TerminalStatus(None, "CiscoTermOutOfServiceEv")),
    (f"42031#DialogState#ACTIVE#{T}".encode(), DialogState("42031", "ACTIVE", T)),
    (f"InboundCall#ALERTING#{T}".encode(), InboundCall(None, "ALERTING", T)),
    (b"42031#Error#PLEASE_RETRY", ErrorEvent("42031", "PLEASE_RETRY")),
    (
        b"Connector_Client_7#Error#MISSING_EXTENSION",
        ErrorEvent("Connector_Client_7", "MISSING_EXTENSION"),
    ),
]

HOUSE_DEFAULT: list[tuple[bytes, Event]] = [
    (b"1001#AgentInfo#1001#SEP0011223344", AgentInfo("1001", "1001", "SEP0011223344")),
    (f"1001#AgentState#READY#{T}".encode(), AgentState("1001", "READY", T)),
    (
        f"1001#DialogState#ACTIVE#{T}#52129051#1001,1002".encode(),
        DialogState("1001", "ACTIVE", T, "52129051", ("1001", "1002")),
    ),
    (
        f"1001#InboundCall#ALERTING#{T}#52129051#1002".encode(),
        InboundCall("1001", "ALERTING", T, "52129051", "1002"),
    ),
    (b"1001#Terminal#CiscoTermInServiceEv", TerminalStatus("1001", "CiscoTermInServiceEv")),
    (b"1001#Terminal#CiscoTermOutOfServiceEv", TerminalStatus("1001", "CiscoTermOutOfServiceEv")),
    (b"1001#Error#CF_INVALID_OBJECT_STATE", ErrorEvent("1001", "CF_INVALID_OBJECT_STATE")),
    (b"1001#Error#GENERAL_ERROR#login failed", ErrorEvent("1001", "GENERAL_ERROR", "login failed")),
]

TOLERATED_DEFAULT: list[tuple[bytes | str, Event]] = [
    # case-insensitive families and types, '_' ignored in type names
    (b"SYSTEM#IN_SERVICE", SystemStatus("IN_SERVICE")),
    (b"system#in_service", SystemStatus("in_service")),
    (b"terminal#CiscoTermInServiceEv", TerminalStatus(None, "CiscoTermInServiceEv")),
    (b"1001#AGENT_STATE#READY", AgentState("1001", "READY")),
    (b"1001#agentstate#READY", AgentState("1001", "READY")),
    (b"1001#dialog_state#HELD", DialogState("1001", "HELD")),
    (b"1001#ERROR#PLEASE_RETRY", ErrorEvent("1001", "PLEASE_RETRY")),
    (b"inboundcall#ALERTING", InboundCall(None, "ALERTING")),
    # whitespace around the body
    (b"System#IN_SERVICE\r\n", SystemStatus("IN_SERVICE")),
    (b" \t1001#AgentState#READY \n", AgentState("1001", "READY")),
    ("System#IN_SERVICE\n", SystemStatus("IN_SERVICE")),
    # empty scalar -> None; participants absent -> None, present but empty -> ()
    (b"1001#AgentState#READY#", AgentState("1001", "READY", None)),
    (b"1001#DialogState#ACTIVE##52#", DialogState("1001", "ACTIVE", None, "52", ())),
    (b"1001#DialogState#ACTIVE##52", DialogState("1001", "ACTIVE", None, "52", None)),
    (b"1001#DialogState#ACTIVE###1002", DialogState("1001", "ACTIVE", None, None, ("1002",))),
    (b"1001#AgentInfo", AgentInfo("1001")),
    (b"1001#InboundCall#ALERTING####", InboundCall("1001", "ALERTING")),
    # extra trailing fields (a newer connector) are ignored
    (b"System#IN_SERVICE#extra", SystemStatus("IN_SERVICE")),
    (b"1001#AgentState#READY#t#x#y#z#w", AgentState("1001", "READY", "t")),
    (
        b"1001#DialogState#A#t#c#p1,p2#x#y#z",
        DialogState("1001", "A", "t", "c", ("p1", "p2")),
    ),
    # the Error message is everything after the code, '#' included
    (b"1001#Error#X#a#b", ErrorEvent("1001", "X", "a#b")),
    (b"1001#Error#X#", ErrorEvent("1001", "X", None)),
    (b"#Error#X", ErrorEvent("", "X")),
    (b"System#Error#PLEASE_RETRY", ErrorEvent("System", "PLEASE_RETRY")),
    # str input, non-ASCII
    ("Agent\u00e9#AgentState#PR\u00caT", AgentState("Agent\u00e9", "PR\u00caT")),
    ("Agent\u00e9#AgentState#PR\u00caT".encode(), AgentState("Agent\u00e9", "PR\u00caT")),
]


@pytest.mark.parametrize(("body", "event"), [*GUIDE_DEFAULT, *HOUSE_DEFAULT, *TOLERATED_DEFAULT])
def test_default_format_golden(impl: ModuleType, body: bytes | str, event: Event) -> None:
    assert impl.decode_event(body) == event


@pytest.mark.parametrize("container", [bytes, bytearray, memoryview, str])
def test_any_buffer_type(impl: ModuleType, container: Any) -> None:
    raw = b"1001#AgentState#READY"
    body = raw.decode() if container is str else container(raw)
    assert impl.decode_event(body) == AgentState("1001", "READY")


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_every_error_code_default(impl: ModuleType, code: str) -> None:
    assert impl.decode_event(f"42031#Error#{code}".encode()) == ErrorEvent("42031", code)


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_every_error_code_json(impl: ModuleType, code: str) -> None:
    with_type = json.dumps({"type": "Error", "errorType": code, "message": "extension is missing"})
    assert impl.decode_event(with_type) == ErrorEvent("", code, "extension is missing")
    # USER_NOT_FOUND, INVALID_PARTY... put the code in `message` and have no errorType
    in_message = json.dumps({"type": "Error", "message": code})
    assert impl.decode_event(in_message) == ErrorEvent("", code, None)


GUIDE_JSON: list[tuple[dict[str, Any], Event]] = [
    ({"type": "System", "status": "IN_SERVICE"}, SystemStatus("IN_SERVICE")),
    ({"type": "System", "status": "OUT_OF_SERVICE"}, SystemStatus("OUT_OF_SERVICE")),
    # the guide's Terminal table says type System: the status tells them apart
    (
        {"type": "System", "status": "CiscoTermInServiceEv"},
        TerminalStatus(None, "CiscoTermInServiceEv"),
    ),
    (
        {
            "type": "DialogState",
            "agentId": "42031",
            "state": "ACTIVE",
            "stateChangeTimeString": T,
            "participants": [42032, 32033],
            "connectionID": 52129051,
        },
        DialogState("42031", "ACTIVE", T, "52129051", ("42032", "32033")),
    ),
    (
        {
            "type": "InboundCall",
            "agentId": "42031",
            "State": "ALERTING",
            "startTime": T,
            "participants": 42032,
            "Connection": 52129051,
        },
        InboundCall("42031", "ALERTING", T, "52129051", "42032"),
    ),
    (
        {
            "type": "AGENT_STATE",
            "agentId": "42031",
            "state": "TALKING",
            "otherParticipants": [42032],
            "connectionID": 52129051,
        },
        AgentState("42031", "TALKING"),
    ),
    ({"type": "agent_state", "agentId": 42031, "State": "READY"}, AgentState("42031", "READY")),
    ({"type": "AgentState", "agentId": "1", "state": "NOT_READY"}, AgentState("1", "NOT_READY")),
    (
        {
            "type": "DialogState",
            "agentId": "1",
            "state": "A",
            "connectionId": "c",
            "otherParticipants": "x,y",
        },
        DialogState("1", "A", None, "c", ("x", "y")),
    ),
    (
        {"type": "DialogState", "agentId": "1", "state": "A", "participants": []},
        DialogState("1", "A", None, None, ()),
    ),
    (
        {"type": "DialogState", "agentId": "1", "state": "A", "participants": ""},
        DialogState("1", "A", None, None, ()),
    ),
    ({"type": "InboundCall", "State": "ALERTING"}, InboundCall(None, "ALERTING")),
    (
        {"type": "InboundCall", "state": "A", "participants": ["9", "8"]},
        InboundCall(None, "A", other_party="9"),
    ),
    (
        {"type": "InboundCall", "state": "A", "otherParty": "7", "participants": "9"},
        InboundCall(None, "A", other_party="7"),
    ),
    (
        {"type": "AgentInfo", "agentId": "1", "extension": "1001", "deviceName": "SEP1"},
        AgentInfo("1", "1001", "SEP1"),
    ),
    (
        {"type": "Terminal", "agentId": "1", "status": "CiscoTermOutOfServiceEv"},
        TerminalStatus("1", "CiscoTermOutOfServiceEv"),
    ),
    ({"type": "Error", "agentId": "1", "errorType": "X", "message": ""}, ErrorEvent("1", "X")),
    # the guide's AgentState table shows a `state` with an "inside part"
    (
        {
            "type": "AGENT_STATE",
            "agentId": "1",
            "state": {"state": "READY", "stateChangeTimeString": T},
        },
        AgentState("1", "READY", T),
    ),
    (
        {
            "type": "AgentState",
            "agentId": "1",
            "state": {"State": "R"},
            "stateChangeTimeString": "u",
        },
        AgentState("1", "R", "u"),
    ),
    ({"type": "System", "state": {"state": "IN_SERVICE"}}, SystemStatus("IN_SERVICE")),
    # unknown attributes are ignored, empty strings are absent values
    (
        {
            "type": "AgentState",
            "agentId": "1",
            "state": "R",
            "stateChangeTimeString": "",
            "foo": {"a": [1]},
        },
        AgentState("1", "R"),
    ),
]


@pytest.mark.parametrize(("obj", "event"), GUIDE_JSON)
def test_json_golden(impl: ModuleType, obj: dict[str, Any], event: Event) -> None:
    text = json.dumps(obj)
    assert impl.decode_event(text) == event
    assert impl.decode_event(b"  " + text.encode() + b"\r\n") == event


def test_unknown_event_keeps_everything(impl: ModuleType) -> None:
    event = impl.decode_event(b"1001#ReasonCodes#1:Lunch#2:Break\r\n")
    assert event == UnknownEvent(
        "1001", "ReasonCodes", ("1:Lunch", "2:Break"), "1001#ReasonCodes#1:Lunch#2:Break"
    )
    text = '{"type":"ReasonCodes","agentId":7,"codes":[1,2],"args":["a",3]}'
    assert impl.decode_event(text) == UnknownEvent("7", "ReasonCodes", ("a", "3"), text)
    assert impl.decode_event('{"type":"X"}') == UnknownEvent("", "X", (), '{"type":"X"}')


@pytest.mark.parametrize(
    "body",
    [
        "1001#System#IN_SERVICE",
        "1001#Syst___em#IN_SERVICE",
        "1001#SYSTEM",
        "1001#_system_#A#B#C#D#E#F#G",
        "Sys_tem#System#IN_SERVICE",  # '_' is ignored in type names, not in <Event_For>
    ],
)
def test_agent_system_is_unknown(impl: ModuleType, body: str) -> None:
    """Regression (fuzzing): ``System`` is a family, named in the first field; the compiled twin
    used to let an agent's ``System`` type fall through to InboundCall."""
    event_for, event_type, *args = body.split("#")
    assert impl.decode_event(body.encode()) == UnknownEvent(
        event_for, event_type, tuple(args), body
    )


_TYPE_SPELLINGS = [
    spelling
    for name in (
        "System",
        "Terminal",
        "InboundCall",
        "AgentInfo",
        "AgentState",
        "DialogState",
        "Error",
    )
    for spelling in (name, name.upper(), "_".join(name), name[:-1], name + "s")
]


@pytest.mark.skipif(len(IMPLS) < 2, reason="needs the compiled twin")
@pytest.mark.parametrize("event_for", ["1001", "System", "Terminal", "InboundCall", "Sys_tem"])
def test_every_type_spelling_twins_agree(event_for: str) -> None:
    """Differential over every type name x every first field: no spelling may be matched more
    loosely (or dispatched differently) by one twin."""
    for spelling in _TYPE_SPELLINGS:
        for tail in ("", "#A", "#A#B#C#D#E"):
            body = f"{event_for}#{spelling}{tail}".encode()
            outcomes = [_outcome(module, body) for module in IMPLS]
            assert outcomes[0] == outcomes[1], (body, outcomes)


MALFORMED: list[tuple[bytes | str, str]] = [
    (b"", "empty body"),
    (b" \r\n\t", "empty body"),
    (b"IN_SERVICE", "no '#'"),
    (b"System#", "empty event type"),
    (b"1001##READY", "empty event type"),
    (b"#AgentState#READY", "empty <Event_For>"),
    (b"1001#AgentState", "without a state"),
    (b"1001#AgentState##t", "without a state"),
    (b"1001#DialogState", "without a state"),
    (b"1001#InboundCall#", "without a state"),
    (b"1001#Terminal", "without a status"),
    (b"1001#Error", "without a code"),
    (b"1001#Error##msg", "without a code"),
    (b"\xff\xfe#AgentState#READY", "not UTF-8"),
    (b"1001#AgentState#\xc3", "not UTF-8"),
    (b"\xed\xa0\xbd#AgentState#READY", "unpaired"),
    ("\ud83d#AgentState#READY", "unpaired"),
    (b"{", "JSON"),
    (b"{}", "without a 'type'"),
    (b'{"type": ""}', "without a 'type'"),
    (b'{"type": 5}', "JSON"),
    (b'{"type": "AgentState", "agentId": 1.5, "state": "R"}', "JSON"),
    (b'{"type": "AgentState", "agentId": true, "state": "R"}', "JSON"),
    (b'{"type": "AgentState", "agentId": "1", "state": ["R"]}', "JSON"),
    (b'{"type": "AgentState", "state": "R"}', "agentId"),
    (b'{"type": "AgentState", "agentId": "1"}', "state"),
    (b'{"type": "DialogState", "agentId": "1", "participants": {"a": 1}, "state": "A"}', "JSON"),
    (b'{"type": "Error"}', "errorType"),
    (b'{"type": "AgentState", "agentId": "1", "state": {}}', "state"),
    (b'{"type": "AgentState", "agentId": "1", "state": {"state": [1]}}', "JSON"),
    (b'{"type": "System"}', "status"),
    (b'{"type": "System", "status": "x"} trailing', "JSON"),
    (b'{"type": "\\ud800"}', "JSON"),
    (b"[1, 2]", "no '#'"),
    (b"1001#Agent\x00State#READY", "control character in the event type"),
    ("1001#AgentState\x1f#READY", "control character in the event type"),
    (b"System#IN_\x7fSERVICE", "control character in the event type"),
    (b"1001#Error\x00#CODE", "control character in the event type"),
    (b'{"type": "Agent\\u0000State", "agentId": "1", "state": "R"}', "control character"),
    (b"1001#AgentState#READY#" + b"9" * 70_000, "over the limit of 65536"),
    ("1001#AgentState#READY#" + "9" * 70_000, "over the limit of 65536"),
    (b" " * 65_537, "over the limit"),
]


@pytest.mark.parametrize(("body", "why"), MALFORMED)
def test_malformed_raises_protocol_error(impl: ModuleType, body: bytes | str, why: str) -> None:
    with pytest.raises(ProtocolError, match="malformed event") as info:
        impl.decode_event(body)
    assert why in str(info.value)


def test_deeply_nested_json_is_malformed(impl: ModuleType) -> None:
    body = b'{"type": "X", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(ProtocolError, match="JSON"):
        impl.decode_event(body, max_size=len(body))


@pytest.mark.parametrize("container", [bytes, bytearray, memoryview, str])
def test_body_limit_is_inclusive_and_configurable(impl: ModuleType, container: Any) -> None:
    text = "1001#AgentState#READY#2019-09-17 12:46:21"
    body = container(text.encode()) if container is not str else text
    assert impl.decode_event(body, max_size=len(text)) == AgentState(
        "1001", "READY", "2019-09-17 12:46:21"
    )
    with pytest.raises(ProtocolError, match=f"over the limit of {len(text) - 1}"):
        impl.decode_event(body, max_size=len(text) - 1)


def test_default_limit_is_64_kib() -> None:
    assert MAX_EVENT_BODY == _pyevents.MAX_EVENT_BODY == 65_536


@pytest.mark.parametrize("body", [None, 42, 1.5, ["System#IN_SERVICE"]])
def test_wrong_input_type_is_a_protocol_error(impl: ModuleType, body: Any) -> None:
    with pytest.raises(ProtocolError, match="bytes or str"):
        impl.decode_event(body)


def test_many_distinct_recurring_values(impl: ModuleType) -> None:
    """More distinct ids and states than the compiled twin's intern cache has slots."""
    for i in range(6000):
        body = f"{i}#DialogState#S{i % 97}##c{i}#{i + 1},{i % 13}".encode()
        expected = DialogState(str(i), f"S{i % 97}", None, f"c{i}", (str(i + 1), str(i % 13)))
        assert impl.decode_event(body) == expected


# --------------------------------------------------------------------------- CESU-8 repair


def _cesu8(text: str) -> bytes:
    """What ActiveMQ 5.17 (AMQ-8398) sends: each UTF-16 surrogate as its own 3-byte sequence."""
    utf16 = text.encode("utf-16-le")
    units = [utf16[i : i + 2].decode("utf-16-le", "surrogatepass") for i in range(0, len(utf16), 2)]
    return "".join(units).encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("name", ["\U0001f600", "a\U00010348b\u00e9", "\U0010fffd\U0001d11e"])
def test_cesu8_repair(impl: ModuleType, name: str) -> None:
    body = _cesu8(f"{name}#AgentState#READY")
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert impl.decode_event(body) == AgentState(name, "READY")
    json_body = _cesu8(
        json.dumps({"type": "AgentState", "agentId": name, "state": "R"}, ensure_ascii=False)
    )
    assert impl.decode_event(json_body) == AgentState(name, "R")


def test_surrogate_pair_in_str_is_paired(impl: ModuleType) -> None:
    assert impl.decode_event("\ud83d\ude00#AgentState#R") == AgentState("\U0001f600", "R")


# --------------------------------------------------------------------------- encode


@pytest.mark.parametrize(("body", "event"), GUIDE_DEFAULT[:7] + HOUSE_DEFAULT)
def test_encode_default_is_the_house_profile(impl: ModuleType, body: bytes, event: Event) -> None:
    assert impl.encode_event(event).encode() == body


def test_encode_default_middle_none_is_an_empty_field(impl: ModuleType) -> None:
    event = DialogState("1", "A", None, None, ("x",))
    assert impl.encode_event(event) == "1#DialogState#A###x"
    assert impl.encode_event(DialogState("1", "A", None, "c", ())) == "1#DialogState#A##c#"


def test_encode_json_uses_the_guide_names(impl: ModuleType) -> None:
    event = DialogState("42031", "ACTIVE", T, "52129051", ("42032", "32033"))
    assert json.loads(impl.encode_event(event, "json")) == {
        "type": "DialogState",
        "agentId": "42031",
        "state": "ACTIVE",
        "stateChangeTimeString": T,
        "connectionID": "52129051",
        "participants": ["42032", "32033"],
    }
    call = InboundCall("1", "ALERTING", T, "5", "1002")
    assert json.loads(impl.encode_event(call, "json")) == {
        "type": "InboundCall",
        "agentId": "1",
        "state": "ALERTING",
        "startTime": T,
        "connectionID": "5",
        "participants": "1002",
    }
    info = json.loads(impl.encode_event(AgentInfo("1", "1001", "SEP1"), "json"))
    assert info == {"type": "AgentInfo", "agentId": "1", "extension": "1001", "deviceName": "SEP1"}
    error = json.loads(impl.encode_event(ErrorEvent("1", "X", "m"), "json"))
    assert error == {"type": "Error", "agentId": "1", "errorType": "X", "message": "m"}
    assert " " not in impl.encode_event(AgentState("1", "R"), "json")


def test_encode_json_escapes_non_bmp(impl: ModuleType) -> None:
    text = impl.encode_event(AgentState("\U0001f600", "caf\u00e9"), "json")
    assert "\\ud83d\\ude00" in text
    assert "\U0001f600" not in text
    assert impl.decode_event(text.encode()) == AgentState("\U0001f600", "caf\u00e9")


BAD_EVENTS: list[tuple[Event, str, str]] = [
    (AgentState("1#2", "R"), "default", "agent_id"),
    (AgentState("1", "R#"), "default", "'#'"),
    (AgentState("1", "R\r\n"), "default", "control"),
    (AgentState("1", "R\x00"), "default", "control"),
    (AgentState("1", ""), "default", "empty"),
    (AgentState("1", ""), "json", "empty"),
    (AgentState("1", "R", ""), "default", "empty"),
    (DialogState("1", "A", participants=("a,b",)), "default", "','"),
    (DialogState("1", "A", participants=("a,b",)), "json", "','"),
    (DialogState("1", "A", participants=("",)), "default", "empty"),
    (InboundCall("1", "A", other_party="x,y"), "json", "','"),
    (AgentState("System", "R"), "default", "event family"),
    (AgentState("inboundcall", "R"), "default", "event family"),
    (AgentState("{1", "R"), "default", "JSON"),
    (AgentState(" 1", "R"), "default", "whitespace"),
    (AgentState("1", "R", "t "), "default", "whitespace"),
    (SystemStatus("Error"), "default", "Error"),
    (SystemStatus("CiscoTermInServiceEv"), "json", "Terminal"),
    (AgentState("1", None), "default", "required"),  # type: ignore[arg-type]
    (AgentState("1", None), "json", "required"),  # type: ignore[arg-type]
    (UnknownEvent("1", "F#", (), ""), "default", "'#'"),
]


@pytest.mark.parametrize(("event", "fmt", "why"), BAD_EVENTS)
def test_encode_refuses_what_would_not_round_trip(
    impl: ModuleType, event: Event, fmt: str, why: str
) -> None:
    with pytest.raises(ValueError) as info:
        impl.encode_event(event, fmt)
    assert why in str(info.value)


@pytest.mark.parametrize("fmt", ["default", "json"])
def test_encode_refuses_non_text_fields(impl: ModuleType, fmt: str) -> None:
    with pytest.raises(TypeError, match="state"):
        impl.encode_event(AgentState("1", 5), fmt)  # type: ignore[arg-type]


def test_encode_refuses_unknown_format_and_non_events(impl: ModuleType) -> None:
    with pytest.raises(ValueError, match="xml"):
        impl.encode_event(SystemStatus("IN_SERVICE"), "xml")
    with pytest.raises(TypeError):
        impl.encode_event("System#IN_SERVICE")
    with pytest.raises(TypeError):
        impl.encode_event(object(), "json")


def test_unknown_event_is_resent_verbatim(impl: ModuleType) -> None:
    event = impl.decode_event(b"1#Foo#a#b")
    assert impl.encode_event(event) == "1#Foo#a#b"
    assert impl.encode_event(event, "json") == "1#Foo#a#b"
    built = UnknownEvent("1", "Foo", ("a",), "")
    assert impl.encode_event(built) == "1#Foo#a"
    assert json.loads(impl.encode_event(built, "json")) == {
        "type": "Foo",
        "agentId": "1",
        "args": ["a"],
    }


# --------------------------------------------------------------------------- round trips

_WS = " \t\r\n\x0b\x0c"
_field = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="#,"),
    min_size=1,
    max_size=12,
).filter(lambda s: s == s.strip(_WS))
_agent = _field.filter(
    lambda s: not s.startswith("{") and s.lower() not in ("system", "terminal", "inboundcall")
)
_opt = st.none() | _field
_parts = st.none() | st.tuples() | st.lists(_field, min_size=1, max_size=4).map(tuple)
_not_error = _field.filter(lambda s: _pyevents.type_key(s) != "error")

EVENTS = st.one_of(
    st.builds(SystemStatus, _not_error.filter(lambda s: not s.lower().startswith("ciscoterm"))),
    st.builds(TerminalStatus, st.none(), _not_error),
    st.builds(TerminalStatus, _agent, _field),
    st.builds(AgentInfo, _agent, _opt, _opt),
    st.builds(AgentState, _agent, _field, _opt),
    st.builds(DialogState, _agent, _field, _opt, _opt, _parts),
    st.builds(InboundCall, st.none(), _not_error, _opt, _opt, _opt),
    st.builds(InboundCall, _agent, _field, _opt, _opt, _opt),
    st.builds(ErrorEvent, st.just("") | _agent, _field, _opt),
)


@pytest.mark.parametrize("fmt", ["default", "json"])
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=EVENTS)
def test_round_trip(impl: ModuleType, fmt: str, event: Event) -> None:
    text = impl.encode_event(event, fmt)
    assert impl.decode_event(text) == event
    assert impl.decode_event(text.encode("utf-8")) == event


@pytest.mark.parametrize("fmt", ["default", "json"])
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    event_for=_agent,
    event_type=_field.filter(lambda s: _pyevents.type_key(s) not in _pyevents.KNOWN_TYPES),
    args=st.lists(_field, max_size=4).map(tuple),
)
def test_unknown_event_round_trip(
    impl: ModuleType, fmt: str, event_for: str, event_type: str, args: tuple[str, ...]
) -> None:
    first = impl.decode_event(impl.encode_event(UnknownEvent(event_for, event_type, args, ""), fmt))
    assert isinstance(first, UnknownEvent)
    assert (first.event_for, first.event_type, first.args) == (event_for, event_type, args)
    assert impl.decode_event(impl.encode_event(first, fmt)) == first


# --------------------------------------------------------------------------- fuzz

SEEDS: list[bytes] = [body for body, _ in GUIDE_DEFAULT + HOUSE_DEFAULT] + [
    json.dumps(obj).encode() for obj, _ in GUIDE_JSON
]
_INSERTS = [b"#", b"{", b",", b"\xff", b"\xed\xa0\x80", b"\xc3", b"\r\n", b'"', b"}", b"\x00"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    body = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        at = draw(st.integers(0, max(len(body) - 1, 0)))
        if op == "flip" and body:
            body[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del body[at:]
        elif op == "insert":
            body[at:at] = draw(st.sampled_from(_INSERTS))
        elif body:
            del body[at]
    return bytes(body)


FUZZ = st.one_of(
    st.binary(max_size=80),
    mutated(),
    st.text(max_size=40),
    st.text(max_size=40).map(lambda s: "{" + s),
)


def _outcome(module: ModuleType, body: bytes | str) -> Event | type[ProtocolError]:
    try:
        event = module.decode_event(body)
    except ProtocolError:
        return ProtocolError
    assert isinstance(
        event,
        (
            SystemStatus,
            TerminalStatus,
            AgentInfo,
            AgentState,
            DialogState,
            InboundCall,
            ErrorEvent,
            UnknownEvent,
        ),
    )
    return event


@settings(max_examples=1500, deadline=None)
@given(body=FUZZ)
def test_fuzz_twins_agree_and_raise_only_protocol_error(body: bytes | str) -> None:
    """Differential: the same result from both twins, or ProtocolError from both."""
    outcomes = [_outcome(module, body) for module in IMPLS]
    assert all(outcome == outcomes[0] for outcome in outcomes), (body, outcomes)


_KEYS = [
    "type",
    "agentId",
    "state",
    "State",
    "status",
    "stateChangeTimeString",
    "startTime",
    "connectionID",
    "connectionId",
    "Connection",
    "participants",
    "otherParticipants",
    "otherParty",
    "extension",
    "deviceName",
    "errorType",
    "message",
    "args",
    "other",
]
_TYPES = ["System", "Terminal", "AgentInfo", "AGENT_STATE", "DialogState", "InboundCall", "Error"]
_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from([*_TYPES, "CiscoTermInServiceEv", ""])
)
_VALUE = st.recursive(
    _LEAF,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=3)
    ),
    max_leaves=6,
)


_SCALAR = (
    st.none() | st.integers(-(2**63), 2**63) | st.text(max_size=6) | st.sampled_from(["", "x,y"])
)
# mostly scalars, so that many objects decode and the normalisation itself is compared
_ATTR = st.sampled_from([_SCALAR] * 6 + [st.lists(_SCALAR, max_size=3), _VALUE]).flatmap(
    lambda x: x
)
_KIND = st.sampled_from([*_TYPES, "agent_info", "ReasonCodes", "", "\u00e9"])


@settings(max_examples=1000, deadline=None)
@given(
    base=st.fixed_dictionaries({"type": _KIND, "agentId": _SCALAR, "state": _SCALAR}),
    extra=st.dictionaries(st.sampled_from(_KEYS), _ATTR, max_size=5),
)
def test_json_objects_twins_agree(base: dict[str, Any], extra: dict[str, Any]) -> None:
    """Structured JSON fuzz: every alias with every JSON value type, both twins alike."""
    text = json.dumps(base | extra)
    outcomes = [_outcome(module, text) for module in IMPLS]
    assert all(outcome == outcomes[0] for outcome in outcomes), (text, outcomes)


@settings(max_examples=300, deadline=None)
@given(event=EVENTS, fmt=st.sampled_from(["default", "json"]))
def test_twins_encode_identically(event: Event, fmt: str) -> None:
    assert len({module.encode_event(event, fmt) for module in IMPLS}) == 1


_ANY_TEXT = st.text(max_size=6) | st.sampled_from(
    ["System", "terminal", "INBOUNDCALL", "Error", "e_rror", "{x", " x", "x ", "a,b", "a#b", "\x7f"]
)
_ANY_OPT = st.none() | _ANY_TEXT | st.integers(0, 9)
_ANY_PARTS = st.none() | st.lists(_ANY_OPT, max_size=3).map(tuple) | st.lists(_ANY_TEXT, max_size=2)
ANY_EVENTS = st.one_of(
    st.builds(SystemStatus, _ANY_OPT),
    st.builds(TerminalStatus, _ANY_OPT, _ANY_OPT),
    st.builds(AgentInfo, _ANY_OPT, _ANY_OPT, _ANY_OPT),
    st.builds(AgentState, _ANY_OPT, _ANY_OPT, _ANY_OPT),
    st.builds(DialogState, _ANY_OPT, _ANY_OPT, _ANY_OPT, _ANY_OPT, _ANY_PARTS),
    st.builds(InboundCall, _ANY_OPT, _ANY_OPT, _ANY_OPT, _ANY_OPT, _ANY_OPT),
    st.builds(ErrorEvent, _ANY_OPT, _ANY_OPT, _ANY_OPT),
)


def _encoded(module: ModuleType, event: Event, fmt: str) -> str | tuple[str, str]:
    try:
        return str(module.encode_event(event, fmt))
    except (ValueError, TypeError) as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=1500, deadline=None)
@given(event=ANY_EVENTS, fmt=st.sampled_from(["default", "json"]))
def test_twins_encode_any_event_alike(event: Event, fmt: str) -> None:
    """Valid or not (wrong types, forbidden characters...): same text or the same error."""
    outcomes = [_encoded(module, event, fmt) for module in IMPLS]
    assert all(outcome == outcomes[0] for outcome in outcomes), (event, outcomes)


def test_cython_twin_is_really_compiled() -> None:
    if _CEVENTS is None:
        pytest.skip("extension not built and CUCMCONN_NO_EXTENSIONS is set")
    assert _CEVENTS.__file__ is not None
    assert not _CEVENTS.__file__.endswith(".py")


@settings(max_examples=300, deadline=None)
@given(body=FUZZ, limit=st.integers(0, 90))
def test_fuzz_twins_agree_on_the_body_limit(body: bytes | str, limit: int) -> None:
    """The limit and the control-character rule are applied alike by both twins."""
    outcomes = []
    for module in IMPLS:
        try:
            outcomes.append(module.decode_event(body, max_size=limit))
        except ProtocolError as exc:
            outcomes.append(str(exc) if "limit" in str(exc) else ProtocolError)
    assert all(outcome == outcomes[0] for outcome in outcomes), (body, limit, outcomes)
