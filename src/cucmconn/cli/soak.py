"""The soak: sustained command load through a broker for minutes, with RSS sampled.

``scripts/soak.py`` is its command line and ``tests/system/test_reliability_soak.py`` its short
CI version; both call :func:`soak` here, so the figures in docs/reliability.md and the script's
come from one implementation.  The connector is the emulator, in this same process; the load is
:class:`~cucmconn.cli.traffic.LoadDriver`'s probe scenario, counted in its
:class:`~cucmconn.cli.tally.Tally`.  A run fails when

* the counts do not add up, or any command failed other than by the client's documented errors;
* a command is still pending after the run;
* RSS after warm-up grew by more than ``max_growth_mb``;
* not every agent logged in.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import msgspec

from ..broker import LocalActiveMQ, free_ports
from ..client import Client
from ..client.correlation import FINISHED_MEMORY
from ..emulator import Emulator
from .tally import Tally
from .traffic import LoadDriver

_resource: ModuleType | None
try:
    import resource as _resource
except ImportError:  # pragma: no cover - Windows has no rusage
    _resource = None

__all__ = [
    "RssSampler",
    "SoakResult",
    "broker_url",
    "default_warmup",
    "peak_rss_mb",
    "rss_bytes",
    "soak",
]


def rss_bytes() -> int:
    """This process's resident set size now (Linux: /proc; elsewhere its peak, from rusage)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux
        return int(peak_rss_mb() * 2**20)


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (0.0 where rusage is missing)."""
    if _resource is None:  # pragma: no cover - Windows
        return 0.0
    peak: int = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


class RssSampler:
    """RSS every ``interval`` seconds in the background; growth is judged after warm-up."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Sample in the background until :meth:`stop`."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop sampling; takes one last sample."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.sample()

    def sample(self) -> int:
        """Take one sample now; returns it in bytes."""
        value = rss_bytes()
        self.samples.append((time.monotonic(), value))
        return value

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def timeline(self, points: int) -> list[tuple[float, float]]:
        """About ``points`` evenly spaced samples as (seconds from the first, MB)."""
        if not self.samples:
            return []
        step = max(1, len(self.samples) // points)
        start = self.samples[0][0]
        picked = self.samples[::step]
        if picked[-1] is not self.samples[-1]:
            picked.append(self.samples[-1])
        return [(round(t - start, 1), round(rss / 2**20, 1)) for t, rss in picked]

    def growth_after(self, warmup: float) -> tuple[int, int, int]:
        """(baseline, final, growth) in bytes: baseline = median of the first quarter after
        warm-up, final = median of the last quarter (medians: one GC pause is not a leak)."""
        start = self.samples[0][0] + warmup
        kept = [rss for t, rss in self.samples if t >= start] or [self.samples[-1][1]]
        quarter = max(1, len(kept) // 4)
        first = sorted(kept[:quarter])[quarter // 2]
        last = sorted(kept[-quarter:])[quarter // 2]
        return first, last, last - first


@contextlib.asynccontextmanager
async def broker_url(url: str | None) -> AsyncIterator[str]:
    """``url`` as given, or a LocalActiveMQ started (and stopped) for this run."""
    if url:
        yield url
        return
    stomp, openwire = free_ports(2)
    with tempfile.TemporaryDirectory(prefix="cucmconn-soak-") as base:
        broker = LocalActiveMQ(base, stomp_port=stomp, openwire_port=openwire)
        await asyncio.to_thread(broker.start)
        try:
            yield broker.stomp_url
        finally:
            await asyncio.to_thread(broker.stop)


@dataclass
class SoakResult:
    """What a soak measured, and why it failed (``failures`` empty: it passed)."""

    seconds: float
    connector: str
    tally: Tally
    logins: Tally
    rate_achieved: float
    rss_baseline_mb: float
    rss_final_mb: float
    rss_growth_mb: float
    rss_max_mb: float
    max_growth_mb: float
    in_flight_after: int
    rss_timeline_mb: list[tuple[float, float]]
    """(seconds since the load started, RSS MB), about 20 points across the run."""
    client_stats: dict[str, Any]
    failures: list[str]

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` (the tallies as their columns)."""
        out = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name not in ("tally", "logins")
        }
        out.update(tally=self.tally.as_dict(), logins=self.logins.as_dict(), ok=self.ok)
        return out


async def soak(
    url: str,
    *,
    seconds: float,
    rate: float,
    agents: int,
    calls: bool,
    max_growth_mb: float,
    warmup: float,
    sample_every: float = 1.0,
    report: Callable[[str], None] | None = None,
) -> SoakResult:
    """Run one soak against ``url`` with the emulator in this process as the connector."""
    tag = os.urandom(4).hex()
    queue, destination = f"Soak-{tag}", f"soak-{tag}"
    extensions = [str(50_000 + i) for i in range(agents)]
    emulator = Emulator(url, queue=queue, extensions=f"{extensions[0]}-{extensions[-1]}")
    async with (
        emulator,
        Client(url, queue=queue, client_destination=destination, ttl=5.0) as client,
    ):
        driver = LoadDriver(client, extensions, rate, calls=calls)
        logins = await driver.login_all()
        sampler = RssSampler(sample_every)
        gc.collect()
        sampler.start()
        started = time.monotonic()
        driver.start()
        next_report = started
        while (elapsed := time.monotonic() - started) < seconds:
            await asyncio.sleep(min(1.0, seconds - elapsed))
            if report is not None and time.monotonic() >= next_report:
                next_report += max(10.0, seconds / 20)
                rss = sampler.samples[-1][1] if sampler.samples else rss_bytes()
                report(f"{elapsed:7.0f} s  {rss / 2**20:8.1f} MB  {driver.tally.line()}")
        await driver.stop()
        elapsed = time.monotonic() - started
        await sampler.stop()
        await _probes_done(client)
        stats = client.stats()
    baseline, final, growth = sampler.growth_after(warmup)
    tally = driver.tally
    failures = []
    if not tally.balanced or tally.unexpected:
        failures.append(f"accounting: {tally.line()}")
    if stats.in_flight:
        failures.append(f"{stats.in_flight} command(s) still pending after the run")
    if growth > max_growth_mb * 2**20:
        failures.append(f"RSS grew {growth / 2**20:.1f} MB > {max_growth_mb:g} MB after warm-up")
    if logins.answered != agents:
        failures.append(f"logins: {logins.line()}")
    return SoakResult(
        seconds=elapsed,
        connector="emulator",
        tally=tally,
        logins=logins,
        rate_achieved=tally.sent / elapsed if elapsed else 0.0,
        rss_baseline_mb=baseline / 2**20,
        rss_final_mb=final / 2**20,
        rss_growth_mb=growth / 2**20,
        rss_max_mb=max(r for _, r in sampler.samples) / 2**20,
        max_growth_mb=max_growth_mb,
        in_flight_after=stats.in_flight,
        rss_timeline_mb=sampler.timeline(20),
        client_stats=msgspec.structs.asdict(stats),
        failures=failures,
    )


async def _probes_done(client: Client, limit: float = 10.0) -> None:
    """Let the client's own Hello/Beat probe in flight (if any) end, by answer or its short
    TTL, so "pending after the run" counts only commands that really never ended."""
    for _ in range(int(limit / 0.05)):  # polled: the client exposes no "table empty" event
        if not client.stats().in_flight:
            return
        await asyncio.sleep(0.05)


def default_warmup(seconds: float, rate: float) -> float:
    """The client remembers the last 65,536 finished command ids (to classify stragglers as
    late): RSS rises until that memory is full, then must stay flat."""
    return min(seconds / 2, FINISHED_MEMORY / rate + 60.0)
