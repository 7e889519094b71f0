"""What demo, load, send and watch share: opening the emulator and the client, with clear errors.

A newcomer's first failure is usually "nothing answers on that URL"; the client reports it as a
timeout on Hello, which is true but not actionable.  :class:`CannotConnect` carries a message
that says what to check, and the command line maps it to exit code 2.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ..errors import CommandTimeout, ConnectorError, ServiceUnavailable, TransportError

__all__ = ["CannotConnect", "open_client", "open_emulator", "wants_emulator"]


class CannotConnect(ConnectorError):
    """The broker or the connector could not be reached; the message says what to check."""


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
) -> AsyncIterator[Any]:
    """The in-process emulator on ``url`` when ``enabled`` (else yields None)."""
    if not enabled:
        yield None
        return
    try:
        from ..emulator import Emulator
    except ImportError as exc:  # pragma: no cover - the emulator ships with the package
        raise CannotConnect(f"the emulator is not available: {exc}") from exc
    try:
        emulator = Emulator(url, queue=queue, extensions=extensions)
        await emulator.__aenter__()
    except (TransportError, OSError) as exc:
        raise CannotConnect(f"the emulator cannot reach the broker at {_safe(url)}: {exc}") from exc
    try:
        yield emulator
    finally:
        await emulator.__aexit__(None, None, None)


@contextlib.asynccontextmanager
async def open_client(url: str, **options: Any) -> AsyncIterator[Any]:
    """A connected client; a failed connect or handshake becomes :class:`CannotConnect`."""
    from ..client import Client

    client = Client(url, **options)
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
        raise CannotConnect(f"cannot reach the broker at {_safe(url)}: {exc}") from exc
    try:
        yield client
    finally:
        await client.close()


def _safe(url: str) -> str:
    from ..transport import redact_url

    return redact_url(url)
