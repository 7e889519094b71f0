"""The command line against a real ActiveMQ: the emulator says when its link is back, STOMP
pointed at the OpenWire port gets a hint instead of a bare "connection closed", and the load
generator recovers its pairs after the client's link drops."""

from __future__ import annotations

import asyncio
import sys
import uuid

import pytest

from cucmconn import Client, Emulator
from cucmconn.cli.main import EXIT_USAGE, main_async
from cucmconn.cli.traffic import LoadDriver
from tests.activemq import BrokerHandle
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.activemq


async def _line_with(stream: asyncio.StreamReader, words: str, seen: list[str]) -> None:
    while True:
        raw = await stream.readline()
        if not raw:
            raise AssertionError(f"stream ended before {words!r}: {seen}")
        seen.append(raw.decode(errors="replace").rstrip())
        if words in seen[-1]:
            return


async def test_emulate_logs_reconnected_after_a_lost_link(activemq: BrokerHandle) -> None:
    async with FaultProxy(activemq.host, activemq.stomp_port) as proxy:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cucmconn", "emulate", "--url", proxy.url(),
            "--queue", "EdgeReconnect",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stderr is not None
        seen: list[str] = []
        try:
            await asyncio.wait_for(_line_with(proc.stderr, "emulator on", seen), 30)
            proxy.cut()
            await asyncio.wait_for(_line_with(proc.stderr, "lost", seen), 10)
            proxy.heal()
            await asyncio.wait_for(_line_with(proc.stderr, "emulator reconnected to", seen), 30)
        finally:
            proc.terminate()
            await proc.wait()
    lost = next(i for i, line in enumerate(seen) if "lost" in line)
    back = next(i for i, line in enumerate(seen) if "emulator reconnected to" in line)
    assert lost < back, seen


async def test_stomp_at_the_openwire_port_gets_a_hint(
    activemq: BrokerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    openwire = activemq.openwire_url.split("://", 1)[1]
    code = await main_async(
        ["send", "--url", f"stomp://{openwire}", "--no-emulator", "--connect-timeout", "3",
         "Hello"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "OpenWire" in err and "stomp://HOST:61613" in err, err


async def test_load_pairs_recover_after_the_link_drops_on_activemq(
    activemq: BrokerHandle,
) -> None:
    """Issue 11's load-generator case on a real broker: the client's link is cut by a proxy
    mid-run; the calls it left up are released once it is back (so every agent can log out and
    no error answer follows), and the rate after recovery matches the rate before."""
    queue, rate = f"Drop-{uuid.uuid4().hex[:8]}", 200.0
    extensions = [str(3000 + i) for i in range(20)]
    async with (
        FaultProxy(activemq.host, activemq.stomp_port) as proxy,
        Emulator(activemq.stomp_url, queue=queue, extensions="3000-3019", latency=0.01),
        Client(
            proxy.url(),
            queue=queue,
            ttl=2.0,
            handshake_timeout=10.0,
            transport_options={"max_backoff": 0.5},
        ) as client,
    ):
        driver = LoadDriver(client, extensions, rate, scenario="outbound")
        assert (await driver.login_all()).answered == len(extensions)
        driver.start()
        await asyncio.sleep(2.0)
        before = driver.tally.copy()
        proxy.cut()
        await asyncio.sleep(0.5)
        proxy.heal()
        await asyncio.wait_for(client.wait_in_service(), 15.0)
        await asyncio.sleep(1.5)  # the pairs recover
        recovered = driver.tally.copy()
        await asyncio.sleep(2.0)
        after = driver.tally.copy()
        await driver.stop()
        logouts = await driver.logout_all()
    tally = driver.tally
    assert logouts.answered == len(extensions), logouts.errors_by_code
    assert tally.lost > 0 and tally.unexpected == 0 and tally.balanced, tally.line()
    # No cascade: not one INVALID_PARTY (a call left up), and at most one error answer per
    # command the cut cost (a clean-up that raced an event on a loaded broker), not one a cycle.
    assert "INVALID_PARTY" not in tally.errors_by_code, tally.errors_by_code
    assert tally.errors <= tally.lost, f"error answers after the drop: {tally.errors_by_code}"
    rate_before = before.sent / 2.0
    rate_after = (after.sent - recovered.sent) / 2.0
    assert rate_after >= 0.9 * rate_before, (rate_before, rate_after)
    print(
        f"\nFIGURE load-drop: {tally.line()}; {rate_before:.0f}/s before the cut, "
        f"{rate_after:.0f}/s after recovery"
    )
