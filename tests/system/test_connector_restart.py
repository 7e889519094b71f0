"""A connector restart faster than one Beat (issue 11, case 3), on real ActiveMQ.

``cucmconn emulate`` runs as its own process; it is SIGKILLed and started again 0.5 s later.
The new process knows no agent (LOGOUT on its side).  Before the fix the client kept showing
its agents logged in, with their calls, for as long as anyone watched (42 s observed).  Now
the client must see the restart within 2 s of the new connector consuming the queue, re-read
every agent it believed logged in, and show them LOGOUT; its streams get EventsMayBeMissed.

Two ways: with ActiveMQ's consumer advisories readable (the new consumer is announced), and
without them (as with ACLs), where the answers reveal the new connector: they come from a new
broker connection (``message-id``).  The client is idle after the restart in both: without
advisories it Beats every ``RESTART_BEAT`` (1 s) instead of its 30 s ``keepalive``, and the
Beat's answer is the signal.  (An error that contradicts a logged-in agent also has that agent
re-read: ``test_unreadable_advisories_degrade_to_the_other_signals``.)
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator

import pytest

import cucmconn.client.client as client_module
from cucmconn import Client, Emulator, EventsMayBeMissed
from tests.activemq import BrokerHandle, TenantBrokerHandle

pytestmark = pytest.mark.activemq

AGENTS = [str(62_000 + i) for i in range(6)]
EXTENSIONS = f"{AGENTS[0]}-{AGENTS[-1]}"
DETECT_WITHIN = 2.0


@pytest.fixture
def queue() -> str:
    return f"Restart-{uuid.uuid4().hex[:8]}"


class Process:
    def __init__(self, url: str, queue: str) -> None:
        self.url, self.queue = url, queue
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr = b""

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cucmconn", "emulate", "--url", self.url, "--queue",
            self.queue, "--extensions", EXTENSIONS,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip

    async def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.returncode is None:
                proc.kill()
            self.stderr += await proc.stderr.read() if proc.stderr else b""
            await proc.wait()


@pytest.fixture
async def emulator(activemq: BrokerHandle, queue: str) -> AsyncIterator[Process]:
    process = Process(activemq.stomp_url, queue)
    await process.start()
    yield process
    await process.kill()
    assert b"Traceback" not in process.stderr, process.stderr.decode(errors="replace")[-2000:]


async def _consumed(url: str, queue: str) -> None:
    """Wait until a connector consumes ``queue`` again (a Hello is answered)."""
    async with Client(url, queue=queue, connect_timeout=0.2, handshake_timeout=30.0):
        pass


@pytest.mark.parametrize("advisories", [True, False], ids=["advisories", "no-advisories"])
async def test_restart_faster_than_a_beat_is_detected(
    activemq: BrokerHandle, queue: str, emulator: Process, advisories: bool
) -> None:
    url = activemq.stomp_url
    async with Client(
        url, queue=queue, keepalive=30.0, ttl=2.0, handshake_timeout=30.0, advisories=advisories
    ) as client:
        sessions = [client.agent(ext) for ext in AGENTS]
        await asyncio.gather(*(s.login() for s in sessions))
        caller, callee = sessions[0], sessions[1]
        await caller.make_call(callee.extension)
        assert all(s.logged_in for s in sessions) and caller.calls
        stream = caller.events()
        await emulator.kill()
        killed = time.monotonic()
        await asyncio.sleep(0.5)
        await emulator.start()
        await _consumed(url, queue)  # the new connector is up and consuming
        consuming = time.monotonic()
        while not all(s.state == "LOGOUT" and not s.calls for s in sessions):
            assert time.monotonic() - consuming < 10.0, [repr(s) for s in sessions]
            await asyncio.sleep(0.02)
        detected = time.monotonic()
        stats = client.stats()
        items = []
        while (item := stream.get_nowait()) is not None:
            items.append(item)
    print(
        f"\nFIGURE restart ({'advisories' if advisories else 'no advisories'}): killed, "
        f"restarted 0.5 s later; new connector consuming {consuming - killed:.2f} s after the "
        f"kill; every agent LOGOUT {detected - consuming:.2f} s after that "
        f"({detected - killed:.2f} s after the kill); restarts detected "
        f"{stats.connector_restarts}, resyncs {stats.resyncs}"
    )
    assert detected - consuming <= DETECT_WITHIN
    assert not any(s.logged_in for s in sessions)
    assert stats.connector_restarts >= 1
    assert any(isinstance(item, EventsMayBeMissed) for item in items)


async def test_unreadable_advisories_degrade_to_the_other_signals(
    tenant_activemq: TenantBrokerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a broker with ACLs, a client that may not read the advisories it asks for still
    connects and works (a log line, at most one reconnect), and a connector restart is still
    seen, from the new broker connection behind the connector's answers."""
    monkeypatch.setattr(
        client_module, "ADVISORY_PREFIX", "/topic/ActiveMQ.Advisory.Consumer.Topic."
    )
    first = Emulator(tenant_activemq.url("connector"), licenses=10)
    await first.start()
    second: Emulator | None = None
    client = Client(tenant_activemq.url("crm1"), client_destination="crm1.restart", ttl=5)
    try:
        async with client:
            agent = client.agent("1002")
            await agent.login()
            # ActiveMQ answers the refused SUBSCRIBE with an ERROR frame, which ends the STOMP
            # link: one reconnect during connect(), before anything is in flight, never a loop.
            await asyncio.sleep(3.0)
            assert client.connected and client.stats().reconnects <= 1
            reconnects = client.stats().reconnects
            await first.stop()
            second = Emulator(tenant_activemq.url("connector"), licenses=10)
            await second.start()
            await agent.get_state()  # the application's traffic meets the new connector
            started = time.monotonic()
            while agent.state != "LOGOUT":
                assert time.monotonic() - started < DETECT_WITHIN
                await asyncio.sleep(0.02)
            stats = client.stats()
            assert stats.connector_restarts == 1 and stats.reconnects == reconnects
    finally:
        await first.stop()
        if second is not None:
            await second.stop()
