"""``cucmconn.testing``: test an application built on cucmconn without a Cisco lab.

The pytest plugin (installed with cucmconn, module ``pytest_cucmconn``) gives the fixtures
``connector``, ``cucmconn_client``, ``cucmconn_client_factory`` and ``connector_from_trace``;
this package is what they
are made of, usable without pytest too (``async with open_connector() as connector``).  See
docs/testing.md.
"""

from __future__ import annotations

from ..emulator import CommandRecord, EventRecord, Fault, ScenarioTimeout
from .connector import (
    DETERMINISTIC_EPOCH,
    CallHandle,
    CallState,
    ClientFactory,
    Connector,
    ConnectorOptions,
    ManualClock,
    open_connector,
)
from .replay import TraceConnector, open_trace_connector

__all__ = [
    "DETERMINISTIC_EPOCH",
    "CallHandle",
    "CallState",
    "ClientFactory",
    "CommandRecord",
    "Connector",
    "ConnectorOptions",
    "EventRecord",
    "Fault",
    "ManualClock",
    "ScenarioTimeout",
    "TraceConnector",
    "open_connector",
    "open_trace_connector",
]
