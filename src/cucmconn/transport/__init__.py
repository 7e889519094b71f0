"""Transports: the same small interface over a native STOMP client, aiostomp, stomp.py, or in
memory."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
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

_NATIVE = frozenset({"stomp", "stomp+ssl"})  # the schemes whose transport can split its links

_ADAPTERS = {
    "aiostomp": ("aiostomp", "aiostomp_adapter", "AiostompTransport", "aiostomp"),
    "stomppy": ("stomppy", "stomppy_adapter", "StompPyTransport", "stomp"),
}
"""Scheme -> (extra, module, class, the third-party package the module imports)."""


def _load_adapter(extra: str, module: str, name: str, package: str) -> Any:
    """The adapter class, imported only now (a memory:// user never loads aiostomp or
    stomp.py); :class:`~cucmconn.errors.MissingExtra` naming ``extra`` when ``package`` is not
    installed, while any other missing module stays the ModuleNotFoundError it is."""
    try:
        return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    except ModuleNotFoundError as exc:
        if exc.name != package and not (exc.name or "").startswith(f"{package}."):
            raise
        raise MissingExtra(extra, f"the {extra}:// transport") from exc


def split_by_default(url: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with ``split_links`` on for a native STOMP URL, unless the URL or ``options``
    already decide: what the client and the emulator pass to :func:`open_transport`.

    Both keep one link busy both ways, the load that can stall ActiveMQ's per-connection lock
    (transport/split.py); tools that only listen or probe keep one link.
    """
    out = dict(options)
    parsed = parse_url(url)
    if parsed.scheme in _NATIVE and "split_links" not in parsed.options:
        out.setdefault("split_links", True)
    return out


def open_transport(url: str, **options: Any) -> Transport:
    """Make (not connect) the transport a URL names; ``options`` go to its constructor.

    ``split_links`` (URL query or keyword, keyword first; native STOMP only): receive on one
    link and send on a second one to the same broker, a
    :class:`~cucmconn.transport.split.SplitTransport`, which no ActiveMQ connection lock can
    stall (see that module).  Off unless asked for; the client and the emulator ask for it
    (:func:`split_by_default`).

    Imports are lazy so that a memory:// user never loads aiostomp or stomp.py, and vice versa;
    both are extras, so ``aiostomp://`` or ``stomppy://`` without its package raises
    :class:`~cucmconn.errors.MissingExtra`.
    """
    parsed = parse_url(url)
    split = options.pop("split_links", None)
    if "split_links" in parsed.options:
        rest = dict(parsed.options)
        raw = rest.pop("split_links")
        parsed = dataclasses.replace(parsed, options=rest)
        if split is None:
            split = parse_flag("split_links", raw)
    if split and parsed.scheme not in _NATIVE:
        raise ValueError(f"split_links applies to stomp:// URLs, not {parsed.scheme}://")
    if parsed.scheme == "memory":
        from .memory import MemoryTransport

        return MemoryTransport(parsed, **options)
    adapter = _ADAPTERS.get(parsed.scheme.split("+", 1)[0])
    if adapter is not None:
        factory: Callable[..., Transport] = _load_adapter(*adapter)
        return factory(parsed, **options)
    from .stomp import StompTransport

    if split:
        from .split import SplitTransport

        return SplitTransport(StompTransport(parsed, **options))
    return StompTransport(parsed, **options)
