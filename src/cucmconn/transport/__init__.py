"""Transports: the same small interface over a native STOMP client, aiostomp, or in memory."""

from __future__ import annotations

from typing import Any

from ..errors import MissingExtra
from .base import Message, MessageHandler, Transport, TransportListener, expires_at, queue, topic
from .url import Endpoint, TransportURL, parse_url, redact_url

__all__ = [
    "Endpoint",
    "Message",
    "MessageHandler",
    "Transport",
    "TransportListener",
    "TransportURL",
    "expires_at",
    "open_transport",
    "parse_url",
    "queue",
    "redact_url",
    "topic",
]


def open_transport(url: str, **options: Any) -> Transport:
    """Make (not connect) the transport a URL names; ``options`` go to its constructor.

    Imports are lazy so that a memory:// user never loads aiostomp, and vice versa; aiostomp is
    an extra, so ``aiostomp://`` without it raises :class:`~cucmconn.errors.MissingExtra`.
    """
    parsed = parse_url(url)
    if parsed.scheme == "memory":
        from .memory import MemoryTransport

        return MemoryTransport(parsed, **options)
    if parsed.scheme.startswith("aiostomp"):
        try:
            from .aiostomp_adapter import AiostompTransport
        except ModuleNotFoundError as exc:
            if exc.name != "aiostomp" and not (exc.name or "").startswith("aiostomp."):
                raise
            raise MissingExtra("aiostomp", "the aiostomp:// transport") from exc

        return AiostompTransport(parsed, **options)
    from .stomp import StompTransport

    return StompTransport(parsed, **options)
