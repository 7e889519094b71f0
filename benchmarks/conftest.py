"""Shared by the benchmark files: the connector emulator in its own process on the test broker."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from tests.activemq import BrokerHandle

EMULATED_EXTENSIONS = "1000-10999"
"""Enough for the largest runs (10,000 agents from 1000 up)."""


@pytest.fixture(scope="session")
def emulator_process(activemq: BrokerHandle) -> Iterator[str]:
    """``cucmconn emulate`` in its own process, as a real connector would be (the client process
    then holds only the client); yields the broker's STOMP URL once the emulator answers Hello."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cucmconn", "emulate", "--url", activemq.stomp_url,
         "--extensions", EMULATED_EXTENSIONS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        _wait_for_connector(activemq.stomp_url, proc)
        yield activemq.stomp_url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_for_connector(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            assert proc.stderr is not None
            pytest.fail(f"emulator exited {proc.returncode}: {proc.stderr.read()[-2000:]}")
        probe = subprocess.run(
            [sys.executable, "-m", "cucmconn", "send", "--url", url, "--no-emulator",
             "--connect-timeout", "2", "--json", "Hello"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        if probe.returncode == 0:
            return
    pytest.fail("the emulator did not answer Hello within 60 s")
