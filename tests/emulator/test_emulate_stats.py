"""``cucmconn emulate --stats-every``: one JSON line per interval, with the emulator's own CPU
per command, on a real ActiveMQ (the emulator in its own process, as benchmarks run it)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from tests.activemq import BrokerHandle


def _send(url: str, queue: str, *command: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "cucmconn", "send", "--url", url, "--no-emulator", "--queue",
         queue, "--connect-timeout", "20", "--json", *command],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_stats_lines_report_cpu_per_command(activemq: BrokerHandle) -> None:
    queue = "StatsEvery"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cucmconn", "emulate", "--url", activemq.stomp_url, "--queue",
         queue, "--extensions", "1000-1009", "--stats-every", "0.3"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _send(activemq.stomp_url, queue, "Hello")  # waits for the emulator to answer
        _send(activemq.stomp_url, queue, "GetState", "1001")
        time.sleep(1.0)  # a few intervals, at least one after the commands
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    lines: list[dict[str, Any]] = [json.loads(x) for x in stderr.splitlines() if x[:1] == "{"]
    assert lines, stderr[-2000:]
    intervals = [line["interval"] for line in lines]
    assert all(i["seconds"] > 0 and i["cpu_s"] >= 0 for i in intervals)
    busy = [i for i in intervals if i["commands"]]
    assert busy, intervals
    for i in busy:  # cpu_s is rounded to the microsecond
        assert abs(i["cpu_us_per_command"] - i["cpu_s"] * 1e6 / i["commands"]) < 1, i
    assert all(i["cpu_us_per_command"] is None for i in intervals if not i["commands"])
    # The intervals add up to what the stats say was executed in all.
    assert sum(i["commands"] for i in intervals) == lines[-1]["stats"]["commands_executed"]
