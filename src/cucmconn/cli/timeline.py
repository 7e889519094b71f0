"""A load run's timeline: one sample per second of its traffic (``--json``'s ``timeline``).

Each sample is the difference of the run's :class:`~cucmconn.cli.tally.Tally` between two
ticks: commands sent, their outcomes, errors by code, throughput, and p50/p99 latency of the
commands answered in that second, read from the tally's one
:class:`~cucmconn.client.stats.LatencyHistogram` (the difference of its bucket counts), so
the timeline and the totals are the same measurement.  The last sample covers the part-second
up to the end of the traffic phase, or when that is under half a second, the last full
second grows to include it (``seconds`` says how long each sample is).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

from ..client.stats import LatencyHistogram
from .tally import Tally

__all__ = ["Timeline", "histogram_rows"]

_COLUMNS = ("sent", "answered", "errors", "timeouts", "lost", "unavailable", "unexpected")


class Timeline:
    """Samples ``tally`` every ``period`` seconds between :meth:`start` and :meth:`stop`."""

    def __init__(self, tally: Tally, period: float = 1.0) -> None:
        if not period > 0:
            raise ValueError(f"period must be > 0, not {period!r}")
        self._tally = tally
        self._period = period
        self._samples: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._began = 0.0
        self._last_at = 0.0
        self._last = self._read()
        self._before_last = (self._last, self._last_at)

    def _read(self) -> tuple[dict[str, int], Counter[str], tuple[int, ...]]:
        tally = self._tally
        columns = {name: int(getattr(tally, name)) for name in _COLUMNS}
        return columns, Counter(tally.errors_by_code), tally.latency.bucket_counts()

    def start(self) -> None:
        """Begin sampling (on the running loop)."""
        self._began = self._last_at = time.monotonic()
        self._last = self._read()
        self._task = asyncio.create_task(self._run(), name="cucmconn-timeline")

    async def _run(self) -> None:
        tick = 1
        while True:
            await asyncio.sleep(max(0.0, self._began + tick * self._period - time.monotonic()))
            self._sample()
            tick += 1

    def _sample(self) -> None:
        now = time.monotonic()
        columns, codes, buckets = self._read()
        before_columns, before_codes, before_buckets = self._last
        seconds = now - self._last_at
        delta = {name: columns[name] - before_columns[name] for name in _COLUMNS}
        window = LatencyHistogram.from_counts(
            [a - b for a, b in zip(buckets, before_buckets, strict=True)]
        )
        self._samples.append(
            {
                "t": round(now - self._began, 3),
                "seconds": round(seconds, 3),
                "commands": delta["sent"],
                "answered": delta["answered"],
                "errors": delta["errors"],
                "errors_by_code": dict((codes - before_codes).most_common()),
                "timeouts": delta["timeouts"],
                "lost": delta["lost"],
                "unavailable": delta["unavailable"],
                "unexpected": delta["unexpected"],
                "throughput_cps": round(delta["sent"] / seconds, 1) if seconds > 0 else 0.0,
                "latency_p50_ms": round(window.percentile(0.50), 3),
                "latency_p99_ms": round(window.percentile(0.99), 3),
            }
        )
        self._before_last = (self._last, self._last_at)
        self._last, self._last_at = (columns, codes, buckets), now

    async def stop(self) -> None:
        """Stop sampling; the part-second since the last tick becomes the last sample."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        remainder = time.monotonic() - self._last_at
        if self._samples and remainder < self._period / 2:
            # a sliver after the last tick would plot as a spike: fold it into that sample
            self._samples.pop()
            self._last, self._last_at = self._before_last
        if remainder > 0:
            self._sample()

    def samples(self) -> list[dict[str, Any]]:
        """The samples so far, oldest first (plain data for ``--json``)."""
        return list(self._samples)


def histogram_rows(hist: LatencyHistogram) -> list[tuple[float, int]]:
    """``(upper edge ms, count)`` of each non-empty bucket: the latency histogram ``--json``
    reports (``latency_histogram``) and the HTML report draws."""
    return [
        (round(LatencyHistogram.bucket_upper_ms(i), 4), n)
        for i, n in enumerate(hist.bucket_counts())
        if n
    ]
