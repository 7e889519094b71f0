"""``cucmconn load --json`` reports what the run cost: CPU per command and per event over the
traffic window only, and how long logging every agent in took (``login_storm_s``)."""

from __future__ import annotations

import time

import pytest

from cucmconn.cli.load import LoadOptions, measure


async def test_cpu_figures_cover_the_traffic_window_only() -> None:
    cpu_before = time.process_time()
    report = await measure(LoadOptions(url="memory://", agents=20, duration=0.5, progress=False))
    cpu_run = time.process_time() - cpu_before
    assert report["unanswered"] == 0 and report["commands"] > 0
    assert report["cpu_scope"] == "client+emulator+broker"  # the emulator ran in this process
    spent = report["cpu_s_traffic"]
    assert 0 < spent <= cpu_run  # a part of the run's CPU, not more than all of it
    # cpu_s_traffic is rounded to the millisecond; the per-command figure is not.
    assert report["cpu_us_per_command"] == pytest.approx(spent * 1e6 / report["commands"], 0.01)
    # Each command is answered by at least one event, all of which reached the client.
    assert report["events_in_traffic"] >= report["answered"]
    assert report["events_in_traffic"] <= report["client"]["events_received"]
    per_event = spent * 1e6 / report["events_in_traffic"]
    assert report["cpu_us_per_event"] == pytest.approx(per_event, 0.01)
    split = report["cpu_split_us_per_command"]
    tick = 0.02 * 1e6 / report["commands"]  # os.times() counts in clock ticks (10 ms)
    assert split["user"] + split["system"] == pytest.approx(report["cpu_us_per_command"], abs=tick)
    assert 0 < report["login_storm_s"] < report["duration_s"] + 60
