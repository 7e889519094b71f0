"""OpenTelemetry metrics and spans for a :class:`~cucmconn.Client` (the ``otel`` extra).

``cucmconn.otel.instrument(client)`` is the one way to turn it on: it attaches a
:class:`~cucmconn.client.ClientObserver` (the client's public observer interface) that records
metrics and one span per command through the OpenTelemetry API, and returns an
:class:`Instrumentation` whose ``uninstrument()`` takes it off again.  Nothing else imports this
module, so a client that is not instrumented never loads OpenTelemetry and pays one falsy check
per call site (the observer interface's cost with nobody observing).

The API alone records nothing: the application configures an SDK (``MeterProvider``,
``TracerProvider``, exporters) as it does for the rest of its process, or passes providers here.

Metrics (names, types and attributes; the README lists them for Grafana):

* ``cucmconn.client.commands`` (counter): commands ended, by ``cucmconn.command`` and
  ``cucmconn.outcome`` (answered, error, timeout, unavailable, connection_lost, cancelled), with
  ``cucmconn.error_code`` on errors;
* ``cucmconn.client.command.duration`` (histogram, seconds): the same attributes;
* ``cucmconn.client.commands.in_flight`` (up-down counter, observed): commands awaiting answers;
* ``cucmconn.client.events`` (counter): events received, by ``cucmconn.event.type`` and
  ``cucmconn.event.fate`` (malformed ones have type ``malformed``);
* ``cucmconn.client.events.dropped``, ``cucmconn.client.events.malformed``,
  ``cucmconn.client.reconnects`` (counters, observed from ``client.stats()``);
* ``cucmconn.client.connector.in_service`` (gauge, 1 or 0);
* ``cucmconn.client.agents.logged_in`` (gauge).

Spans: one per command, kind PRODUCER, named ``send <queue>``, with the messaging semantic
conventions (``messaging.system=activemq``, ``messaging.destination.name``, the correlation id
as ``messaging.message.conversation_id``) plus ``cucmconn.command``, ``cucmconn.agent`` and
``cucmconn.outcome``; a command that did not get its answer ends with status ERROR and
``error.type`` (the connector's code for an ``#Error#`` answer, else the outcome).  A sampled
command's duration is recorded in its span's context, so a histogram exemplar links its trace.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import MissingExtra

try:
    from opentelemetry import metrics, trace
    from opentelemetry.context import Context
    from opentelemetry.metrics import CallbackOptions, Observation
except ImportError as exc:  # pragma: no cover - exercised by tests/package without the extra
    raise MissingExtra("otel", "cucmconn.otel") from exc

from ..client.observe import ClientObserver, CommandFinished, EventFate
from ..codec.events import Event
from .emulator import EmulatorInstrumentation, instrument_emulator
from .version import INSTRUMENTATION_NAME, scope_version

if TYPE_CHECKING:
    from ..client import Client

__all__ = [
    "DURATION_BUCKETS",
    "INSTRUMENTATION_NAME",
    "MAX_SERIES",
    "EmulatorInstrumentation",
    "Instrumentation",
    "instrument",
    "instrument_emulator",
]

DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Bucket bounds of the duration histogram, seconds: sub-millisecond (memory://) up to the
default 10 s TTL (the SDK's own default bounds are milliseconds)."""

MAX_SERIES = 1000
"""Most (command, outcome, error code) series kept; codes beyond are counted as ``other``."""

_SYSTEM = "activemq"
_MALFORMED = "malformed"
_PRODUCER = trace.SpanKind.PRODUCER
_NO_SPAN = Context()
"""The context a sampled-out command's duration is recorded in: no span, so no exemplar link
(and no look-up of the caller's context, which at that point is the client's delivery path)."""


