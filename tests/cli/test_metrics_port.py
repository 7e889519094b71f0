"""``--metrics-port``: ``/metrics`` scraped over HTTP while ``load`` and ``emulate`` run, and
parsed with prometheus_client's own parser."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

URL = re.compile(r"metrics at (http://127\.0\.0\.1:\d+/metrics)")


def _start(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cucmconn", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _metrics_url(proc: subprocess.Popen[str]) -> str:
    """Read stderr until the process says where its metrics are."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        found = URL.search(line)
        if found:
            return found.group(1)
    raise AssertionError(f"no metrics URL on stderr: {''.join(seen)[-2000:]}")


def _scrape(url: str) -> dict[str, list[Sample]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    out: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def _total(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture
def stop_all() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_load_serves_metrics_while_it_runs(stop_all: list[subprocess.Popen[str]]) -> None:
    proc = _start(
        "load", "--agents", "20", "--duration", "4", "--json", "--no-progress",
        "--metrics-port", "0",
    )  # fmt: skip
    stop_all.append(proc)
    url = _metrics_url(proc)
    deadline = time.monotonic() + 3
    samples = _scrape(url)
    while _total(samples, "cucmconn_client_commands_total", cucmconn_command="MakeCall") == 0:
        assert time.monotonic() < deadline, "no MakeCall counted while the run was going"
        time.sleep(0.2)
        samples = _scrape(url)
    assert proc.poll() is None  # scraped during the run, not after it
    answered = _total(samples, "cucmconn_client_commands_total", cucmconn_outcome="answered")
    assert answered > 0
    assert _total(samples, "cucmconn_client_commands_total", cucmconn_command="Login") == 20
    duration = samples["cucmconn_client_command_duration_seconds_count"]
    assert {s.labels["cucmconn_command"] for s in duration} >= {"Login", "MakeCall"}
    assert any(
        s.labels.get("le") == "0.01"
        for s in samples["cucmconn_client_command_duration_seconds_bucket"]
    )
    assert _total(samples, "cucmconn_client_events_total", cucmconn_event_type="AgentState") > 0
    assert _total(samples, "cucmconn_client_connector_in_service") == 1
    assert _total(samples, "cucmconn_client_agents_logged_in") == 20
    for name in (
        "cucmconn_client_commands_in_flight",
        "cucmconn_client_events_dropped_total",
        "cucmconn_client_events_malformed_total",
        "cucmconn_client_reconnects_total",
    ):
        assert name in samples, name
    # the emulator runs in the load's process on memory://: its own metrics are there too
    assert _total(samples, "cucmconn_emulator_commands_total", cucmconn_command="Login") == 20
    assert _total(samples, "cucmconn_emulator_agents_logged_in") == 20
    assert _total(samples, "cucmconn_emulator_licenses_used") == 20
    assert "cucmconn_emulator_calls" in samples
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    report = json.loads(out)
    assert report["unanswered"] == 0


def test_emulate_serves_its_metrics(stop_all: list[subprocess.Popen[str]]) -> None:
    proc = _start("emulate", "--url", "memory://", "--licenses", "7", "--metrics-port", "0")
    stop_all.append(proc)
    samples = _scrape(_metrics_url(proc))
    assert _total(samples, "cucmconn_emulator_in_service") == 1
    assert _total(samples, "cucmconn_emulator_licenses_limit") == 7
    assert _total(samples, "cucmconn_emulator_agents_logged_in") == 0
    assert "cucmconn_emulator_calls" in samples
    proc.terminate()
    proc.wait(10)
