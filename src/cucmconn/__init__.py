"""cucmconn: an asyncio SDK, a C-accelerated codec and an emulator for the CUCM Connector.

Importing this package never changes the event-loop policy; ``cucmconn.run()`` opts in to uvloop.
"""

from __future__ import annotations

from .client import AgentSession, Call, Client, ClientStats, EventsMayBeMissed, EventStream, run
from .codec import (
    ERROR_CODES,
    AgentInfo,
    AgentState,
    AgentStatus,
    CallStatus,
    DialogState,
    ErrorEvent,
    ErrorInfo,
    Event,
    InboundCall,
    ServiceStatus,
    SystemStatus,
    TerminalStatus,
    UnknownEvent,
    codec_backend,
    decode_event,
    encode_command,
    encode_event,
)
from .emulator import Emulator
from .errors import (
    BrokerError,
    ClosedBeforeConnected,
    CommandError,
    CommandTimeout,
    ConnectionLost,
    ConnectorError,
    ProtocolError,
    ServiceUnavailable,
    SlowConsumer,
    TransportError,
)
from .trace import Replayer, TraceRecorder

__version__ = "0.1.0"

__all__ = [
    "ERROR_CODES",
    "AgentInfo",
    "AgentSession",
    "AgentState",
    "AgentStatus",
    "BrokerError",
    "Call",
    "CallStatus",
    "Client",
    "ClientStats",
    "ClosedBeforeConnected",
    "CommandError",
    "CommandTimeout",
    "ConnectionLost",
    "ConnectorError",
    "DialogState",
    "Emulator",
    "ErrorEvent",
    "ErrorInfo",
    "Event",
    "EventStream",
    "EventsMayBeMissed",
    "InboundCall",
    "ProtocolError",
    "Replayer",
    "ServiceStatus",
    "ServiceUnavailable",
    "SlowConsumer",
    "SystemStatus",
    "TerminalStatus",
    "TraceRecorder",
    "TransportError",
    "UnknownEvent",
    "__version__",
    "codec_backend",
    "decode_event",
    "encode_command",
    "encode_event",
    "run",
]
