#!/usr/bin/env python3
"""Soak: sustained command load through a real broker for N minutes, with RSS sampled.

    python scripts/soak.py --minutes 30 --rate 300 --agents 50          # starts its own ActiveMQ
    python scripts/soak.py --url stomp://127.0.0.1:61613 --minutes 5 --json
    python scripts/soak.py --url memory:// --minutes 1                   # no broker at all

A client drives ``--agents`` logged-in agents at ``--rate`` commands/s in total (GetState, and
with ``--calls`` MakeCall + ReleaseCall pairs) against a connector in this same process (the
emulator when it is installed, else the scripted fake from ``tests/fakeconnector.py``).  Every
command's outcome is counted; the run fails (exit 1) when

* the counts do not add up (sent != answered + errors + timeouts + lost + unavailable),
* any command failed other than by the client's documented errors, or is still pending,
* RSS after warm-up grew by more than ``--max-growth-mb``.

It prints one row per sample (or JSON with ``--json``).  ``Tally``, ``LoadDriver`` and
``RssSampler`` are imported by ``tests/system/test_reliability_*.py`` for the short CI versions,
so the figures in docs/reliability.md and this script come from one implementation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file from a checkout: tests/ holds the fallback fake
    sys.path.insert(0, str(ROOT))

from cucmconn import (  # noqa: E402
    Client,
    CommandError,
    CommandTimeout,
    ConnectionLost,
    ServiceUnavailable,
)
from cucmconn.errors import TransportError  # noqa: E402

__all__ = ["LoadDriver", "RssSampler", "Tally", "classify", "main", "rss_bytes"]


# -- accounting --------------------------------------------------------------------------------


@dataclass
class Tally:
    """Every command the application issued, by how it ended.  ``sent`` counts calls made."""

    sent: int = 0
    answered: int = 0
    errors: int = 0
    timeouts: int = 0
    lost: int = 0
    unavailable: int = 0
    unexpected: int = 0
    lost_in_flight: int = 0
    """Of ``lost``: commands on the wire when the link dropped (the rest were refused at once
    because the link was already down)."""
    unexpected_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def accounted(self) -> int:
        return (
            self.answered + self.errors + self.timeouts + self.lost + self.unavailable
        ) + self.unexpected

    @property
    def balanced(self) -> bool:
        return self.sent == self.accounted

    def line(self) -> str:
        in_flight = f" ({self.lost_in_flight:,} in flight)" if self.lost else ""
        unexpected = (
            f" + {self.unexpected:,} UNEXPECTED {self.unexpected_kinds}" if self.unexpected else ""
        )
        return (
            f"{self.sent:,} sent = {self.answered:,} answered + {self.errors:,} errors + "
            f"{self.timeouts:,} timeouts + {self.lost:,} lost{in_flight} + "
            f"{self.unavailable:,} unavailable{unexpected}"
        )

    def copy(self) -> Tally:
        return Tally(**{**asdict(self), "unexpected_kinds": dict(self.unexpected_kinds)})


def classify(exc: BaseException) -> str:
    """The tally column for a command's exception (ConnectionLost is a TransportError: first)."""
    if isinstance(exc, CommandError):
        return "errors"
    if isinstance(exc, CommandTimeout):
        return "timeouts"
    if isinstance(exc, ServiceUnavailable):
        return "unavailable"
    if isinstance(exc, ConnectionLost | TransportError):
        return "lost"
    return "unexpected"


async def counted(tally: Tally, command: Awaitable[Any]) -> Any:
    """Await one command, recording its outcome; returns its event or None."""
    tally.sent += 1
    try:
        result = await command
    except asyncio.CancelledError:
        tally.unexpected += 1
        tally.unexpected_kinds["CancelledError"] = (
            tally.unexpected_kinds.get("CancelledError", 0) + 1
        )
        raise
    except Exception as exc:
        column = classify(exc)
        setattr(tally, column, getattr(tally, column) + 1)
        if column == "lost" and "in flight" in str(exc):
            tally.lost_in_flight += 1
        if column == "unexpected":
            name = type(exc).__name__
            tally.unexpected_kinds[name] = tally.unexpected_kinds.get(name, 0) + 1
        return None
    tally.answered += 1
    return result


# -- load ----------------------------------------------------------------------------------------


