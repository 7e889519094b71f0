"""Text bodies on the wire, and ActiveMQ 5.17's CESU-8 bug (AMQ-8398) in both directions.

ActiveMQ 5.17 (Debian's) moves STOMP text into a JMS TextMessage as *modified* UTF-8, which has
no 4-byte sequences: a character outside the BMP sent as plain UTF-8 makes the Java side's
``getText()`` fail, and JMS text delivered to STOMP arrives with each surrogate encoded on its
own (CESU-8).  So we send CESU-8 by default (verified against a JMS peer in
``tests/test_jms_interop.py``) and repair it on receipt.  Upstream's fix decodes STOMP bodies as
standard UTF-8, which would reject CESU-8: transports therefore expose ``body_encoding``.
"""

from __future__ import annotations

import re

from ..errors import ProtocolError

__all__ = ["BODY_ENCODINGS", "decode_text", "encode_text"]

BODY_ENCODINGS = ("cesu-8", "utf-8")

_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _split_pair(match: re.Match[str]) -> str:
    code = ord(match.group()) - 0x10000
    return chr(0xD800 + (code >> 10)) + chr(0xDC00 + (code & 0x3FF))


def encode_text(text: str, encoding: str = "cesu-8") -> bytes:
    """UTF-8, except that with ``cesu-8`` non-BMP characters go as two 3-byte surrogates."""
    if encoding == "cesu-8" and not text.isascii() and _ASTRAL.search(text):
        return _ASTRAL.sub(_split_pair, text).encode("utf-8", "surrogatepass")
    if encoding not in BODY_ENCODINGS:
        raise ValueError(f"body encoding must be one of {BODY_ENCODINGS}, not {encoding!r}")
    return text.encode("utf-8")


def decode_text(data: bytes) -> str:
    """Strict UTF-8; CESU-8 surrogate pairs are re-joined; anything else is a ProtocolError."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("utf-8", "surrogatepass")
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"body is not UTF-8 ({exc.reason})") from None
