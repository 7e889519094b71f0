"""``cucmconn emulate`` as a connector instance on two independent brokers (issue 11, case 2).

The vendor's HA runs two brokers behind ``failover:(A,B)?randomize=false&priorityBackup=true``
and connectors on them.  A connector instance must consume the command queue on A, the
priority broker, whenever A is up: it moves to B when A dies and back to A once A returns.
The emulator runs as its own process (``python -m cucmconn emulate``), as a deployment runs it;
which broker it serves is read from outside, by a Hello sent to each broker's queue.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cucmconn.errors import ConnectorError
from cucmconn.transport import Message, open_transport
from tests.activemq import BrokerHandle, BrokerPair

pytestmark = pytest.mark.activemq

SERVED_WITHIN = 20.0  # s: a failover or a return must show within this
PROBE_TTL = 1.0


async def _answers(broker: BrokerHandle, within: float) -> float | None:
    """Seconds until a Hello sent to ``broker``'s Connector1 is answered; None if not within.

    Each Hello lives ``PROBE_TTL`` (the broker discards it after), and each probe listens on
    its own topic, so a stale Hello can never answer a later probe.
    """
    topic = f"/topic/probe-{uuid.uuid4().hex[:10]}"
    started = time.monotonic()
    deadline = started + within
    answered = asyncio.Event()

    def on_answer(message: Message) -> None:
        answered.set()

    while time.monotonic() < deadline:
        transport = open_transport(broker.stomp_url, reconnect=False)
        try:
            await transport.connect()
            await transport.subscribe(topic, on_answer)
            while time.monotonic() < deadline:
                await transport.send(
                    "/queue/Connector1",
                    "",
                    jms_type=f"Hello#{topic.removeprefix('/topic/')}",
                    reply_to=topic,
                    ttl=PROBE_TTL,
                )
                try:
                    await asyncio.wait_for(answered.wait(), min(0.5, deadline - time.monotonic()))
                except TimeoutError:
                    continue
                return time.monotonic() - started
        except (ConnectorError, OSError):
            await asyncio.sleep(0.2)  # that broker is down: try again until the deadline
        finally:
            await transport.close()
    return None


def _emulate(url: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cucmconn",
                "emulate",
                "--url",
                url,
                "--extensions",
                "1000-1009",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )


async def test_emulator_goes_to_the_backup_and_back_to_the_priority_broker(
    two_activemq: BrokerPair, tmp_path: Path
) -> None:
    a, b = two_activemq.a, two_activemq.b
    url = two_activemq.failover_url(initialReconnectDelay=100, maxReconnectDelay=1000)
    log = tmp_path / "emulate.log"
    proc = _emulate(url, log)
    try:
        assert await _answers(a, SERVED_WITHIN) is not None, "never served on A, the priority"
        assert await _answers(b, 2.0) is None, "served on B while A is up"
        a.kill()
        to_backup = await _answers(b, SERVED_WITHIN)
        assert to_backup is not None, "did not move to B when A died"
        a.start()
        back = await _answers(a, SERVED_WITHIN)
        assert back is not None, "did not return to A, the priority broker, once it was back"
        assert await _answers(b, 2.0) is None, "still served on B after returning to A"
        assert proc.poll() is None, "the emulator process exited"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-2000:]
    reconnects = [line for line in text.splitlines() if "reconnected" in line]
    assert len(reconnects) >= 2, text[-2000:]  # to B, then back to A: each said in the log
    assert f":{a.stomp_port}" in reconnects[-1], reconnects
    print(
        f"\nFIGURE emulator-failover: A killed -> served on B after {to_backup:.2f} s; "
        f"A started -> served on A again after {back:.2f} s; log: {reconnects[-1].strip()}"
    )


async def test_emulator_started_while_the_priority_is_down_moves_to_it_when_it_comes(
    two_activemq: BrokerPair, tmp_path: Path
) -> None:
    a, b = two_activemq.a, two_activemq.b
    a.kill()
    url = two_activemq.failover_url(initialReconnectDelay=100, maxReconnectDelay=1000)
    proc = _emulate(url, tmp_path / "emulate.log")
    try:
        assert await _answers(b, SERVED_WITHIN) is not None, "did not start on B, A being down"
        a.start()
        back = await _answers(a, SERVED_WITHIN)
        assert back is not None, "did not move to A once it came up"
        assert await _answers(b, 2.0) is None, "still served on B"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print(f"\nFIGURE emulator-failover [A down at start]: on A {back:.2f} s after A started")
