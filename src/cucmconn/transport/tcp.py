"""TCP socket options that keep a sequential request fast on a broker we do not configure.

ActiveMQ's connectors leave Nagle's algorithm on unless the broker's owner sets
``transport.tcpNoDelay=true``.  A client that sends one command and waits for the answer then
meets Nagle on the broker's side and delayed ACKs on its own: the broker's reply is small and
follows a small write of its own that we have not ACKed yet, so the kernel holds it until our
delayed-ACK timer fires (~40 ms on Linux).  Two settings on *our* socket remove the wait:

- ``TCP_NODELAY``: our own small writes leave at once (asyncio sets it too; set explicitly so a
  transport that did not still gets it);
- ``TCP_QUICKACK`` (Linux only): ACK what arrived at once instead of delaying.  The kernel
  clears it by itself after a while, so it is re-armed after every read; setting it also sends
  an ACK that was pending.  One ``setsockopt`` per read, a microsecond.

On platforms without ``TCP_QUICKACK`` only ``TCP_NODELAY`` is set; the broker's owner can still
set ``transport.tcpNoDelay=true`` (README, "Known broker issues").
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

__all__ = ["QUICKACK_SUPPORTED", "set_quickack", "tune_socket", "tune_tcp_socket"]

_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
QUICKACK_SUPPORTED = _QUICKACK is not None


def tune_socket(transport: Any) -> Any:
    """Set TCP_NODELAY (and TCP_QUICKACK) on a transport's TCP socket.

    Returns the socket to re-arm with :func:`set_quickack` on every read, or None when there is
    nothing to re-arm (no TCP socket, no TCP_QUICKACK on this platform, or the option refused).
    """
    return tune_tcp_socket(transport.get_extra_info("socket"))


def tune_tcp_socket(sock: Any, *, quickack: bool = True) -> Any:
    """:func:`tune_socket` for a socket held directly (stomp.py's, which sets neither option);
    ``quickack=False`` sets TCP_NODELAY only and returns None."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if _QUICKACK is None or not quickack:
        return None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
    except OSError:
        return None
    return sock


def set_quickack(sock: Any) -> None:
    """Re-arm TCP_QUICKACK after a read (the kernel drops it on its own); errors ignored:
    a socket closing under us is reported by the transport, not here."""
    try:  # noqa: SIM105 - once per read: cheaper than contextlib.suppress
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
    except OSError:
        pass
