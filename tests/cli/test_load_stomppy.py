"""``cucmconn load`` over the stomp.py adapter (``stomppy://``) on a real ActiveMQ, the emulator
in the same process and on the same scheme: every command answered, nothing lost.  The same
path as benchmarks/bench_load.py's ``client-cpu-stomppy`` peer, kept small."""

from __future__ import annotations

import uuid

import pytest

from cucmconn.cli.main import EXIT_OK
from tests.activemq import BrokerHandle
from tests.cli.conftest import cli, one_json


@pytest.mark.activemq
async def test_load_over_stomppy_answers_every_command(
    activemq: BrokerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    url = activemq.stomp_url.replace("stomp", "stomppy", 1)
    queue = f"LoadStomppy{uuid.uuid4().hex[:8]}"  # nobody else's emulator answers here
    code, out, err = await cli(
        capsys, "load", "--url", url, "--queue", queue, "--emulate", "--agents", "20",
        "--duration", "1", "--json", "--no-progress",
    )  # fmt: skip
    report = one_json(out)
    assert code == EXIT_OK, err[-2000:]
    assert report["emulated"] is True
    assert report["agents"] == report["logged_in"] == 20
    assert report["commands"] > 0  # traffic ran, log-ins apart
    assert report["answered"] == report["commands"]
    assert report["unanswered"] == report["lost"] == report["timeouts"] == 0
    assert report["errors"] == 0
    assert report["url"].startswith("stomppy://")
