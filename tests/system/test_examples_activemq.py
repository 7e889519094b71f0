"""The example services' own tests (examples/*/test_*.py), and the recorded-connector fixture's,
against a real ActiveMQ.

Run as their user would: ``pytest examples/<name> --cucmconn-url stomp://...`` in a subprocess,
so every test's ``connector`` fixture starts its emulator on that broker (on a command queue of
its own) and the services' clients talk to it through ActiveMQ.  On memory://, scripts/test.sh
runs the same tests (``pytest examples``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.activemq import BrokerHandle

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.parent.name for p in (ROOT / "examples").glob("*/test_*.py"))


def test_every_example_service_has_tests() -> None:
    assert EXAMPLES == ["click_to_dial", "screen_pop", "wallboard"]


def _pytest_on(url: str, target: str, minimum: int) -> None:
    """``pytest <target> --cucmconn-url <url>`` in a subprocess: all pass, none skipped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            target,
            "--cucmconn-url",
            url,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    out = result.stdout
    assert result.returncode == 0, out[-6000:] + result.stderr[-2000:]
    summary = re.search(r"(\d+) passed", out)
    assert summary is not None and int(summary.group(1)) >= minimum, out[-2000:]
    assert "failed" not in out.splitlines()[-1] and "skipped" not in out.splitlines()[-1]


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_tests_pass_on_activemq(example: str, activemq: BrokerHandle) -> None:
    _pytest_on(activemq.stomp_url, f"examples/{example}", minimum=5)


def test_a_recorded_connector_serves_through_activemq(activemq: BrokerHandle) -> None:
    # connector_from_trace with --cucmconn-url: the Replayer on the broker, a queue of its own.
    _pytest_on(activemq.stomp_url, "tests/testing/test_trace_connector.py", minimum=2)
