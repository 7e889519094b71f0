"""The sans-IO codec: events, commands and STOMP frames; bytes in, objects out, bytes to send.

This is the single binding point between the Cython modules (``_cevents``, ``_cstomp``,
``_ccommands``, built from the ``.pyx`` files beside this one) and their pure-Python twins
(``_pyevents``, ``_pystomp``, the functions in ``commands``).  The compiled modules are used
unless ``CUCMCONN_NO_EXTENSIONS`` is set or they were not built (or do not load); then importing
warns once (a ``RuntimeWarning`` naming the reason and the fix), since pip hides the build's own
warning.
Nothing in here does I/O, reads a clock or starts a task.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Protocol

from ..errorcodes import ERROR_CODES, ErrorInfo, lookup
from . import _pyevents, _pystomp, commands
from .commands import COMMANDS
from .events import (
    AgentInfo,
    AgentState,
    AgentStatus,
    CallStatus,
    DialogState,
    ErrorEvent,
    Event,
    InboundCall,
    ServiceStatus,
    SystemStatus,
    TerminalStatus,
    UnknownEvent,
)

__all__ = [
    "COMMANDS",
    "ERROR_CODES",
    "MAX_EVENT_BODY",
    "AgentInfo",
    "AgentState",
    "AgentStatus",
    "CallStatus",
    "DialogState",
    "ErrorEvent",
    "ErrorInfo",
    "Event",
    "Frame",
    "FrameError",
    "FrameParser",
    "InboundCall",
    "ServiceStatus",
    "SystemStatus",
    "TerminalStatus",
    "UnknownEvent",
    "canonical_command",
    "codec_backend",
    "decode_event",
    "decode_message",
    "encode_command",
    "encode_event",
    "encode_frame",
    "extensions_disabled",
    "lookup",
    "parse_command",
]


def extensions_disabled() -> bool:
    """True when ``CUCMCONN_NO_EXTENSIONS`` asks for the pure-Python twins (tests, debugging)."""
    return os.environ.get("CUCMCONN_NO_EXTENSIONS", "") not in ("", "0")


_COMPILED = ("_ccommands", "_cevents", "_cstomp")
_PURE_ADVICE = (
    "using the pure-Python codec, which is several times slower. Build it with "
    "`pip install -e .` in a source tree (or reinstall cucmconn) with Cython and a C compiler, "
    "or set CUCMCONN_NO_EXTENSIONS=1 to choose the pure codec knowingly."
)


def _not_built() -> list[str]:
    """The compiled modules absent beside this package: not built (a source tree without a
    build, or an install without a compiler).  Asked before importing them, because importing
    a missing submodule of a package still being imported fails with Python's misleading
    "partially initialized module ... circular import" message."""
    missing = []
    for name in _COMPILED:
        try:
            spec = importlib.util.find_spec(f"{__name__}.{name}")
        except ImportError:
            spec = None
        if spec is None:
            missing.append(name)
    return missing


def _warn_pure(reason: str) -> None:
    warnings.warn(f"cucmconn: {reason}; {_PURE_ADVICE}", RuntimeWarning, stacklevel=3)


_events: ModuleType = _pyevents
_stomp: ModuleType = _pystomp
_commands: ModuleType = commands
_backend = "python"
if not extensions_disabled():
    _missing = _not_built()
    if _missing:
        _warn_pure(
            f"the compiled codec is not built ({', '.join(_missing)} missing from "
            f"{os.path.dirname(__file__)})"
        )
    else:
        try:
            from . import _ccommands, _cevents, _cstomp
        except ImportError as exc:  # built, but will not load (another Python's build, say)
            _warn_pure(f"the compiled codec is built but does not load ({exc})")
        else:
            _events, _stomp, _commands, _backend = _cevents, _cstomp, _ccommands, "cython"


def codec_backend() -> str:
    """``"cython"`` when the compiled codec is in use, else ``"python"``."""
    return _backend


# --- events (owner: event codec) ---
class _DecodeEvent(Protocol):
    def __call__(
        self, body: bytes | bytearray | memoryview | str, max_size: int = ...
    ) -> Event: ...


MAX_EVENT_BODY: int = _pyevents.MAX_EVENT_BODY
"""``decode_event``'s default input limit (64 KiB); a longer body is malformed."""
decode_event: _DecodeEvent = _events.decode_event
encode_event: Callable[..., str] = _events.encode_event

# --- STOMP frames (owner: frame codec) ---
Frame = _pystomp.Frame
# Typed as the twin's class: the compiled one has the same API (see _cstomp.pyi).
FrameParser: type[_pystomp.FrameParser] = _stomp.FrameParser
encode_frame: Callable[..., bytes] = _stomp.encode_frame
FrameError = _pystomp.FrameError  # a ProtocolError; .frames = good frames before the bad one
# MESSAGE frame bytes -> (correlation id, Event), in one pass
decode_message: Callable[[bytes | bytearray | memoryview], tuple[str | None, Event]] = (
    _stomp.decode_message
)

# --- commands (the JMSType/body pair; the table stays in ``commands``) ---
encode_command: Callable[..., tuple[str, str]] = _commands.encode_command
parse_command: Callable[[str, str], tuple[str, str, tuple[str, ...]]] = _commands.parse_command
canonical_command: Callable[[str], str] = _commands.canonical_command
