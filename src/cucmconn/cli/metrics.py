"""``cucmconn load --metrics-port N``: serve the run's metrics at ``/metrics`` while it runs.

The client's (and, when the emulator runs in this process, the emulator's) OpenTelemetry
metrics go out through :class:`cucmconn.otel.prometheus.MetricsServer`; the ``prometheus`` extra
is loaded only when the flag is given, so a plain ``load`` never imports OpenTelemetry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from ..client import Client
from ..emulator import Emulator

__all__ = ["Attach", "metrics_endpoint"]

Attach = Callable[[Client, Emulator | None], contextlib.AbstractContextManager[object]]
"""What ``load.measure`` enters around a run once the client is connected (metrics,
telemetry, benchmarks' instrumentation); left when the run ends."""


def metrics_endpoint(port: int, say: Callable[[str], object]) -> Attach:
    """What ``measure`` attaches for ``--metrics-port``: a server for the run's lifetime;
    ``say`` gets the URL (port 0 picks a free port, so the URL is how to find it)."""

    @contextlib.contextmanager
    def attach(client: Client, emulator: Emulator | None) -> Iterator[object]:
        from ..otel.prometheus import MetricsServer  # the prometheus extra, only when asked

        with MetricsServer(port) as server:
            server.instrument(client)
            if emulator is not None:
                server.instrument_emulator(emulator)
            say(f"metrics at {server.url}")
            yield server

    return attach
