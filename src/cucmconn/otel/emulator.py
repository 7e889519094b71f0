"""OpenTelemetry metrics of a connector :class:`~cucmconn.emulator.Emulator` (the ``otel`` extra).

Every figure is read from the emulator's public ``stats()`` at collection time, so the
emulator's hot path is not touched.  Metrics (all observed):

* ``cucmconn.emulator.commands`` (counter): commands handled, by ``cucmconn.command``;
* ``cucmconn.emulator.errors`` (counter): ``#Error#`` answers sent, by ``cucmconn.error_code``;
* ``cucmconn.emulator.agents.logged_in`` (gauge);
* ``cucmconn.emulator.calls`` (gauge): calls up;
* ``cucmconn.emulator.licenses.used`` (gauge) and ``cucmconn.emulator.licenses.limit`` (gauge,
  only when the directory has a licence cap);
* ``cucmconn.emulator.in_service`` (gauge, 1 or 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from .version import INSTRUMENTATION_NAME, scope_version

if TYPE_CHECKING:  # only read through its public stats(); the emulator's CLI imports us
    from ..emulator import Emulator, EmulatorStats

__all__ = ["EmulatorInstrumentation", "instrument_emulator"]

_Reader = Callable[["EmulatorStats"], int | None]


class EmulatorInstrumentation:
    """The observed metrics of one emulator; made by :func:`instrument_emulator`."""

    def __init__(self, emulator: Emulator, *, meter_provider: metrics.MeterProvider | None) -> None:
        self._emulator = emulator
        self._active = True
        meter = metrics.get_meter(
            INSTRUMENTATION_NAME, scope_version(), meter_provider=meter_provider
        )
        meter.create_observable_counter(
            "cucmconn.emulator.commands",
            callbacks=[self._commands],
            unit="{command}",
            description="Commands the emulator handled, by command",
        )
        meter.create_observable_counter(
            "cucmconn.emulator.errors",
            callbacks=[self._errors],
            unit="{event}",
            description="#Error# answers the emulator sent, by code",
        )
        for name, unit, description, read in (
            ("agents.logged_in", "{agent}", "Agents logged in", _logged_in),
            ("calls", "{call}", "Calls up", _calls),
            ("licenses.used", "{license}", "Licences in use (one per logged-in agent)", _logged_in),
            ("licenses.limit", "{license}", "The licence cap, when there is one", _limit),
            ("in_service", "1", "1 while CUCM is in service, else 0", _in_service),
        ):
            meter.create_observable_gauge(
                f"cucmconn.emulator.{name}",
                callbacks=[self._gauge(read)],
                unit=unit,
                description=description,
            )

    def uninstrument(self) -> None:
        """Stop observing (the callbacks report nothing from now on)."""
        self._active = False

    def _stats(self) -> EmulatorStats | None:
        return self._emulator.stats() if self._active else None

    def _commands(self, options: CallbackOptions) -> Iterable[Observation]:
        stats = self._stats()
        if stats is None:
            return []
        return [Observation(n, {"cucmconn.command": k}) for k, n in stats.commands_by_name.items()]

    def _errors(self, options: CallbackOptions) -> Iterable[Observation]:
        stats = self._stats()
        if stats is None:
            return []
        return [Observation(n, {"cucmconn.error_code": k}) for k, n in stats.errors_by_code.items()]

    def _gauge(self, read: _Reader) -> Callable[[CallbackOptions], Sequence[Observation]]:
        def callback(options: CallbackOptions) -> Sequence[Observation]:
            stats = self._stats()
            value = read(stats) if stats is not None else None
            return [] if value is None else [Observation(value)]

        return callback


def _logged_in(stats: EmulatorStats) -> int | None:
    return stats.agents_logged_in


def _calls(stats: EmulatorStats) -> int | None:
    return stats.calls_in_progress


def _limit(stats: EmulatorStats) -> int | None:
    return stats.licenses


def _in_service(stats: EmulatorStats) -> int | None:
    return 1 if stats.in_service else 0


def instrument_emulator(
    emulator: Emulator, *, meter_provider: metrics.MeterProvider | None = None
) -> EmulatorInstrumentation:
    """Observe ``emulator``'s figures as OpenTelemetry metrics (global provider by default)."""
    return EmulatorInstrumentation(emulator, meter_provider=meter_provider)
