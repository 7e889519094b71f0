"""A recorded connector for a test: ``cucmconn.Replayer`` serving a trace, seen through the same
history as the emulated one (commands in, events out, waiting, failures that show them).

Where ``Connector`` plays a connector from a model, ``TraceConnector`` plays back one that was
recorded in the field (``Client(record=...)``, docs/trace-format.md): an application is tested
against exactly what a real site sent.  The Replayer consumes the command queue through the
scenario ``Tap``, so ``wait_for`` and the one-shot faults work here too.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from ..client import Client
from ..emulator import Fault, Scenario
from ..emulator.checks import ScenarioChecks
from ..emulator.scenario import Tap
from ..trace import Replayer, ReplayerStats
from ..transport import open_transport, parse_url, redact_url
from ..transport import queue as queue_destination
from ..transport.memory import MemoryBroker

__all__ = ["TraceConnector", "open_trace_connector"]

DEFAULT_HISTORY = 500


class TraceConnector(ScenarioChecks):
    """A trace played back as the connector of one test; see ``open_trace_connector``.

    The application connects to ``url`` and ``queue`` (``client()`` builds such a client);
    ``replayer`` is the running Replayer (``stats()``, ``unanswered_commands``).
    """

    def __init__(self, replayer: Replayer, scenario: Scenario, *, url: str, queue: str) -> None:
        self.replayer = replayer
        self.url = url
        self.queue = queue
        self._scenario = scenario

    def __repr__(self) -> str:
        return f"TraceConnector({redact_url(self.url)!r}, queue={self.queue!r})"

    def client(self, **options: Any) -> Client:
        """A new (not yet connected) Client for this connector; ``options`` go to Client."""
        return Client(self.url, queue=self.queue, **options)

    def stats(self) -> ReplayerStats:
        """What the replayer answered, and what of the trace is left."""
        return self.replayer.stats()

    def fail_next(
        self,
        command: str | None = None,
        agent: str | None = None,
        *,
        code: str = "CF_INVALID_OBJECT_STATE",
        times: int = 1,
    ) -> Fault:
        """The next matching command is answered ``<agent>#Error#<code>`` instead of replayed
        (the recorded answer stays for the command after it)."""
        return self._scenario.arm(Fault("fail", command, agent, code=code, times=times))

    def _scenario_control(self) -> Scenario:
        return self._scenario


@contextlib.asynccontextmanager
async def open_trace_connector(
    trace: str | os.PathLike[str],
    url: str | None = None,
    *,
    queue: str | None = None,
    speed: float = 1.0,
    unanswered: str | None = "CF_INVALID_OBJECT_STATE",
    history: int = DEFAULT_HISTORY,
) -> AsyncIterator[TraceConnector]:
    """Play ``trace`` as the connector: on a fresh memory:// broker, or on ``url``.

    ``speed`` divides the recorded delays; ``unanswered`` is the error for a command the trace
    cannot answer (None: silence).  On a real broker the queue is unique unless ``queue`` is
    given.  The pytest fixture ``connector_from_trace`` is this.
    """
    token = uuid.uuid4().hex[:12]
    memory_name: str | None = None
    if url is None:
        memory_name = f"cucmconn-trace-{token}"
        url = f"memory://{memory_name}"
        queue = queue or "Connector1"
    else:
        parse_url(url)
        queue = queue or f"cucmconn-test-{token}"
    scenario = Scenario(history=history, event_format="default", clock=time.time)
    tap = Tap(open_transport(url), scenario, queue_destination(queue))
    replayer = Replayer(trace, url, queue=queue, speed=speed, unanswered=unanswered, transport=tap)
    try:
        async with replayer:
            yield TraceConnector(replayer, scenario, url=url, queue=queue)
    finally:
        if memory_name is not None:
            MemoryBroker.reset(memory_name)
