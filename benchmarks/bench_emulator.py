"""The emulator's own cost: ``cucmconn emulate`` alone on one core, fed over ActiveMQ.

Run: ``pytest benchmarks/bench_emulator.py -s -p no:randomly``.

Target (issue 13): the emulator handles at least 20,000 commands/s on one core, so it is never
what limits a user's load test.  The emulator runs pinned to one core (``taskset -c 0``) with
``--stats-every``, which prints, per interval, the commands it executed and its own process CPU
time; a ``cucmconn load`` process (5,000 agents, the call cycle) feeds it through a real
ActiveMQ.  On this 2-core machine the broker and the feeding client share the cores with it,
so the wall-clock rate is set by them, not by the emulator: the row therefore judges what one
core of emulator can take, ``1e6 / cpu_us_per_command`` commands/s, from the CPU the emulator
spent on the commands it executed during the traffic, and prints the CPU split of the three
processes (emulator, client, broker: CPU per command each) that shows where the wall rate went.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import Any

import pytest
from tests.activemq import BrokerHandle
from tests.procstat import cpu_seconds

ONE_CORE_QUEUE = "EmulatorOneCore"  # the one_core_emulator fixture's (benchmarks/conftest.py)

SECONDS = float(os.environ.get("CUCMCONN_BENCH_SECONDS", "10"))
AGENTS = 5_000
TARGET_CPS = 20_000


class _StatsReader(threading.Thread):
    """Collects the emulator's ``--stats-every`` JSON lines from its stderr."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self._proc = proc
        self.intervals: list[dict[str, Any]] = []
        self.other: list[str] = []
        self._new = threading.Event()

    def run(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            if line.startswith("{"):
                self.intervals.append(json.loads(line)["interval"])
                self._new.set()
            else:
                self.other.append(line)

    def wait_for_interval(self) -> None:
        """Wait for the next interval line, so the traffic's last commands are in one."""
        self._new.clear()
        self._new.wait(5)


@pytest.mark.benchmark(group="emulator-one-core")
def test_emulator_one_core(
    benchmark: Any, activemq: BrokerHandle, one_core_emulator: subprocess.Popen[str]
) -> None:
    url, proc = activemq.stomp_url, one_core_emulator
    pinned = proc.args[0] == "taskset"  # type: ignore[index]
    reader = _StatsReader(proc)
    reader.start()
    broker_before, emulator_before = cpu_seconds(activemq.pid), cpu_seconds(proc.pid)

    def feed() -> dict[str, Any]:
        run = subprocess.run(
            [sys.executable, "-m", "cucmconn", "load", "--json", "--no-progress",
             "--no-emulator", "--url", url, "--queue", ONE_CORE_QUEUE, "--agents", str(AGENTS),
             "--duration", str(SECONDS)],
            capture_output=True, text=True, timeout=SECONDS * 3 + 300,
        )  # fmt: skip
        if run.returncode not in (0, 1):
            pytest.fail(f"feeder exit {run.returncode}: {run.stderr[-2000:]}")
        report: dict[str, Any] = json.loads(run.stdout)
        return report

    report = benchmark.pedantic(feed, rounds=1, iterations=1)
    broker_after, emulator_after = cpu_seconds(activemq.pid), cpu_seconds(proc.pid)
    reader.wait_for_interval()
    busy = [i for i in reader.intervals if i["commands"]]
    commands = sum(i["commands"] for i in busy)
    cpu = sum(i["cpu_s"] for i in busy)
    assert commands > 0, f"the emulator executed nothing: {''.join(reader.other)[-2000:]}"
    assert report["unanswered"] == 0, f"{report['unanswered']} commands unanswered"
    emulator_us = cpu * 1e6 / commands
    one_core_cps = 1e6 / emulator_us
    peak_cps = max(i["commands_per_s"] for i in busy)
    total = report["commands"] + 2 * report["logged_in"]  # the log-ins and log-outs too
    split = {
        "emulator": round(emulator_us, 1),
        "client": report["cpu_us_per_command"],
        "broker": (
            round((broker_after - broker_before) * 1e6 / total, 1)
            if broker_before is not None and broker_after is not None
            else None
        ),
        "emulator_whole_run": (
            round((emulator_after - emulator_before) * 1e6 / total, 1)
            if emulator_before is not None and emulator_after is not None
            else None
        ),
    }
    met = one_core_cps >= TARGET_CPS
    benchmark.extra_info.update(
        emulator_cpu_us_per_command=round(emulator_us, 2),
        emulator_one_core_cps=round(one_core_cps),
        emulator_peak_wall_cps=peak_cps,
        feeder_throughput_cps=report["throughput_cps"],
        cpu_us_per_command_split=split,
        pinned=pinned,
        target=f"one core >= {TARGET_CPS:,}/s",
        met=met,
    )
    judged = not benchmark.disabled
    print(
        f"\nemulator{' on one core' if pinned else ''}: {commands:,} commands in the traffic, "
        f"{emulator_us:.1f} us CPU per command -> {one_core_cps:,.0f} commands/s per core; wall "
        f"rate {report['throughput_cps']:,.0f}/s (peak interval {peak_cps:,.0f}/s), set by the "
        f"shared cores; CPU per command: {split}; target >= {TARGET_CPS:,}/s: "
        + (("met" if met else "NOT met") if judged else "not judged (smoke run)")
    )
    if judged:
        assert met, f"one core of emulator takes {one_core_cps:,.0f}/s < {TARGET_CPS:,}/s"
