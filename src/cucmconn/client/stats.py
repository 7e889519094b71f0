"""Client counters and a fixed-size latency histogram.

Hand-written because the usual choices (a list of samples, ``statistics.quantiles``, HDR
histograms) either grow with traffic or add a dependency: a client that answers 10,000 agents
all day must report p50/p99 from constant memory.  Latencies fall into logarithmic buckets
(5 % wide), so a percentile is exact to within one bucket, and ``max`` is kept exactly.
"""

from __future__ import annotations

import math

import msgspec

__all__ = ["ClientStats", "LatencyHistogram", "StatsCounters"]

_MIN_MS = 0.01
_GROWTH = 1.05
_LOG_GROWTH = math.log(_GROWTH)
_BUCKETS = 400  # 0.01 ms * 1.05**400 ~ 3,000 s: anything longer lands in the last bucket


class LatencyHistogram:
    """Counts per logarithmic bucket of milliseconds; constant memory whatever the traffic."""

    __slots__ = ("_counts", "count", "max_ms")

    def __init__(self) -> None:
        self._counts = [0] * _BUCKETS
        self.count = 0
        self.max_ms = 0.0

    def record(self, ms: float) -> None:
        index = 0 if ms <= _MIN_MS else int(math.log(ms / _MIN_MS) / _LOG_GROWTH) + 1
        self._counts[min(index, _BUCKETS - 1)] += 1
        self.count += 1
        if ms > self.max_ms:
            self.max_ms = ms

    def percentile(self, fraction: float) -> float:
        """Upper edge of the bucket holding the ``fraction`` quantile (0.0 when empty)."""
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(fraction * self.count))
        seen = 0
        for index, count in enumerate(self._counts):
            seen += count
            if seen >= rank:
                return min(_MIN_MS * _GROWTH**index, self.max_ms)
        return self.max_ms  # pragma: no cover - the counts always add up to ``count``


class StatsCounters:
    """The live, mutable counters the client bumps on its hot path (plain slots, no locks)."""

    __slots__ = (
        "answered",
        "cancelled",
        "connection_lost",
        "dropped_events",
        "errors",
        "late",
        "latency",
        "malformed",
        "reconnects",
        "sent",
        "service_unavailable",
        "timeouts",
        "unmatched",
    )

    def __init__(self) -> None:
        self.sent = 0
        self.answered = 0
        self.errors = 0
        self.timeouts = 0
        self.late = 0
        self.malformed = 0
        self.reconnects = 0
        self.cancelled = 0
        self.connection_lost = 0
        self.service_unavailable = 0
        self.unmatched = 0
        self.dropped_events = 0
        self.latency = LatencyHistogram()


class ClientStats(msgspec.Struct, frozen=True, gc=False):
    """A snapshot of :class:`StatsCounters`, safe to keep, compare or serialise."""

    sent: int
    """Commands sent (probes included)."""
    answered: int
    """Commands resolved by an event."""
    errors: int
    """Commands answered ``<for>#Error#<CODE>`` (raised as CommandError)."""
    timeouts: int
    """Commands with no answer within their TTL (CommandTimeout)."""
    late: int
    """Answers that came after their command had failed or was cancelled: dropped."""
    malformed: int
    """Messages on the topic that were not a valid event: dropped."""
    reconnects: int
    """Times the transport restored a lost link."""
    cancelled: int
    """Commands whose caller stopped waiting (task cancelled)."""
    connection_lost: int
    """Commands failed with ConnectionLost (link down while in flight or before sending)."""
    service_unavailable: int
    """Commands refused because the connector was OUT_OF_SERVICE (ServiceUnavailable)."""
    unmatched: int
    """Events with a correlation id no command of this client ever had."""
    dropped_events: int
    """Events a full stream dropped (overflow ``"drop_oldest"``)."""
    in_flight: int
    """Commands awaiting their answer at the snapshot."""
    latency_p50_ms: float
    """Median command latency (send to answer) in the current window, milliseconds."""
    latency_p99_ms: float
    """99th percentile of the same."""
    latency_max_ms: float
    """Longest of the same."""

    @classmethod
    def snapshot(cls, counters: StatsCounters, in_flight: int) -> ClientStats:
        """Freeze ``counters`` (and the in-flight count) into a snapshot."""
        hist = counters.latency
        return cls(
            sent=counters.sent,
            answered=counters.answered,
            errors=counters.errors,
            timeouts=counters.timeouts,
            late=counters.late,
            malformed=counters.malformed,
            reconnects=counters.reconnects,
            cancelled=counters.cancelled,
            connection_lost=counters.connection_lost,
            service_unavailable=counters.service_unavailable,
            unmatched=counters.unmatched,
            dropped_events=counters.dropped_events,
            in_flight=in_flight,
            latency_p50_ms=hist.percentile(0.50),
            latency_p99_ms=hist.percentile(0.99),
            latency_max_ms=hist.max_ms,
        )
