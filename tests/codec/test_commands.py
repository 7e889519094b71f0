"""Commands: exact wire spellings, aliases, injection refusal, and the emulator-side parser."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cucmconn.codec import COMMANDS, commands, encode_command, extensions_disabled
from cucmconn.codec.commands import (
    ALIASES,
    PROBES,
    canonical_command,
    is_probe,
    parse_command,
)
from cucmconn.errors import ProtocolError

GUIDE_SPELLINGS = [
    "Hello",
    "Beat",
    "Login",
    "Logout",
    "MakeCall",
    "AnswerCall",
    "ReleaseCall",
    "HoldCall",
    "RetrieveCall",
    "Transfer_sst",
    "ConsultCall",
    "TransferCall",
    "Conferencecall",
    "GetState",
]
GC4_SPELLINGS = [
    "Connect",
    "MakeReady",
    "MakeNotReady",
    "MakeNotReadyWithReason",
    "MobileAgentLogin",
]


def test_commands_are_exactly_the_documented_spellings() -> None:
    assert set(COMMANDS) == set(GUIDE_SPELLINGS + GC4_SPELLINGS)
    assert {name for name, spec in COMMANDS.items() if spec.source == "guide"} == set(
        GUIDE_SPELLINGS
    )
    assert all(spec.name == name for name, spec in COMMANDS.items())
    assert {name for name, spec in COMMANDS.items() if spec.target == "destination"} == {
        "Hello",
        "Beat",
    }


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("conferencecall", "Conferencecall"),
        ("ConferenceCall", "Conferencecall"),
        ("CONFERENCECALL", "Conferencecall"),
        ("BlindTransfer", "Transfer_sst"),
        ("transfer_sst", "Transfer_sst"),
        ("CosultCall", "ConsultCall"),
        ("answercall", "AnswerCall"),
        ("getstate", "GetState"),
        ("hello", "Hello"),
    ],
)
def test_aliases_are_case_insensitive(alias: str, canonical: str) -> None:
    assert canonical_command(alias) == canonical
    assert encode_command(alias, "1001")[0] == f"{canonical}#1001"


def test_every_alias_maps_to_a_command() -> None:
    assert set(ALIASES.values()) <= set(COMMANDS)
    assert all(key == key.lower() for key in ALIASES)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("Hello", "client-topic-1"), ("Hello#client-topic-1", "")),
        (("Login", "1001", "client-topic-1"), ("Login#1001", "client-topic-1")),
        (("AnswerCall", "1001", "52129051"), ("AnswerCall#1001", "52129051")),
        (("AnswerCall", "1001", 52129051), ("AnswerCall#1001", "52129051")),
        (("BlindTransfer", "1001", "1002", "52129051"), ("Transfer_sst#1001", "1002,52129051")),
        (("GetState", "1001"), ("GetState#1001", "")),
        (("SomeFutureCommand", "1001", "x"), ("SomeFutureCommand#1001", "x")),
    ],
)
def test_encode_command(args: tuple[str, ...], expected: tuple[str, str]) -> None:
    assert encode_command(*args) == expected


FORBIDDEN = [",", "#", "|", "\r", "\n", "\x00", "\x1b", "\x7f", "\x85"]


@pytest.mark.parametrize("char", FORBIDDEN)
def test_argument_injection_refused_naming_the_field(char: str) -> None:
    value = f"a{char}b"
    with pytest.raises(ValueError, match="argument 2") as info:
        encode_command("ConsultCall", "1001", "1002", value)
    assert "argument 2" in str(info.value)


@pytest.mark.parametrize("char", FORBIDDEN)
def test_target_injection_refused(char: str) -> None:
    with pytest.raises(ValueError, match="target"):
        encode_command("GetState", f"10{char}01")


def test_message_names_the_value_and_character() -> None:
    with pytest.raises(ValueError, match=r"argument 2 \('a,b'\) contains ','"):
        encode_command("ConsultCall", "1001", "1002", "a,b")
    with pytest.raises(ValueError, match="control character U\\+000A"):
        encode_command("MakeCall", "1001", "1002\n")


@pytest.mark.parametrize("name", ["Login", "Connect", "MobileAgentLogin", "mobileagentlogin"])
def test_log_in_arguments_are_never_echoed(name: str) -> None:
    with pytest.raises(ValueError) as info:
        encode_command(name, "1001", "pa,ss", "1002", "555", "true")
    assert "pa,ss" not in str(info.value)
    assert "argument 1 (<redacted>)" in str(info.value)


@pytest.mark.parametrize("target", ["", " ", "\t"])
def test_empty_target_refused(target: str) -> None:
    with pytest.raises(ValueError, match="target"):
        encode_command("GetState", target)


@pytest.mark.parametrize("name", ["", "Get State", "Get#State", "Login,", "Lögin", "a-b"])
def test_bad_command_names_refused(name: str) -> None:
    with pytest.raises(ValueError, match="command name"):
        encode_command(name, "1001")


def test_empty_and_non_text_arguments_refused() -> None:
    with pytest.raises(ValueError, match="argument 1"):
        encode_command("MakeCall", "1001", "")
    with pytest.raises(TypeError, match="argument 1"):
        encode_command("MakeCall", "1001", None)
    with pytest.raises(TypeError, match="argument 1"):
        encode_command("MakeCall", "1001", True)


@pytest.mark.parametrize("blank", [" ", "\t", "  ", "\u3000"])
@pytest.mark.parametrize("position", [1, 2])
def test_blank_argument_refused(blank: str, position: int) -> None:
    """Regression (fuzzing): the receiver trims fields, so a whitespace-only argument would
    arrive empty, or vanish when it is the only one; refused like an empty one."""
    args = ["1002", "52"]
    args[position - 1] = blank
    with pytest.raises(ValueError, match=f"argument {position} .* is blank"):
        encode_command("Transfer_sst", "1001", *args)
    with pytest.raises(ValueError, match=r"argument 1 \(<redacted>\) is blank"):
        encode_command("Login", "1001", blank)
    assert parse_command(*encode_command("Transfer_sst", "1001", " 1002", "52"))[2] == (
        "1002",
        "52",
    )  # a value around which there is space is still sent (the receiver trims it)


@pytest.mark.parametrize(
    ("jms_type", "body", "expected"),
    [
        ("AnswerCall# 1001", "52129051", ("AnswerCall", "1001", ("52129051",))),
        ("answercall#1001", " 52 ", ("AnswerCall", "1001", ("52",))),
        ("conferencecall#1001", "52", ("Conferencecall", "1001", ("52",))),
        ("Transfer_sst#1001", "1002, 52", ("Transfer_sst", "1001", ("1002", "52"))),
        ("Hello#topic-1", "", ("Hello", "topic-1", ())),
        ("Logout#1001", "  ", ("Logout", "1001", ())),
        ("Future#1001", "x", ("Future", "1001", ("x",))),
    ],
)
def test_parse_command(
    jms_type: str, body: str, expected: tuple[str, str, tuple[str, ...]]
) -> None:
    assert parse_command(jms_type, body) == expected


@pytest.mark.parametrize(
    ("jms_type", "body"),
    [
        ("", ""),
        ("Login", "x"),
        ("Login#", "x"),
        ("Login# ", "x"),
        ("#1001", ""),
        ("Log in#1001", ""),
        ("Login#10#01", ""),
        ("Login#1001", "a|b"),
        ("Login#1001", "a\x00b"),
        ("Login#10|01", ""),
    ],
)
def test_parse_command_malformed(jms_type: str, body: str) -> None:
    with pytest.raises(ProtocolError):
        parse_command(jms_type, body)


def test_parse_command_rejects_non_text() -> None:
    with pytest.raises(ProtocolError):
        parse_command(None, "")  # type: ignore[arg-type]


_value = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=",#|"),
    min_size=1,
    max_size=10,
).filter(lambda s: s.strip() == s and s.strip() != "")


@given(name=st.sampled_from(sorted(COMMANDS)), target=_value, args=st.lists(_value, max_size=4))
def test_encode_then_parse_round_trip(name: str, target: str, args: list[str]) -> None:
    jms_type, body = encode_command(name, target, *args)
    assert parse_command(jms_type, body) == (name, target, tuple(args))


def test_probes_come_from_the_table() -> None:
    """Hello and Beat are the probes because the table addresses them to a destination."""
    assert {"Hello", "Beat"} == PROBES
    assert all(COMMANDS[name].is_probe for name in PROBES)
    assert not any(spec.is_probe for name, spec in COMMANDS.items() if name not in PROBES)
    assert is_probe("hello") and is_probe(" BEAT ") and is_probe("Hello")
    assert not is_probe("Login") and not is_probe("GetState") and not is_probe("Nonsense")


# -- the compiled twin (_ccommands) agrees with the pure functions on every input ---------------

_NO_EXT = extensions_disabled()


def _compiled() -> ModuleType:
    if _NO_EXT:
        pytest.skip("CUCMCONN_NO_EXTENSIONS is set: compiled twin not under test")
    return importlib.import_module("cucmconn.codec._ccommands")


def _outcome(function: Callable[..., object], *args: object) -> object:
    """What a call returns, or the type and message of what it raises (compared across twins)."""
    try:
        return function(*args)
    except Exception as exc:  # every failure is compared, not handled
        return (type(exc), str(exc))


def _agree(name: str, *args: object) -> None:
    compiled = getattr(_compiled(), name)
    pure = getattr(commands, name)
    assert _outcome(compiled, *args) == _outcome(pure, *args), (name, args)


# Characters the fast path must hand to the pure function: every forbidden one, whitespace
# (trimmed or blank), non-ASCII, and the ASCII a well-formed command is made of.
_FIELD_CHARS = st.sampled_from(
    list("0123456789abcXYZ_-. ,#|\t\n\r\x00\x1b\x1f\x7f\x85\x9f\xa0é\u3000\U0001f600")
)
_FIELD = st.text(_FIELD_CHARS, max_size=8)
_NAMES = st.one_of(
    st.sampled_from(sorted(COMMANDS) + sorted(ALIASES) + ["getSTATE", "Future_1", "Lögin"]),
    _FIELD,
)
_ARG = st.one_of(_FIELD, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))


@given(name=_NAMES)
def test_twins_agree_on_canonical_command(name: str) -> None:
    _agree("canonical_command", name)


@given(name=_NAMES, target=st.one_of(_FIELD, st.integers()), args=st.lists(_ARG, max_size=4))
def test_twins_agree_on_encode_command(name: str, target: object, args: list[object]) -> None:
    _agree("encode_command", name, target, *args)


@given(name=_NAMES, target=_FIELD, body=st.text(_FIELD_CHARS, max_size=16))
def test_twins_agree_on_parse_command(name: str, target: str, body: str) -> None:
    _agree("parse_command", f"{name}#{target}", body)
    _agree("parse_command", f"{name}{target}", body)  # usually no '#' at all


@pytest.mark.parametrize("value", [None, 1001, b"GetState#1001", str])
def test_twins_agree_on_non_text(value: object) -> None:
    _agree("canonical_command", value)
    _agree("encode_command", value, "1001")
    _agree("encode_command", "GetState", value)
    _agree("parse_command", value, "")
    _agree("parse_command", "GetState#1001", value)


def test_twins_agree_on_the_documented_cases() -> None:
    """Every explicit case above, through both twins (a str subclass takes the slow path)."""

    class Text(str):
        pass

    for name in GUIDE_SPELLINGS + GC4_SPELLINGS + ["BlindTransfer", "Text", "Get State", ""]:
        _agree("canonical_command", name)
        _agree("encode_command", name, "1001", "1002", 52129051)
        _agree("encode_command", Text(name), Text("1001"), Text("x"))
    for jms_type, body in [
        ("AnswerCall# 1001", "52129051"),
        ("Transfer_sst#1001", "1002, 52"),
        ("Transfer_sst#1001", "1002,,52"),
        ("Transfer_sst#1001", ","),
        ("Logout#1001", "  "),
        ("Login#10#01", ""),
        ("Login#", "x"),
        ("#1001", ""),
        ("GetState#1001", "a\x00b"),
    ]:
        _agree("parse_command", jms_type, body)
