"""Transports: the same small interface over a native STOMP client, aiostomp, or in memory."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..errors import MissingExtra
from .base import Message, MessageHandler, Transport, TransportListener, expires_at, queue, topic
from .url import Endpoint, TransportURL, parse_flag, parse_url, redact_url

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
    "split_by_default",
    "topic",
]


def split_by_default(url: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with ``split_links`` on for a native STOMP URL, unless the URL or ``options``
    already decide: what the client and the emulator pass to :func:`open_transport`.

    Both keep one link busy both ways, the load that can stall ActiveMQ's per-connection lock
    (transport/split.py); tools that only listen or probe keep one link.
    """
    out = dict(options)
    parsed = parse_url(url)
    if parsed.scheme.startswith("stomp") and "split_links" not in parsed.options:
        out.setdefault("split_links", True)
    return out


def open_transport(url: str, **options: Any) -> Transport:
    """Make (not connect) the transport a URL names; ``options`` go to its constructor.

    ``split_links`` (URL query or keyword, keyword first; native STOMP only): receive on one
    link and send on a second one to the same broker, a
    :class:`~cucmconn.transport.split.SplitTransport`, which no ActiveMQ connection lock can
    stall (see that module).  Off unless asked for; the client and the emulator ask for it
    (:func:`split_by_default`).

    Imports are lazy so that a memory:// user never loads aiostomp, and vice versa; aiostomp is
    an extra, so ``aiostomp://`` without it raises :class:`~cucmconn.errors.MissingExtra`.
    """
    parsed = parse_url(url)
    split = options.pop("split_links", None)
    if "split_links" in parsed.options:
        rest = dict(parsed.options)
        raw = rest.pop("split_links")
        parsed = dataclasses.replace(parsed, options=rest)
        if split is None:
            split = parse_flag("split_links", raw)
    if split and not parsed.scheme.startswith("stomp"):
        raise ValueError(f"split_links applies to stomp:// URLs, not {parsed.scheme}://")
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

    if split:
        from .split import SplitTransport

        return SplitTransport(StompTransport(parsed, **options))
    return StompTransport(parsed, **options)