class Instrumentation(ClientObserver):
    """The metrics and spans of one client; made by :func:`instrument`.

    Holds at most one open span per command in flight (the client bounds those with
    ``max_in_flight``); a span is ended exactly when its command ends.
    """

    def __init__(
        self,
        client: Client,
        *,
        meter_provider: metrics.MeterProvider | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self._client = client
        release = scope_version()
        meter = metrics.get_meter(INSTRUMENTATION_NAME, release, meter_provider=meter_provider)
        self._tracer = trace.get_tracer(
            INSTRUMENTATION_NAME, release, tracer_provider=tracer_provider
        )
        self._duration = meter.create_histogram(
            "cucmconn.client.command.duration",
            unit="s",
            description="Time from a command being issued to its end, by command and outcome",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        # Commands and events are tallied here and observed at collection: an SDK counter's
        # ``add`` costs microseconds per call, a dict increment a fraction of one.
        self._command_counts: dict[tuple[str, str, str | None], int] = {}
        self._attributes: dict[tuple[str, str, str | None], dict[str, str]] = {}
        self._event_counts: dict[tuple[str, str], int] = {}
        self._observed = [
            meter.create_observable_counter(
                "cucmconn.client.commands",
                callbacks=[self._commands],
                unit="{command}",
                description="Commands ended, by command and outcome",
            ),
            meter.create_observable_counter(
                "cucmconn.client.events",
                callbacks=[self._events],
                unit="{event}",
                description="Events received on the client's topic, by type and fate",
            ),
            meter.create_observable_up_down_counter(
                "cucmconn.client.commands.in_flight",
                callbacks=[self._in_flight],
                unit="{command}",
                description="Commands awaiting their answer",
            ),
            meter.create_observable_counter(
                "cucmconn.client.events.dropped",
                callbacks=[self._dropped],
                unit="{event}",
                description="Events a full stream dropped",
            ),
            meter.create_observable_counter(
                "cucmconn.client.events.malformed",
                callbacks=[self._malformed],
                unit="{message}",
                description="Messages on the client's topic that were not a valid event",
            ),
            meter.create_observable_counter(
                "cucmconn.client.reconnects",
                callbacks=[self._reconnects],
                unit="{reconnect}",
                description="Times the transport restored a lost link",
            ),
            meter.create_observable_gauge(
                "cucmconn.client.connector.in_service",
                callbacks=[self._in_service],
                unit="1",
                description="1 while the connector reports IN_SERVICE, else 0",
            ),
            meter.create_observable_gauge(
                "cucmconn.client.agents.logged_in",
                callbacks=[self._logged_in],
                unit="{agent}",
                description="Agents of this client that are logged in",
            ),
        ]
        self._spans: dict[str, trace.Span] = {}
        self._span_name = f"send {client.queue}"
        self._base = {
            "messaging.system": _SYSTEM,
            "messaging.destination.name": client.queue,
            "messaging.operation.name": "send",
            "messaging.operation.type": "send",
        }
        self._active = True
        client.add_observer(self)

    # -- on/off ---------------------------------------------------------------------------------

    def uninstrument(self) -> None:
        """Detach from the client: no more metrics or spans (open spans end as cancelled)."""
        if not self._active:
            return
        self._active = False
        self._client.remove_observer(self)
        for span in self._spans.values():
            span.set_attribute("cucmconn.outcome", "cancelled")
            span.end()
        self._spans.clear()

    @property
    def active(self) -> bool:
        """True while attached to the client."""
        return self._active

    # -- observer callbacks (the hot path: keep them short) -------------------------------------

    def command_issued(self, command: str, target: str, correlation_id: str) -> None:
        """Open the command's span (kept only when the sampler records it)."""
        span = self._tracer.start_span(self._span_name, kind=_PRODUCER)
        if span.is_recording():
            span.set_attributes(self._base)
            span.set_attribute("messaging.message.conversation_id", correlation_id)
            span.set_attribute("cucmconn.command", command)
            span.set_attribute("cucmconn.agent", target)
            self._spans[correlation_id] = span

    def command_finished(self, finished: CommandFinished) -> None:
        """Count the command, record its duration and end its span."""
        outcome = finished.outcome
        code = finished.error_code
        key: tuple[str, str, str | None] = (finished.command, outcome, code)
        attributes = self._attributes.get(key)
        if attributes is None:
            key, attributes = self._series(key)
        self._command_counts[key] = self._command_counts.get(key, 0) + 1
        cid = finished.correlation_id
        # None: not sampled; no id: refused before it had one, so a span of its own, already over
        span = self._spans.pop(cid, None) if cid is not None else self._late_span(finished)
        if span is None or not span.is_recording():
            self._duration.record(finished.duration, attributes, _NO_SPAN)
            return
        span.set_attribute("cucmconn.outcome", outcome)
        if outcome != "answered":
            error = code if code is not None else outcome
            span.set_attribute("error.type", error)
            if code is not None:
                span.set_attribute("cucmconn.error_code", code)
            span.set_status(trace.Status(trace.StatusCode.ERROR, error))
        span.end()
        self._duration.record(finished.duration, attributes, trace.set_span_in_context(span))

    def _series(
        self, key: tuple[str, str, str | None]
    ) -> tuple[tuple[str, str, str | None], dict[str, str]]:
        """The attributes of a new (command, outcome, code) series; past ``MAX_SERIES`` the
        code is folded into ``other`` so a connector inventing codes cannot grow memory."""
        command, outcome, code = key
        if len(self._attributes) >= MAX_SERIES:
            key = (command, outcome, None if code is None else "other")
            found = self._attributes.get(key)
            if found is not None:
                return key, found
            code = key[2]
        attributes = {"cucmconn.command": command, "cucmconn.outcome": outcome}
        if code is not None:
            attributes["cucmconn.error_code"] = code
        self._attributes[key] = attributes
        return key, attributes

    def _late_span(self, finished: CommandFinished) -> trace.Span:
        ended = _now_ns()
        attributes: dict[str, str] = {
            **self._base,
            "cucmconn.command": finished.command,
            "cucmconn.agent": finished.target,
        }
        if finished.correlation_id is not None:
            attributes["messaging.message.conversation_id"] = finished.correlation_id
        return self._tracer.start_span(
            self._span_name,
            kind=trace.SpanKind.PRODUCER,
            attributes=attributes,
            start_time=ended - int(finished.duration * 1e9),
        )

    def event_received(self, event: Event | None, fate: EventFate) -> None:
        """Count the event by its type (class name) and what became of it."""
        key = (type(event).__name__ if event is not None else _MALFORMED, fate)
        self._event_counts[key] = self._event_counts.get(key, 0) + 1

    # -- observed instruments (run at collection, not per command) ------------------------------

    # The API cannot unregister a callback, so each observes nothing once detached.  They may
    # run in a reader's thread while the loop adds series: read the dicts with one C-level copy.

    def _commands(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self._active:
            return []
        attributes = self._attributes
        counts = tuple(self._command_counts.items())
        return [Observation(n, attributes[key]) for key, n in counts]

    def _events(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self._active:
            return []
        return [
            Observation(n, {"cucmconn.event.type": kind, "cucmconn.event.fate": fate})
            for (kind, fate), n in tuple(self._event_counts.items())
        ]

    def _in_flight(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._client.stats().in_flight)] if self._active else []

    def _dropped(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._client.stats().dropped_events)] if self._active else []

    def _malformed(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._client.stats().malformed)] if self._active else []

    def _reconnects(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._client.stats().reconnects)] if self._active else []

    def _in_service(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(1 if self._client.in_service else 0)] if self._active else []

    def _logged_in(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self._active:
            return []
        return [Observation(sum(1 for a in self._client.agents.values() if a.logged_in))]


def _now_ns() -> int:
    return time.time_ns()


def instrument(
    client: Client,
    *,
    meter_provider: metrics.MeterProvider | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> Instrumentation:
    """Record OpenTelemetry metrics and spans for ``client``; returns the handle to undo it.

    The providers default to the global ones (``opentelemetry.metrics.set_meter_provider`` and
    ``opentelemetry.trace.set_tracer_provider``), which record nothing until an SDK is set up.
    Call ``.uninstrument()`` on the result to stop.
    """
    return Instrumentation(client, meter_provider=meter_provider, tracer_provider=tracer_provider)
