"""CESU-8 both ways (ActiveMQ 5.17, AMQ-8398); the JMS interop test proves it on the wire."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cucmconn.codec.text import decode_text, encode_text
from cucmconn.errors import ProtocolError


def test_non_bmp_goes_as_two_three_byte_surrogates() -> None:
    assert encode_text("X😀") == b"X\xed\xa0\xbd\xed\xb8\x80"
    assert encode_text("X😀", "utf-8") == "X😀".encode()


def test_bmp_text_is_plain_utf8() -> None:
    assert encode_text("Zoë ☎") == "Zoë ☎".encode()


@given(st.text())
def test_round_trip_in_both_encodings(text: str) -> None:
    text = text.encode("utf-8", "ignore").decode("utf-8")  # no lone surrogates in the input
    assert decode_text(encode_text(text)) == text
    assert decode_text(encode_text(text, "utf-8")) == text


@pytest.mark.parametrize("data", [b"\xff", b"\xed\xa0\xbd", b"ab\xc3"])
def test_garbage_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_text(data)


def test_unknown_encoding_is_refused() -> None:
    with pytest.raises(ValueError, match="body encoding"):
        encode_text("x", "latin-1")