class LoadDriver:
    """Paced command load over many agents, one command in flight per agent (as Finesse does).

    The aggregate ``rate`` is split evenly over the agents; an agent that falls behind skips
    ahead instead of bursting, so a stall never turns into a thundering herd afterwards.
    """

    def __init__(
        self,
        client: Client,
        extensions: list[str],
        rate: float,
        *,
        calls: bool = False,
        tally: Tally | None = None,
    ) -> None:
        if rate <= 0 or not extensions:
            raise ValueError("need a positive rate and at least one agent")
        self.client = client
        self.extensions = extensions
        self.rate = rate
        self.calls = calls
        self.tally = tally or Tally()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def login_all(self) -> Tally:
        """Log every agent in (outside the load tally); the login tally is returned."""
        logins = Tally()
        await asyncio.gather(
            *(counted(logins, self.client.agent(e).login()) for e in self.extensions)
        )
        return logins

    def start(self) -> None:
        self._stop.clear()
        period = len(self.extensions) / self.rate
        for index, ext in enumerate(self.extensions):
            offset = period * index / len(self.extensions)
            self._tasks.append(
                asyncio.get_running_loop().create_task(self._agent(ext, period, offset))
            )

    async def stop(self, grace: float = 30.0) -> None:
        """Stop issuing; wait for the commands in flight to end (they all must, by TTL)."""
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        done, pending = await asyncio.wait(tasks, timeout=grace) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        if pending:
            raise AssertionError(f"{len(pending)} agent worker(s) still waiting after {grace:g} s")
        for task in done:
            task.result()

    async def _agent(self, ext: str, period: float, offset: float) -> None:
        loop = asyncio.get_running_loop()
        agent = self.client.agent(ext)
        index = self.extensions.index(ext)
        # Calls go from each even-indexed agent to its odd partner, which never calls: no two
        # agents ever call each other at once (that would be a legitimate INVALID_PARTY).
        partner = index + 1 if index % 2 == 0 and index + 1 < len(self.extensions) else None
        other = self.extensions[partner] if partner is not None else None
        due = loop.time() + offset
        turn = 0
        while not self._stop.is_set():
            delay = due - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                if self._stop.is_set():
                    return
            turn += 1
            if self.calls and other is not None and turn % 4 == 0:
                dialog = await counted(self.tally, agent.make_call(other))
                cid = getattr(dialog, "connection_id", None)
                if cid:
                    await counted(self.tally, agent.release(cid))
                    due += period  # two commands this turn: keep the rate in commands/s
            else:
                await counted(self.tally, agent.get_state())
            due = max(due + period, loop.time())


# -- memory --------------------------------------------------------------------------------------


def rss_bytes() -> int:
    """This process's resident set size (psutil when installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return int(psutil.Process().memory_info().rss)


class RssSampler:
    """RSS every ``interval`` seconds in the background; growth is judged after warm-up."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.sample()

    def sample(self) -> int:
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


# -- the connector peer --------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def connector(url: str, queue: str, extensions: list[str]) -> AsyncIterator[str]:
    """A connector consuming ``queue`` in this process; yields which implementation it is.

    The emulator when this cucmconn has one, else the scripted fake from the test suite.
    """
    from cucmconn.transport import open_transport

    try:
        from cucmconn import Emulator
    except ImportError:
        Emulator = None  # type: ignore[assignment,misc]
    if Emulator is not None:
        emulator = Emulator(url, queue=queue, extensions=f"{extensions[0]}-{extensions[-1]}")
        await emulator.start()
        try:
            yield "emulator"
        finally:
            await emulator.stop()
        return
    from tests.fakeconnector import FakeConnector

    fake = await FakeConnector(open_transport(url), queue=f"/queue/{queue}").start()

    async def forget() -> None:  # the fake records every command: keep its growth out of RSS
        while True:
            await asyncio.sleep(0.5)
            fake.received.clear()

    trimmer = asyncio.get_running_loop().create_task(forget())
    try:
        yield "fake connector (tests/fakeconnector.py)"
    finally:
        trimmer.cancel()
        await fake.stop()


