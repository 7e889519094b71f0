"""Error codes: every code of the guide and GC 4.x with its client action; lookup never raises."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cucmconn.codec import ERROR_CODES, ErrorInfo, lookup
from cucmconn.errors import CommandError

GUIDE = [
    "MISSING_EXTENSION",
    "WRONG_EXTENSION",
    "USER_NOT_FOUND",
    "GENERAL_ERROR",
    "CF_GENERIC_UNSPECIFIED",
    "CF_INVALID_OBJECT_STATE",
    "PLEASE_RETRY",
    "INVALID_PARTY",
    "PRIVILLEGE_VIOLATION",
    "PREVILLEGE_VIOLATION",
    "LICENSES_EXCEEDED",
]
GC4 = ["MISSING_PASSWORD", "CF_INVALID_LOGON_DEVICE_SPECIFIED", "CF_RESOURCE_BUSY"]
ACTIONS = {"retry", "ask_extension", "ask_credentials", "display"}


def test_every_documented_code_is_present() -> None:
    assert set(ERROR_CODES) == set(GUIDE + GC4)


@pytest.mark.parametrize("code", GUIDE + GC4)
def test_entries_are_complete(code: str) -> None:
    info = ERROR_CODES[code]
    assert info.code == code
    assert info.action in ACTIONS
    assert info.origin and info.summary and info.advice
    assert info.retriable == (info.action == "retry")


@pytest.mark.parametrize(
    ("code", "action"),
    [
        ("MISSING_EXTENSION", "ask_extension"),
        ("WRONG_EXTENSION", "ask_extension"),
        ("USER_NOT_FOUND", "ask_credentials"),
        ("MISSING_PASSWORD", "ask_credentials"),
        ("PLEASE_RETRY", "retry"),
        ("CF_INVALID_OBJECT_STATE", "retry"),
        ("LICENSES_EXCEEDED", "display"),
        ("INVALID_PARTY", "display"),
    ],
)
def test_actions_follow_the_guide(code: str, action: str) -> None:
    assert ERROR_CODES[code].action == action


def test_advice_is_the_guides_text() -> None:
    assert ERROR_CODES["USER_NOT_FOUND"].advice == (
        "Display the error message and ask the user to enter valid credentials. "
        "Send the request again."
    )
    assert ERROR_CODES["PLEASE_RETRY"].advice == "Send the request again."


def test_both_privilege_spellings_agree() -> None:
    a, b = ERROR_CODES["PRIVILLEGE_VIOLATION"], ERROR_CODES["PREVILLEGE_VIOLATION"]
    assert (a.summary, a.action, a.retriable) == (b.summary, b.action, b.retriable)


@pytest.mark.parametrize("spelling", ["please_retry", "Please_Retry", " PLEASE_RETRY\r\n"])
def test_lookup_is_case_insensitive(spelling: str) -> None:
    assert lookup(spelling) is ERROR_CODES["PLEASE_RETRY"]


def test_unknown_code_is_a_generic_display_entry() -> None:
    info = lookup("CF_SOMETHING_NEW")
    assert isinstance(info, ErrorInfo)
    assert (info.code, info.action, info.retriable) == ("CF_SOMETHING_NEW", "display", False)
    assert "CF_SOMETHING_NEW" in info.summary


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


@given(code=st.text() | st.integers() | st.none() | st.binary())
def test_lookup_never_raises(code: Any) -> None:
    assert lookup(code).action in ACTIONS


def test_lookup_survives_a_broken_str() -> None:
    assert lookup(_Unprintable()).action == "display"


def test_command_error_carries_the_advice() -> None:
    exc = CommandError("user_not_found", "1001")
    assert exc.advice == ERROR_CODES["USER_NOT_FOUND"].advice
    assert exc.retriable is False
    assert "Agent extension" in str(exc)
    assert CommandError("PLEASE_RETRY").retriable is True
