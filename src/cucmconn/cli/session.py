"""What demo, load, send and watch share: opening the emulator and the client, with clear errors.

A newcomer's first failure is usually "nothing answers on that URL"; the client reports it as a
timeout on Hello, which is true but not actionable.  :class:`CannotConnect` carries a message
that says what to check (the scheme, the port, a connector on the queue), and the command line
maps it to exit code 2.  While the client waits for the connector's answer to Hello, a line
says so, so a slow start is not mistaken for a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

from ..client import Client
from ..emulator import Emulator
from ..errors import CommandTimeout, ConnectorError, ServiceUnavailable, TransportError
from ..transport import redact_url

__all__ = [
    "WAITING_AFTER",
    "CannotConnect",
    "check_url",
    "connect_hint",
    "open_client",
    "open_emulator",
    "wants_emulator",
]

WAITING_AFTER = 0.5
"""Seconds of silence from the connector before "waiting for the connector..." is printed."""

_STOMP_HINT = "use stomp://HOST:61613 (ActiveMQ's STOMP port)"
_NOT_STOMP = {
    "tcp": "tcp:// is ActiveMQ's OpenWire protocol (port 61616); cucmconn speaks STOMP",
    "nio": "nio:// is ActiveMQ's OpenWire protocol (port 61616); cucmconn speaks STOMP",
    "ssl": "ssl:// is ActiveMQ's OpenWire protocol over TLS; for STOMP over TLS use stomp+ssl://",
    "http": "http:// is ActiveMQ's web console or REST API (port 8161), not a message transport",
    "https": "https:// is ActiveMQ's web console or REST API, not a message transport",
    "amqp": "amqp:// is another protocol; cucmconn speaks STOMP",
    "mqtt": "mqtt:// is another protocol; cucmconn speaks STOMP",
    "ws": "ws:// is STOMP over WebSocket, which cucmconn does not speak",
}
_OPENWIRE_PORT = 61616


class CannotConnect(ConnectorError):
    """The broker or the connector could not be reached; the message says what to check."""


def check_url(url: str) -> None:
    """Refuse a URL of another protocol at once, with the STOMP URL to use instead."""
    scheme = urlsplit(url).scheme.lower()
    why = _NOT_STOMP.get(scheme)
    if why is not None:
        raise ValueError(f"{redact_url(url)}: {why}\n  hint: {_STOMP_HINT}")


def connect_hint(url: str, exc: BaseException) -> str:
    """What to check when connecting to ``url`` failed with ``exc`` ("" when nothing to add)."""
    try:
        port = urlsplit(url.removeprefix("failover:").strip("()")).port
    except ValueError:
        port = None
    if port == _OPENWIRE_PORT or "before CONNECTED" in str(exc):
        return (
            f"\n  hint: is that ActiveMQ's OpenWire port ({_OPENWIRE_PORT})? It closes a STOMP "
            f"connection without a word; {_STOMP_HINT}"
        )
    return ""


def wants_emulator(url: str, flag: bool | None) -> bool:
    """An explicit flag wins; otherwise only memory:// gets one (nothing else could answer there).

    Never by default on a real broker: an emulator there would share the queue with a real
    connector and take half its commands.
    """
    if flag is not None:
        return flag
    return url.startswith("memory:")


@contextlib.asynccontextmanager
async def open_emulator(
    url: str, *, queue: str, extensions: str, enabled: bool
) -> AsyncIterator[Emulator | None]:
    """The in-process emulator on ``url`` when ``enabled`` (else yields None)."""
    if not enabled:
        yield None
        return
    check_url(url)
    emulator = Emulator(url, queue=queue, extensions=extensions)
    try:
        await emulator.__aenter__()
    except (TransportError, OSError) as exc:
        raise CannotConnect(
            f"the emulator cannot reach the broker at {redact_url(url)}: {exc}"
            f"{connect_hint(url, exc)}"
        ) from exc
    try:
        yield emulator
    finally:
        await emulator.__aexit__(None, None, None)


@contextlib.asynccontextmanager
async def open_client(
    url: str, *, say: Callable[[str], None] | None = None, **options: Any
) -> AsyncIterator[Client]:
    """A connected client; a failed connect or handshake becomes :class:`CannotConnect`.

    ``say`` (a console's print) hears "waiting for the connector..." when the connector has
    not answered Hello within :data:`WAITING_AFTER` seconds.
    """
    check_url(url)
    client = Client(url, **options)
    waiting = None
    if say is not None:
        queue = options.get("queue", "Connector1")
        limit = options.get("handshake_timeout")
        upto = f" (up to {limit:g} s)" if isinstance(limit, int | float) else ""
        waiting = asyncio.get_running_loop().call_later(
            WAITING_AFTER,
            say,
            f"waiting for the connector on queue {queue} to answer Hello{upto}...",
        )
    try:
        await client.connect()
    except CommandTimeout as exc:  # first: it is also a TimeoutError, hence an OSError
        raise CannotConnect(
            f"{exc}\n  hint: start a connector on that queue, or add --emulate to run the "
            "emulator in this process"
        ) from exc
    except ServiceUnavailable as exc:
        raise CannotConnect(f"{exc} (CUCM is down behind the connector)") from exc
    except (TransportError, OSError) as exc:
        raise CannotConnect(
            f"cannot reach the broker at {redact_url(url)}: {exc}{connect_hint(url, exc)}"
        ) from exc
    finally:
        if waiting is not None:
            waiting.cancel()
    try:
        yield client
    finally:
        await client.close()
