"""Every error code the connector can answer with, and what a client is expected to do about it.

The vendor's guide gives each code an origin, a summary and an "Expected Client's Behaviour";
keeping that beside the code lets ``CommandError`` tell an application whether to retry, ask the
agent for another extension or credentials, or just display the error, without a table of its
own.  The set is open: ``lookup`` answers any code (a newer connector may invent some) and never
raises, because it runs while an error is being reported.

Where the guide's rows are copy-paste slips (INVALID_PARTY, PRIVILLEGE_VIOLATION and
LICENSES_EXCEEDED repeat PLEASE_RETRY's summary and "send the request again"), ``summary`` is
taken from the code's own description and ``action``/``retriable`` from what can work: retrying
an invalid party, a missing permission or an exhausted licence pool cannot succeed.  ``advice``
keeps the guide's text verbatim.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, TypeAlias

import msgspec

__all__ = ["ERROR_CODES", "Action", "ErrorInfo", "lookup"]

Action: TypeAlias = Literal["retry", "ask_extension", "ask_credentials", "display"]


class ErrorInfo(msgspec.Struct, frozen=True, gc=False):
    """What the guide says about one error code."""

    code: str
    origin: str
    summary: str
    advice: str
    action: Action
    retriable: bool


_ASK_EXT = (
    "Display the error message and ask the user to enter valid Extension. Send the request again."
)
_ASK_CRED = (
    "Display the error message and ask the user to enter valid credentials. Send the request again."
)
_DISPLAY_RETRY = "Display the error message and send the request again."
_RETRY = "Send the request again."
_CC = "CUCM Connector"
_GC = "Generic Connector"
_CUCM = "CUCM"

_PRIVILEGE_SUMMARY = (
    "The application does not have the security permissions to execute that command on the object."
)

_TABLE: tuple[ErrorInfo, ...] = (
    ErrorInfo(
        "MISSING_EXTENSION",
        _CC,
        "The extension is missing in the request.",
        _ASK_EXT,
        "ask_extension",
        False,
    ),
    ErrorInfo(
        "WRONG_EXTENSION",
        _GC,
        "Extension is not valid (contains alphabetic characters).",
        _ASK_EXT,
        "ask_extension",
        False,
    ),
    ErrorInfo(
        "USER_NOT_FOUND",
        _CUCM,
        "Agent extension isn't found in CUCM.",
        _ASK_CRED,
        "ask_credentials",
        False,
    ),
    ErrorInfo(
        "GENERAL_ERROR",
        _CUCM,
        "The root cause of the error is unclear (sent only for Login).",
        _DISPLAY_RETRY,
        "retry",
        True,
    ),
    ErrorInfo(
        "CF_GENERIC_UNSPECIFIED",
        _CUCM,
        "The root cause of the error is unclear. No specific details are available.",
        _DISPLAY_RETRY,
        "retry",
        True,
    ),
    ErrorInfo(
        "CF_INVALID_OBJECT_STATE",
        _CUCM,
        "The object is in the incorrect state for the request.",
        _RETRY,
        "retry",
        True,
    ),
    ErrorInfo(
        "PLEASE_RETRY",
        _CC,
        "Invalid request params, IOException, request timeout.",
        _RETRY,
        "retry",
        True,
    ),
    ErrorInfo(
        "INVALID_PARTY",
        _CC,
        "A party given as an argument (the originating or the destination party) was invalid.",
        _RETRY,
        "display",
        False,
    ),
    ErrorInfo("PRIVILLEGE_VIOLATION", _CC, _PRIVILEGE_SUMMARY, _RETRY, "display", False),
    ErrorInfo("PREVILLEGE_VIOLATION", _CC, _PRIVILEGE_SUMMARY, _RETRY, "display", False),
    ErrorInfo(
        "LICENSES_EXCEEDED",
        _CC,
        "The client has crossed the maximum number of licensed agents (or licences expired).",
        _RETRY,
        "display",
        False,
    ),
    # Generic Connector 4.x additions (not in the CUCM guide).
    ErrorInfo(
        "MISSING_PASSWORD",
        _GC,
        "The password is missing in the request.",
        _ASK_CRED,
        "ask_credentials",
        False,
    ),
    ErrorInfo(
        "CF_INVALID_LOGON_DEVICE_SPECIFIED",
        _CUCM,
        "The device (extension) given for the login is not valid for this agent.",
        _ASK_EXT,
        "ask_extension",
        False,
    ),
    ErrorInfo(
        "CF_RESOURCE_BUSY",
        _CUCM,
        "The resource is busy with another request.",
        _RETRY,
        "retry",
        True,
    ),
)

ERROR_CODES: Mapping[str, ErrorInfo] = MappingProxyType({info.code: info for info in _TABLE})
"""Every documented code, keyed by its exact spelling (both PRIVILLEGE/PREVILLEGE included)."""

_BY_UPPER: dict[str, ErrorInfo] = {code.upper(): info for code, info in ERROR_CODES.items()}


def lookup(code: object) -> ErrorInfo:
    """The entry for ``code`` (case-insensitive); an unknown code gets a generic "display" entry.

    Accepts any object and never raises, because it is called while reporting another error.
    """
    try:
        text = code if isinstance(code, str) else str(code)
    except Exception:  # a broken __str__ must not mask the error being reported
        text = "<unprintable>"
    key = text.strip().upper()
    info = _BY_UPPER.get(key)
    if info is not None:
        return info
    return ErrorInfo(
        code=text,
        origin="unknown",
        summary=f"Unknown error code {text!r} (not in the connector's guide).",
        advice="Display the error message.",
        action="display",
        retriable=False,
    )
