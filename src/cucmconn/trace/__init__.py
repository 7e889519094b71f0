"""Field tools: record a link to a trace, replay a trace as a connector, check one against another.

``TraceRecorder`` + ``RecordingTransport`` write traces (``Client(record=...)`` uses them),
``Replayer`` answers live commands from a trace, ``check_trace`` (in ``check``) plays a trace's
client side against a connector and compares.  The format is in ``format`` and
``docs/trace-format.md``.
"""

from __future__ import annotations

from .format import (
    TRACE_VERSION,
    Trace,
    TraceError,
    TraceHeader,
    TraceRecord,
    read_trace,
    write_trace,
)
from .recorder import RecordingTransport, TraceRecorder
from .replayer import Replayer, ReplayerStats

__all__ = [
    "TRACE_VERSION",
    "RecordingTransport",
    "Replayer",
    "ReplayerStats",
    "Trace",
    "TraceError",
    "TraceHeader",
    "TraceRecord",
    "TraceRecorder",
    "read_trace",
    "write_trace",
]