@contextlib.asynccontextmanager
async def broker_url(url: str | None) -> AsyncIterator[str]:
    """``url`` as given, or a LocalActiveMQ started (and stopped) for this run."""
    if url:
        yield url
        return
    from cucmconn.broker import LocalActiveMQ, free_ports

    stomp, openwire = free_ports(2)
    with tempfile.TemporaryDirectory(prefix="cucmconn-soak-") as base:
        broker = LocalActiveMQ(base, stomp_port=stomp, openwire_port=openwire)
        await asyncio.to_thread(broker.start)
        try:
            yield broker.stomp_url
        finally:
            await asyncio.to_thread(broker.stop)


# -- the soak ----------------------------------------------------------------------------------


@dataclass
class SoakResult:
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
        return not self.failures


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
    tag = os.urandom(4).hex()
    queue, destination = f"Soak-{tag}", f"soak-{tag}"
    extensions = [str(50_000 + i) for i in range(agents)]
    async with connector(url, queue, extensions) as which:
        client = Client(url, queue=queue, client_destination=destination, ttl=5.0)
        async with client:
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
        connector=which,
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
        client_stats={k: v for k, v in asdict_struct(stats).items()},
        failures=failures,
    )


async def _probes_done(client: Client, limit: float = 10.0) -> None:
    """Let the client's own Hello/Beat probe in flight (if any) end, by answer or its short
    TTL, so "pending after the run" counts only commands that really never ended."""
    for _ in range(int(limit / 0.05)):  # polled: the client exposes no "table empty" event
        if not client.stats().in_flight:
            return
        await asyncio.sleep(0.05)


def asdict_struct(struct: Any) -> dict[str, Any]:
    import msgspec

    out: dict[str, Any] = msgspec.structs.asdict(struct)
    return out


def default_warmup(seconds: float, rate: float) -> float:
    """The client remembers the last 65,536 finished command ids (to classify stragglers as
    late): RSS rises until that memory is full, then must stay flat."""
    from cucmconn.client.correlation import FINISHED_MEMORY

    return min(seconds / 2, FINISHED_MEMORY / rate + 60.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="broker URL (default: start a local ActiveMQ)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="commands/s in total")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--calls", action="store_true", help="mix in MakeCall/ReleaseCall")
    parser.add_argument("--max-growth-mb", type=float, default=20.0)
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds before RSS is judged (default: until the client's memory of finished "
        "command ids (65,536) is full, +60 s, at most half the run)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args(argv)
    seconds = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else default_warmup(seconds, args.rate)

    async def run() -> SoakResult:
        async with broker_url(args.url) as url:
            say = None if args.json else (lambda text: print(text, flush=True))
            if say:
                say(f"soak {seconds:g} s at {args.rate:g} cmd/s, {args.agents} agents, {url}")
                say(f"{'elapsed':>9}  {'RSS':>11}  outcomes")
            return await soak(
                url,
                seconds=seconds,
                rate=args.rate,
                agents=args.agents,
                calls=args.calls,
                max_growth_mb=args.max_growth_mb,
                warmup=warmup,
                report=say,
            )

    from cucmconn import run as run_loop

    result = run_loop(run(), use_uvloop=not args.no_uvloop)
    if args.json:
        out = asdict(result)
        out["ok"] = result.ok
        print(json.dumps(out, indent=2))
    else:
        print(f"connector: {result.connector}")
        print(f"commands:  {result.tally.line()}  ({result.rate_achieved:,.0f}/s achieved)")
        print(
            f"RSS:       {result.rss_baseline_mb:.1f} MB after warm-up -> "
            f"{result.rss_final_mb:.1f} MB at the end (growth {result.rss_growth_mb:+.1f} MB, "
            f"bound {result.max_growth_mb:g} MB, max {result.rss_max_mb:.1f} MB)"
        )
        stats = result.client_stats
        print(
            f"latency:   p50 {stats['latency_p50_ms']:.2f} ms  p99 {stats['latency_p99_ms']:.2f} ms"
            f"  max {stats['latency_max_ms']:.1f} ms; late {stats['late']}, "
            f"dropped events {stats['dropped_events']}"
        )
        timeline = "  ".join(f"{t:.0f}s:{mb:.1f}" for t, mb in result.rss_timeline_mb)
        print(f"RSS (MB): {timeline}")
        print("PASS" if result.ok else "FAIL: " + "; ".join(result.failures))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
