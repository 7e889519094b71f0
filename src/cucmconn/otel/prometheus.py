"""Serve cucmconn's metrics at ``/metrics`` for Prometheus (the ``prometheus`` extra).

The metrics are the OpenTelemetry ones of :func:`cucmconn.otel.instrument` and
:func:`cucmconn.otel.instrument_emulator`, exported through OpenTelemetry's Prometheus reader
onto ``prometheus_client``'s HTTP server, so ``/metrics`` and an OpenTelemetry pipeline carry the
same figures under the same names (dots become underscores; counters end ``_total``, the
duration histogram ``_seconds``).  ``cucmconn load --metrics-port N`` and
``cucmconn emulate --metrics-port N`` use this; an application can too::

    with MetricsServer(9464) as server:
        server.instrument(client)
        ...
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from ..errors import MissingExtra

try:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.trace import NoOpTracerProvider
    from prometheus_client import CollectorRegistry, start_http_server
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingExtra("prometheus", "--metrics-port") from exc

from . import EmulatorInstrumentation, Instrumentation, instrument, instrument_emulator

if TYPE_CHECKING:  # the emulator's CLI imports this module
    from ..client import Client
    from ..emulator import Emulator

__all__ = ["MetricsServer"]

log = logging.getLogger("cucmconn.otel")


class MetricsServer:
    """An HTTP server for ``/metrics`` on ``host:port`` (port 0 picks a free one: see
    :attr:`port`), with its own registry and meter provider, so two in one process (a test's
    client and emulator) never mix their series.  Close it (or use ``with``) to stop serving.
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self._registry = CollectorRegistry(auto_describe=True)
        self._reader = PrometheusMetricReader(registry=self._registry)
        self._meters = MeterProvider(metric_readers=[self._reader])
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(port, host, registry=self._registry)
        self.host = host
        self.port: int = self._server.server_port
        """The port actually bound (the one asked for, or the free one port 0 found)."""
        self._handles: list[Instrumentation | EmulatorInstrumentation] = []
        log.info("metrics at %s", self.url)

    @property
    def url(self) -> str:
        """Where the metrics are: ``http://host:port/metrics``."""
        return f"http://{self.host}:{self.port}/metrics"

    def instrument(self, client: Client) -> Instrumentation:
        """Serve ``client``'s metrics (spans are not exported here: Prometheus has none)."""
        handle = instrument(
            client, meter_provider=self._meters, tracer_provider=NoOpTracerProvider()
        )
        self._handles.append(handle)
        return handle

    def instrument_emulator(self, emulator: Emulator) -> EmulatorInstrumentation:
        """Serve ``emulator``'s metrics (commands, errors by code, agents, calls, licences)."""
        handle = instrument_emulator(emulator, meter_provider=self._meters)
        self._handles.append(handle)
        return handle

    def close(self) -> None:
        """Detach everything instrumented and stop the HTTP server."""
        for handle in self._handles:
            handle.uninstrument()
        self._handles.clear()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._meters.shutdown()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
