"""Drift: 30 minutes at half the measured maximum rate; the first and last 5 minutes must agree.

Run (slow, out of CI): ``pytest benchmarks/bench_drift.py -m slow -s``.
``CUCMCONN_DRIFT_SECONDS`` shortens the run (the windows compared stay 5 minutes, or a sixth of
the run when it is shorter than 30 minutes).

Target (issue 13): a 30-minute run at half the measured maximum rate; the first and last 5
minutes agree within 5 % on throughput and on p99, and RSS is flat.  One fresh process (``python
-c``) holds the client, the in-process broker and the emulator on memory:// (5,000 agents, the
load driver's call cycle): it first runs 20 s unthrottled to measure the maximum, then runs at
half of it, while an observer (the client's public ``add_observer``) files every finished
command's latency into one histogram per minute (and one each for the first and the last 5
minutes, whose p99 are compared) and RSS is sampled each minute.  "Flat" RSS:
the last window's RSS is within 5 % (or 8 MB) of the RSS at the end of the first window.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

SECONDS = float(os.environ.get("CUCMCONN_DRIFT_SECONDS", "1800"))
AGENTS = 5_000
TOLERANCE = 0.05
RSS_SLACK_MB = 8.0

_RUN = """
import asyncio, json, sys, time
from cucmconn import Client, Emulator
from cucmconn.cli.soak import rss_bytes
from cucmconn.cli.traffic import LoadDriver
from cucmconn.client.observe import ClientObserver
from cucmconn.client.stats import LatencyHistogram

SECONDS, AGENTS, WINDOW = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
COMPARED = int(sys.argv[4]) * WINDOW  # seconds at each end whose p99 is compared
EXTENSIONS = [str(1000 + i) for i in range(AGENTS)]

class Windows(ClientObserver):
    def __init__(self):
        self.start = time.monotonic()
        self.windows = []
        self.first, self.last = LatencyHistogram(), LatencyHistogram()

    def _window(self):
        index = int((time.monotonic() - self.start) // WINDOW)
        while len(self.windows) <= index:
            self.windows.append({"answered": 0, "failed": 0, "hist": LatencyHistogram()})
        return self.windows[index]

    def command_finished(self, finished):
        window = self._window()
        if finished.outcome == "answered":
            window["answered"] += 1
            ms = finished.duration * 1000
            window["hist"].record(ms)
            elapsed = time.monotonic() - self.start
            if elapsed < COMPARED:
                self.first.record(ms)
            elif SECONDS - COMPARED <= elapsed < SECONDS:
                self.last.record(ms)
        else:
            window["failed"] += 1

async def sample_rss(windows, stop):
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), WINDOW / 2)
        except asyncio.TimeoutError:
            windows._window()["rss_mb"] = rss_bytes() / 2**20

async def main():
    async with Emulator("memory://", extensions=f"1000-{999 + AGENTS}"):
        async with Client("memory://", max_in_flight=max(1024, AGENTS), ttl=10.0) as client:
            probe = LoadDriver(client, EXTENSIONS, scenario="outbound")
            await probe.login_all()
            await probe.run(20.0)
            maximum = probe.tally.throughput
            driver = LoadDriver(client, EXTENSIONS, maximum / 2, scenario="outbound")
            windows = Windows()
            client.add_observer(windows)
            stop = asyncio.Event()
            sampler = asyncio.ensure_future(sample_rss(windows, stop))
            await driver.run(SECONDS)
            stop.set()
            await sampler
            await probe.logout_all()
    full = [w for w in windows.windows[: int(SECONDS // WINDOW)]]
    print(json.dumps({
        "maximum_cps": maximum, "rate_cps": maximum / 2,
        "first_p99_ms": windows.first.percentile(0.99),
        "last_p99_ms": windows.last.percentile(0.99),
        "windows": [
            {"cps": w["answered"] / WINDOW, "failed": w["failed"],
             "p99_ms": w["hist"].percentile(0.99), "rss_mb": w.get("rss_mb")}
            for w in full
        ],
    }))

asyncio.run(main())
"""


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 900)  # the suite's 300 s default would end the run at 5 minutes
@pytest.mark.benchmark(group="drift")
def test_drift_half_rate(benchmark: Any) -> None:
    window = 60.0 if SECONDS >= 1800 else max(SECONDS / 30, 1.0)
    compared = max(1, round(300 / window)) if SECONDS >= 1800 else 5

    def run() -> dict[str, Any]:
        proc = subprocess.run(
            [sys.executable, "-c", _RUN, str(SECONDS), str(AGENTS), str(window), str(compared)],
            capture_output=True, text=True, timeout=SECONDS + 600,
        )  # fmt: skip
        if proc.returncode != 0:
            pytest.fail(f"drift run exit {proc.returncode}: {proc.stderr[-2000:]}")
        report: dict[str, Any] = json.loads(proc.stdout)
        return report

    report = benchmark.pedantic(run, rounds=1, iterations=1)
    windows = report["windows"]
    first, last = windows[:compared], windows[-compared:]
    figures = {
        "first_cps": _mean([w["cps"] for w in first]),
        "last_cps": _mean([w["cps"] for w in last]),
        "first_p99_ms": report["first_p99_ms"],
        "last_p99_ms": report["last_p99_ms"],
        "rss_first_mb": first[-1]["rss_mb"],
        "rss_last_mb": last[-1]["rss_mb"],
    }
    benchmark.extra_info.update(report, **figures)
    cps_drift = abs(figures["last_cps"] / figures["first_cps"] - 1)
    p99_drift = abs(figures["last_p99_ms"] / figures["first_p99_ms"] - 1)
    rss_growth = figures["rss_last_mb"] - figures["rss_first_mb"]
    print(
        f"\ndrift: max {report['maximum_cps']:,.0f}/s, run at {report['rate_cps']:,.0f}/s for "
        f"{SECONDS:g} s; first vs last {compared} windows of {window:g} s: "
        f"{figures['first_cps']:,.0f} vs {figures['last_cps']:,.0f}/s ({cps_drift:.1%}), p99 "
        f"{figures['first_p99_ms']:.1f} vs {figures['last_p99_ms']:.1f} ms ({p99_drift:.1%}), "
        f"RSS {figures['rss_first_mb']:.0f} -> {figures['rss_last_mb']:.0f} MB"
    )
    print("per window (cps, p99 ms, RSS MB):")
    print(
        "  "
        + "; ".join(f"{w['cps']:,.0f} {w['p99_ms']:.1f} {w['rss_mb'] or 0:.0f}" for w in windows)
    )
    assert sum(w["failed"] for w in windows) == 0
    assert cps_drift <= TOLERANCE, f"throughput drifted {cps_drift:.1%}"
    assert p99_drift <= TOLERANCE, f"p99 drifted {p99_drift:.1%}"
    assert rss_growth <= max(RSS_SLACK_MB, TOLERANCE * figures["rss_first_mb"])
