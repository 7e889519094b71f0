"""The asyncio client: :class:`Client`, per-agent :class:`AgentSession`, and ``run()``."""

from __future__ import annotations

from .agent import AgentSession, Call
from .client import Client, ResyncCallback
from .correlation import DEFAULT_EXPECTATIONS, Expect
from .loop import run
from .observe import ClientObserver, CommandFinished, EventFate, Outcome
from .stats import ClientStats
from .streams import EventsMayBeMissed, EventStream, Overflow, StreamItem

__all__ = [
    "DEFAULT_EXPECTATIONS",
    "AgentSession",
    "Call",
    "Client",
    "ClientObserver",
    "ClientStats",
    "CommandFinished",
    "EventFate",
    "EventStream",
    "EventsMayBeMissed",
    "Expect",
    "Outcome",
    "Overflow",
    "ResyncCallback",
    "StreamItem",
    "run",
]
