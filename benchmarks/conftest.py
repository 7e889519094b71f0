"""Shared by the benchmark files: the connector emulator in its own process on the test broker."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager

import pytest
from tests.activemq import BrokerHandle

EMULATED_EXTENSIONS = "1000-10999"
"""Enough for the largest runs (10,000 agents from 1000 up)."""


@contextlib.contextmanager
def emulator_on(url: str, *, queue: str = "Connector1") -> Iterator[str]:
    """``cucmconn emulate`` in its own process on ``url`` (its query carries transport options,
    e.g. ``?tcp_quickack=false``), answering on ``queue``; yields ``url`` once it answers Hello."""
    with _emulator_running(url, queue=queue):
        yield url


@contextlib.contextmanager
def _emulator_running(
    url: str, *, queue: str = "Connector1", prefix: Sequence[str] = (), extra: Sequence[str] = ()
) -> Iterator[subprocess.Popen[str]]:
    """The same, yielding the process: ``prefix`` goes before the interpreter (``taskset -c
    0``), ``extra`` after the emulator's arguments (``--stats-every 0.5``); its stderr is a
    pipe the caller may read once this yields."""
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "cucmconn", "emulate", "--url", url, "--queue", queue,
         "--extensions", EMULATED_EXTENSIONS, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        _wait_for_connector(url, proc, queue)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def emulator_running() -> Callable[..., AbstractContextManager[subprocess.Popen[str]]]:
    """``emulator_running(url, queue=..., prefix=..., extra=...)``: a context manager running
    ``cucmconn emulate`` in its own process for one test, yielding the process (for its pid)."""
    return _emulator_running


ONE_CORE_QUEUE = "EmulatorOneCore"


@pytest.fixture
def one_core_emulator(activemq: BrokerHandle) -> Iterator[subprocess.Popen[str]]:
    """``cucmconn emulate`` pinned to core 0 (``taskset``, when there is one) on queue
    ``ONE_CORE_QUEUE``, printing its ``--stats-every 0.5`` JSON lines on its stderr pipe."""
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    with _emulator_running(
        activemq.stomp_url, queue=ONE_CORE_QUEUE, prefix=pin, extra=["--stats-every", "0.5"]
    ) as proc:
        yield proc


@pytest.fixture(scope="session")
def emulator_process(activemq: BrokerHandle) -> Iterator[str]:
    """``cucmconn emulate`` in its own process, as a real connector would be (the client process
    then holds only the client); yields the broker's STOMP URL once the emulator answers Hello."""
    with emulator_on(activemq.stomp_url) as url:
        yield url


@pytest.fixture(scope="session")
def default_broker_emulators(default_activemq: BrokerHandle) -> Iterator[dict[bool, str]]:
    """Two emulators on the broker with ActiveMQ's default transport options (Nagle on): one
    with TCP_QUICKACK (the transport's default) on queue ``LatencyQuickack``, one without on
    ``LatencyPlain`` (the "before" reference); yields ``{quickack: queue}``."""
    url = default_activemq.stomp_url
    queues = {True: "LatencyQuickack", False: "LatencyPlain"}
    with (
        emulator_on(url, queue=queues[True]),
        emulator_on(f"{url}?tcp_quickack=false", queue=queues[False]),
    ):
        yield queues


def _wait_for_connector(url: str, proc: subprocess.Popen[str], queue: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            assert proc.stderr is not None
            pytest.fail(f"emulator exited {proc.returncode}: {proc.stderr.read()[-2000:]}")
        probe = subprocess.run(
            [sys.executable, "-m", "cucmconn", "send", "--url", url, "--no-emulator",
             "--queue", queue, "--connect-timeout", "2", "--json", "Hello"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        if probe.returncode == 0:
            return
    pytest.fail("the emulator did not answer Hello within 60 s")
