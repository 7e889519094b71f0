"""Counting, latency percentiles and the two faces of a run's result: a table and one JSON object.

The latency histogram is hand-written (log buckets, 2 % resolution) instead of keeping every
sample or pulling in HdrHistogram: a 20-second run at 20,000 commands/s is 400,000 samples,
and a load generator must not grow without bound while it measures.  ``Tally`` is where every
command's outcome lands, so "lost" has exactly one definition: a command that was neither
answered nor refused (it timed out, or the link dropped with its outcome unknown).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from ..errors import (
    CommandError,
    CommandTimeout,
    ConnectionLost,
    ConnectorError,
    ServiceUnavailable,
)

__all__ = ["LatencyHistogram", "Tally", "client_stats", "render_summary", "summary_dict"]

T = TypeVar("T")

_GROWTH = 1.02
_LOG_GROWTH = math.log(_GROWTH)


class LatencyHistogram:
    """Seconds in, milliseconds out; memory is bounded by the number of 2 % buckets used."""

    __slots__ = ("_buckets", "count", "max", "total")

    def __init__(self) -> None:
        self._buckets: Counter[int] = Counter()
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        micros = seconds * 1e6
        self._buckets[int(math.log(micros) / _LOG_GROWTH) if micros > 1.0 else 0] += 1
        self.count += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds

    def percentile_ms(self, pct: float) -> float:
        """Upper edge of the bucket holding the pct-th sample (never under-reports)."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(self.count * pct / 100.0))
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                return min(_GROWTH ** (index + 1), self.max * 1e6) / 1000.0
        return self.max * 1000.0

    def as_dict(self) -> dict[str, float]:
        mean = self.total / self.count * 1000.0 if self.count else 0.0
        return {
            "p50": round(self.percentile_ms(50), 3),
            "p99": round(self.percentile_ms(99), 3),
            "max": round(self.max * 1000.0, 3),
            "mean": round(mean, 3),
        }


class Tally:
    """Outcome of every command a run awaited, plus call and event counters for the display."""

    def __init__(self) -> None:
        self.sent = 0
        self.answered = 0
        self.errors: Counter[str] = Counter()
        self.timeouts = 0
        self.connection_lost = 0
        self.calls_started = 0
        self.calls_completed = 0
        self.calls_failed = 0
        self.latency = LatencyHistogram()
        """Where answers are recorded now: the current phase's histogram."""
        self.setup_latency: LatencyHistogram | None = None
        self.traffic_latency: LatencyHistogram | None = None
        self.phase_started = time.monotonic()
        self.phase_sent = 0
        self.phase_seconds = 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def lost(self) -> int:
        return self.timeouts + self.connection_lost

    async def timed(self, awaitable: Awaitable[T]) -> T:
        """Await one command, file its outcome, and re-raise failures for the caller to handle."""
        self.sent += 1
        started = time.perf_counter()
        try:
            result = await awaitable
        except CommandError as exc:
            self._answered(started)
            self.errors[exc.code] += 1
            raise
        except ServiceUnavailable:
            self._answered(started)
            self.errors["OUT_OF_SERVICE"] += 1
            raise
        except CommandTimeout:
            self.timeouts += 1
            raise
        except ConnectionLost:
            self.connection_lost += 1
            raise
        except ConnectorError as exc:
            self.errors[type(exc).__name__] += 1
            raise
        self._answered(started)
        return result

    def _answered(self, started: float) -> None:
        self.answered += 1
        self.latency.add(time.perf_counter() - started)

    def start_phase(self) -> None:
        """Start the measured (traffic) phase.

        Log-ins come in bursts whose queueing would swamp the traffic's percentiles, so they get
        their own histogram (and log-outs after the phase another): throughput and latency
        describe the traffic alone.
        """
        self.phase_started = time.monotonic()
        self.phase_sent = self.sent
        self.setup_latency, self.latency = self.latency, LatencyHistogram()

    def end_phase(self) -> None:
        self.phase_seconds = time.monotonic() - self.phase_started
        self.phase_sent = self.sent - self.phase_sent
        self.traffic_latency, self.latency = self.latency, LatencyHistogram()

    @property
    def throughput(self) -> float:
        return self.phase_sent / self.phase_seconds if self.phase_seconds > 0 else 0.0


def client_stats(stats: object) -> dict[str, Any]:
    """The client's own counters as plain data, whatever shape ``Client.stats()`` returns."""
    if stats is None:
        return {}
    if isinstance(stats, Mapping):
        return {str(k): v for k, v in stats.items()}
    try:
        import msgspec

        built = msgspec.to_builtins(stats)
        if isinstance(built, dict):
            return built
    except (TypeError, ImportError):
        pass
    slots = getattr(type(stats), "__slots__", ())
    names = slots or [n for n in vars(stats) if not n.startswith("_")]
    return {name: getattr(stats, name) for name in names}


def summary_dict(tally: Tally, *, agents: int, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The machine-readable report: one flat-ish JSON object, keys documented in ``--help``."""
    return {
        "agents": agents,
        "commands": tally.sent,
        "answered": tally.answered,
        "errors": tally.error_count,
        "errors_by_code": dict(tally.errors.most_common()),
        "timeouts": tally.timeouts,
        "connection_lost": tally.connection_lost,
        "lost": tally.lost,
        "calls": tally.calls_completed,
        "calls_failed": tally.calls_failed,
        "duration_s": round(tally.phase_seconds, 3),
        "throughput_cps": round(tally.throughput, 1),
        "latency_ms": (tally.traffic_latency or tally.latency).as_dict(),
        "login_latency_ms": (tally.setup_latency or LatencyHistogram()).as_dict(),
        **extra,
    }


def render_summary(report: Mapping[str, Any], title: str) -> Panel:
    """The closing table a newcomer reads: what ran, how fast, and whether anything went wrong."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column(style="dim")
    lat = report["latency_ms"]
    rows: list[tuple[str, str, str]] = [
        ("agents", f"{report['agents']:,}", "logged in by one client"),
        ("calls", f"{report['calls']:,}", f"{report['calls_failed']:,} did not complete"),
        ("commands", f"{report['commands']:,}", "sent, each awaited for its answer"),
        ("throughput", f"{report['throughput_cps']:,.0f}/s", f"over {report['duration_s']:.1f} s"),
        ("latency p50", f"{lat['p50']:.2f} ms", "command sent -> first answering event"),
        ("latency p99", f"{lat['p99']:.2f} ms", f"max {lat['max']:.2f} ms"),
        ("errors", f"{report['errors']:,}", "connector answered <target>#Error#<code>"),
        ("lost", f"{report['lost']:,}", "no answer: timed out or link dropped"),
    ]
    if "events" in report:
        rows.insert(3, ("events", f"{report['events']:,}", "received by the client"))
    for name, value, note in rows:
        table.add_row(name, value, note)
    parts: list[Any] = [table]
    if report["errors_by_code"]:
        codes = Table("error code", "count", box=None, header_style="bold red")
        for code, count in report["errors_by_code"].items():
            codes.add_row(code, f"{count:,}")
        parts.append(codes)
    ok = report["lost"] == 0
    verdict = "[green]nothing lost[/]" if ok else f"[red]{report['lost']:,} commands lost[/]"
    return Panel(Group(*parts), title=title, subtitle=verdict, expand=False)
