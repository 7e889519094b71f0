"""Commands: the JMSType/body pair a client sends to the connector's queue.

Wire format (developer guide, "Command Pattern"; docs/protocol.md "Commands")::

    JMSType  <Command>#<target>        target = agent extension, or client destination (Hello/Beat)
    body     arg1,arg2,...,argN        or the empty string (never the text "NULL")

The format has no quoting, so a value holding ``,``, ``#`` or ``|`` (or a control character, which
a JMS/STOMP hop may mangle) would inject fields into another command.  Nothing here escapes: every
value is checked and refused before anything is sent, with the offending field named.  The guide
spells some commands oddly (``Conferencecall``, ``Transfer_sst``); ``COMMANDS`` keeps those exact
spellings and the alias table maps friendlier or case-mangled names onto them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

import msgspec

from ..errors import ProtocolError

__all__ = [
    "ALIASES",
    "COMMANDS",
    "PROBES",
    "CommandSpec",
    "canonical_command",
    "encode_command",
    "is_probe",
    "parse_command",
]


class CommandSpec(msgspec.Struct, frozen=True, gc=False):
    """One command: its exact wire spelling, what its target is and its arguments (informative)."""

    name: str
    target: Literal["agent", "destination"]
    args: tuple[str, ...]
    source: Literal["guide", "gc4"] = "guide"
    echo_args: bool = True
    """False for log-in commands, whose arguments may hold a password: never shown in errors."""

    @property
    def is_probe(self) -> bool:
        """A session probe (Hello, Beat): addressed to the client's own destination, answered
        with the connector's status, and the only commands served while CUCM is out of service.
        """
        return self.target == "destination"


_SPECS: tuple[CommandSpec, ...] = (
    CommandSpec("Hello", "destination", ()),
    CommandSpec("Beat", "destination", ()),
    CommandSpec("Login", "agent", ("client_destination",), echo_args=False),
    CommandSpec("Logout", "agent", ()),
    CommandSpec("MakeCall", "agent", ("other_extension",)),
    CommandSpec("AnswerCall", "agent", ("connection_id",)),
    CommandSpec("ReleaseCall", "agent", ("connection_id",)),
    CommandSpec("HoldCall", "agent", ("connection_id",)),
    CommandSpec("RetrieveCall", "agent", ("connection_id",)),
    CommandSpec("Transfer_sst", "agent", ("other_extension", "connection_id")),
    CommandSpec("ConsultCall", "agent", ("other_extension", "connection_id")),
    CommandSpec("TransferCall", "agent", ("connection_id",)),
    CommandSpec("Conferencecall", "agent", ("connection_id",)),
    CommandSpec("GetState", "agent", ()),
    # Generic Connector 4.x; not in the CUCM guide, arguments passed through unchecked in number.
    CommandSpec("Connect", "agent", (), "gc4", echo_args=False),
    CommandSpec("MakeReady", "agent", (), "gc4"),
    CommandSpec("MakeNotReady", "agent", (), "gc4"),
    CommandSpec("MakeNotReadyWithReason", "agent", ("reason_code",), "gc4"),
    CommandSpec(
        "MobileAgentLogin",
        "agent",
        ("password", "extension", "dial_number", "connection_mode"),
        "gc4",
        echo_args=False,
    ),
)

COMMANDS: Mapping[str, CommandSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})
"""Canonical wire spelling -> spec, exactly as the guide / protocol notes send them."""

_EXTRA_ALIASES = {
    "BlindTransfer": "Transfer_sst",
    "SingleStepTransfer": "Transfer_sst",
    "ConferenceCall": "Conferencecall",
    "Conference": "Conferencecall",
    "CosultCall": "ConsultCall",  # the guide's own typo
    "ConsultTransfer": "TransferCall",
    "Answer": "AnswerCall",
    "Release": "ReleaseCall",
    "Hold": "HoldCall",
    "Retrieve": "RetrieveCall",
}

ALIASES: Mapping[str, str] = MappingProxyType(
    {name.lower(): name for name in COMMANDS}
    | {alias.lower(): name for alias, name in _EXTRA_ALIASES.items()}
)
"""Lower-cased name or alias -> canonical spelling (lookups are case-insensitive)."""

PROBES: frozenset[str] = frozenset(name for name, spec in COMMANDS.items() if spec.is_probe)
"""Canonical names of the session probes (``Hello``, ``Beat``), taken from the table."""


def is_probe(name: str) -> bool:
    """Is ``name`` (any case, spaces around it, or an alias) a session probe?"""
    return ALIASES.get(name.strip().lower()) in PROBES


_NAME_RE = re.compile(r"[A-Za-z0-9_]+")
_BAD_RE = re.compile(r"[,#|\x00-\x1f\x7f-\x9f]")


def canonical_command(name: str) -> str:
    """The wire spelling for ``name``: an alias maps to its command, an unknown identifier stays.

    Unknown names pass so ``client.send()`` can reach commands this table does not model.
    """
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        raise ValueError(f"command name {name!r} must be letters, digits or '_'")
    return ALIASES.get(name.lower(), name)


def _describe(char: str) -> str:
    return repr(char) if char.isprintable() else f"control character U+{ord(char):04X}"


def _check_value(field: str, value: str, shown: str) -> None:
    bad = _BAD_RE.search(value)
    if bad is not None:
        raise ValueError(f"{field} ({shown}) contains {_describe(bad.group())}")


def _as_text(field: str, value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"{field} must be str or int, not {type(value).__name__}")


def encode_command(name: str, target: str, *args: str | int) -> tuple[str, str]:
    """``(JMSType, body)`` for one command; refuses any value that would inject a field."""
    command = canonical_command(name)
    target = _as_text("target", target)
    if not target.strip():
        raise ValueError(f"target {target!r} is empty")
    _check_value("target", target, repr(target))
    spec = COMMANDS.get(command)
    echo = spec.echo_args if spec is not None else True
    texts: list[str] = []
    for position, arg in enumerate(args, 1):
        field = f"argument {position}"
        text = _as_text(field, arg)
        shown = repr(text) if echo else "<redacted>"
        if not text.strip():
            # The connector trims every field, so a blank argument would arrive empty or vanish.
            raise ValueError(f"{field} ({shown}) is {'blank' if text else 'empty'}")
        _check_value(field, text, shown)
        texts.append(text)
    return f"{command}#{target}", ",".join(texts)


def parse_command(jms_type: str, body: str) -> tuple[str, str, tuple[str, ...]]:
    """The emulator's side: ``(command, target, args)`` from a received JMSType and body.

    Tolerant like the connector: names match case-insensitively and spaces around fields are
    trimmed (the guide itself writes ``AnswerCall# <id>``).  Anything else malformed raises
    ``ProtocolError``.
    """
    if not isinstance(jms_type, str) or not isinstance(body, str):
        raise ProtocolError("command JMSType and body must be text")
    parts = jms_type.split("#")
    if len(parts) != 2:
        raise ProtocolError(f"command JMSType {jms_type!r} is not '<Command>#<target>'")
    raw_name, raw_target = parts[0].strip(), parts[1].strip()
    if _NAME_RE.fullmatch(raw_name) is None:
        raise ProtocolError(f"command name {raw_name!r} in {jms_type!r} is not an identifier")
    if not raw_target:
        raise ProtocolError(f"command JMSType {jms_type!r} has an empty target")
    if _BAD_RE.search(raw_target):
        raise ProtocolError(f"command target {raw_target!r} holds a forbidden character")
    stripped = body.strip()
    if not stripped:
        return ALIASES.get(raw_name.lower(), raw_name), raw_target, ()
    args = tuple(arg.strip() for arg in stripped.split(","))
    for position, arg in enumerate(args, 1):
        if _BAD_RE.search(arg):
            raise ProtocolError(f"command argument {position} holds a forbidden character")
    return ALIASES.get(raw_name.lower(), raw_name), raw_target, args
