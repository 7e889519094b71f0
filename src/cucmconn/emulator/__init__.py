"""The connector emulator: a virtual CUCM behind the CUCM Connector's real wire protocol.

``front`` speaks the protocol (queue in, events out, faults); ``model`` is the telephony as a
sans-IO state machine; ``directory`` holds extensions and licences; ``scenario`` is the
tests' view (history, one-shot faults, waiting).  ``Emulator`` wires them to
a transport URL, and ``serve`` runs one until stopped (``cucmconn emulate``, whose command
line is :mod:`cucmconn.cli.emulate`).
"""

from __future__ import annotations

from .directory import Directory, parse_extensions
from .emulator import Emulator, EmulatorStats
from .front import Faults, Front
from .model import Command, CucmModel, Output
from .scenario import CommandRecord, EventRecord, Fault, Scenario, ScenarioTimeout
from .serve import serve

__all__ = [
    "Command",
    "CommandRecord",
    "CucmModel",
    "Directory",
    "Emulator",
    "EmulatorStats",
    "EventRecord",
    "Fault",
    "Faults",
    "Front",
    "Output",
    "Scenario",
    "ScenarioTimeout",
    "parse_extensions",
    "serve",
]
