"""One root for every error the SDK raises, so callers can catch ``ConnectorError`` alone.

``ProtocolError`` is also a ``ValueError`` because it always means "these bytes are not a valid
message"; ``CommandTimeout`` is also a ``TimeoutError`` so generic timeout handling still works.

This module sits at the bottom of the layers: it imports only ``errorcodes`` (the vendor's table
of error codes, plain data), so every layer above can import it without a cycle
(``tests/package/test_layers.py`` checks this).
"""

from __future__ import annotations

from .errorcodes import ErrorInfo, lookup

__all__ = [
    "BrokerError",
    "ClosedBeforeConnected",
    "CommandError",
    "CommandTimeout",
    "ConnectionLost",
    "ConnectorError",
    "MissingExtra",
    "ProtocolError",
    "ServiceUnavailable",
    "SlowConsumer",
    "TransportError",
]


class ConnectorError(Exception):
    """Root of every error raised by cucmconn."""


class ProtocolError(ConnectorError, ValueError):
    """The peer sent something that is not a valid event, command or STOMP frame."""


class TransportError(ConnectorError):
    """The broker could not be reached or refused us."""


class BrokerError(TransportError):
    """The broker answered with a STOMP ERROR frame; ``message`` is the broker's own text."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message if not details else f"{message}: {details}")
        self.broker_message = message
        self.details = details


class ClosedBeforeConnected(TransportError):
    """The broker accepted the connection, then closed it before CONNECTED without an ERROR.

    ActiveMQ 5.17 does this now and then where it means to refuse a log-in: about 4 closes
    in 1,000 carry no ERROR frame, so the reason is lost.  A broker shutting down or a proxy
    without a backend looks the same.  The transports therefore try such an attempt again at
    once, a few times (``transport.base.connect_attempts``), before raising this.
    """


class ConnectionLost(TransportError):
    """The connection dropped while a command was in flight: its outcome is unknown."""


class ServiceUnavailable(ConnectorError):
    """The connector reported OUT_OF_SERVICE (CUCM is down), so commands are not processed."""


class MissingExtra(ConnectorError, ImportError):
    """An optional feature was used without the extra that installs its dependency.

    ``import cucmconn`` needs msgspec only; the command line (``cli``), the aiostomp adapter
    (``aiostomp``) and uvloop (``uvloop``) are extras.  The message is one line naming the extra.
    """

    def __init__(self, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the '{extra}' extra: python3 -m pip install 'cucmconn[{extra}]'"
        )
        self.extra = extra
        self.feature = feature


class CommandTimeout(ConnectorError, TimeoutError):
    """No event answered the command within its TTL."""


class SlowConsumer(ConnectorError):
    """A bounded buffer overflowed because the application did not keep up."""


class CommandError(ConnectorError):
    """The connector answered a command with ``<for>#Error#<code>``.

    ``advice`` is the client behaviour the vendor's guide expects for this code, so an
    application can show or act on it without its own table.
    """

    def __init__(self, code: str, target: str | None = None, message: str | None = None) -> None:
        info: ErrorInfo = lookup(code)
        self.code = code
        self.target = target
        self.message = message
        self.info = info
        self.advice = info.advice
        self.retriable = info.retriable
        text = f"{code} for {target}" if target else code
        super().__init__(f"{text}: {message or info.summary}")
