"""The command line against a real ActiveMQ: the emulator says when its link is back, and STOMP
pointed at the OpenWire port gets a hint instead of a bare "connection closed"."""

from __future__ import annotations

import asyncio
import sys

import pytest

from cucmconn.cli.main import EXIT_USAGE, main_async
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
