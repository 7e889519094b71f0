"""Client counters and a fixed-size latency histogram.

A client that answers 10,000 agents all day must report p50/p99 from constant memory (why not
a library: docs/architecture.md).  Latencies fall into logarithmic buckets
(5 % wide), so a percentile is exact to within one bucket, and ``max`` is kept exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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

    def bucket_counts(self) -> tuple[int, ...]:
        """The count of each bucket (bucket ``i`` ends at :meth:`bucket_upper_ms`); the
        difference of two such tuples is a window's distribution (see :meth:`from_counts`)."""
        return tuple(self._counts)

    @staticmethod
    def bucket_upper_ms(index: int) -> float:
        """Upper edge of bucket ``index``, milliseconds."""
        return _MIN_MS * _GROWTH**index

    @classmethod
    def from_counts(cls, counts: Sequence[int]) -> LatencyHistogram:
        """A histogram holding ``counts`` per bucket (e.g. one second's, as the difference of
        two :meth:`bucket_counts`); its ``max_ms`` is the top non-empty bucket's upper edge."""
        if len(counts) != _BUCKETS or any(n < 0 for n in counts):
            raise ValueError(f"need {_BUCKETS} non-negative bucket counts")
        hist = cls()
        hist._counts = list(counts)
        hist.count = sum(counts)
        top = max((i for i, n in enumerate(counts) if n), default=None)
        hist.max_ms = cls.bucket_upper_ms(top) if top is not None else 0.0
        return hist


class StatsCounters:
    """The live, mutable counters the client bumps on its hot path (plain slots, no locks)."""

    __slots__ = (
        "answered",
        "broker_switches",
        "cancelled",
        "connection_lost",
        "connector_restarts",
        "dropped_events",
        "errors",
        "events_received",
        "issued",
        "late",
        "latency",
        "malformed",
        "reconnects",
        "resyncs",
        "sent",
        "service_unavailable",
        "throttle_episodes",
        "timed_out_unsent",
        "timeouts",
        "unknown_agent",
        "unmatched",
    )

    def __init__(self) -> None:
        self.issued = 0
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
        self.unknown_agent = 0
        self.timed_out_unsent = 0
        self.throttle_episodes = 0
        self.connector_restarts = 0
        self.resyncs = 0
        self.broker_switches = 0
        self.events_received = 0
        self.latency = LatencyHistogram()

    def count_outcome(self, outcome: str) -> None:
        """Count one command's end under its outcome (``answered``, ``error``, ``timeout``,
        ``unavailable``, ``connection_lost``; anything else is ``cancelled``): the one mapping
        from an outcome to its counter, for commands that ended in the pending table and for
        those that ended before they got an id."""
        if outcome == "answered":
            self.answered += 1
        elif outcome == "error":
            self.errors += 1
        elif outcome == "timeout":
            self.timeouts += 1
        elif outcome == "unavailable":
            self.service_unavailable += 1
        elif outcome == "connection_lost":
            self.connection_lost += 1
        else:
            self.cancelled += 1


class ClientStats(msgspec.Struct, frozen=True, gc=False):
    """A snapshot of :class:`StatsCounters`, safe to keep, compare or serialise.

    Every command issued (``issued``: accepted by ``send``, plus the client's own Hello/Beat
    probes) ends once, counted by outcome in ``answered``, ``errors``, ``timeouts``,
    ``service_unavailable``, ``connection_lost`` or ``cancelled``, or is still ``in_flight`` /
    queued; ``sent`` counts frames actually written, so a command that timed out before it
    was written (``timed_out_unsent``) is in ``timeouts`` but not in ``sent``.
    """

    issued: int
    """Commands accepted by ``send`` plus the client's Hello/Beat probes."""
    sent: int
    """Commands handed to the transport (probes included); a transport may still drop one
    whose deadline passes in its own buffer, never writing it late."""
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
    unknown_agent: int = 0
    """Events for an agent this client has no session for (routed to ``events()`` only)."""
    timed_out_unsent: int = 0
    """Of ``timeouts``: commands whose deadline passed before they could be written."""
    throttle_episodes: int = 0
    """Times the broker started holding our writes (producer flow control)."""
    flow_control_held_s: float = 0.0
    """Seconds the transport spent waiting for the broker to take our writes, in all."""
    connector_restarts: int = 0
    """Connector restarts detected (advisories, a new producer id, a contradicting error)."""
    resyncs: int = 0
    """Resyncs run (GetState of every logged-in agent after a reconnect, outage or restart)."""
    broker_switches: int = 0
    """Times the client moved to another broker because no connector answered on this one."""
    events_received: int = 0
    """Messages that arrived on the client's topic (events, malformed ones included)."""

    @classmethod
    def snapshot(
        cls, counters: StatsCounters, in_flight: int, flow_control_held: float = 0.0
    ) -> ClientStats:
        """Freeze ``counters`` (plus the transport's flow-control time) into a snapshot."""
        hist = counters.latency
        return cls(
            issued=counters.issued,
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
            unknown_agent=counters.unknown_agent,
            timed_out_unsent=counters.timed_out_unsent,
            throttle_episodes=counters.throttle_episodes,
            flow_control_held_s=round(flow_control_held, 3),
            connector_restarts=counters.connector_restarts,
            resyncs=counters.resyncs,
            broker_switches=counters.broker_switches,
            events_received=counters.events_received,
            latency_p50_ms=hist.percentile(0.50),
            latency_p99_ms=hist.percentile(0.99),
            latency_max_ms=hist.max_ms,
        )
