"""Connector-aware failover of the client on two independent brokers (issue 11, case 2).

The vendor's HA: two brokers behind a failover URL, connectors on them.  The split brain the
issue reproduced: A came back while the connector stayed on B, and a new client on
``failover:(A,B)?randomize=false`` reached A, got no answer to Hello and never tried B.  Here
the connector is ``cucmconn emulate`` as its own process, pinned to one broker's plain URL,
so it stays where the test puts it; the client must find it, at start and when it moves.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator

import pytest

from cucmconn import AgentState, Client
from tests.activemq import BrokerHandle, BrokerPair

pytestmark = pytest.mark.activemq

EXTENSIONS = "1000-1009"
CONNECT_TIMEOUT = 1.0


class Connector:
    """``cucmconn emulate`` pinned to one broker."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, broker: BrokerHandle) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cucmconn", "emulate", "--url", broker.stomp_url,
            "--extensions", EXTENSIONS,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip

    async def stop(self) -> bytes:
        proc, self.proc = self.proc, None
        if proc is None:
            return b""
        if proc.returncode is None:
            proc.kill()
        stderr = await proc.stderr.read() if proc.stderr else b""
        await proc.wait()
        return stderr


@pytest.fixture
async def connector() -> AsyncIterator[Connector]:
    running = Connector()
    yield running
    stderr = await running.stop()
    assert b"Traceback" not in stderr, stderr.decode(errors="replace")[-2000:]


def endpoint(client: Client) -> str:
    return str(getattr(client.transport, "endpoint", ""))


async def served_on(client: Client, broker: BrokerHandle, within: float) -> float:
    """Seconds until ``client`` is in service on ``broker`` and a GetState is answered."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if client.in_service and endpoint(client).endswith(f":{broker.stomp_port}"):
            try:
                if isinstance(await client.agent("1000").get_state(ttl=2.0), AgentState):
                    return time.monotonic() - started
            except Exception:  # moving between brokers: try again until the deadline
                pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"not served on {broker.stomp_url} within {within:g} s: {client!r}")


@pytest.mark.parametrize("priority", [False, True], ids=["plain", "priorityBackup"])
async def test_split_brain_a_new_client_finds_the_connector_on_b(
    two_activemq: BrokerPair, connector: Connector, priority: bool
) -> None:
    """A is up with no connector, the connector sits on B: a client starting on
    ``failover:(A,B)?randomize=false`` reaches A, hears nothing, and moves to B.  With
    ``priorityBackup=true`` (the vendor's URL) it then stays on B: the broker it chose
    because a connector answers there is not left for the priority one."""
    a, b = two_activemq.a, two_activemq.b
    await connector.start(b)
    url = two_activemq.failover_url(
        priorityBackup=priority, initialReconnectDelay=100, maxReconnectDelay=500
    )
    started = time.monotonic()
    async with Client(url, connect_timeout=CONNECT_TIMEOUT, handshake_timeout=60.0) as client:
        connected = time.monotonic() - started
        took = await served_on(client, b, 10.0)
        await asyncio.sleep(3.0)  # several priority-probe periods (maxReconnectDelay 0.5 s)
        assert endpoint(client).endswith(f":{b.stomp_port}"), endpoint(client)
        stats = client.stats()
        assert stats.broker_switches == 1 and stats.reconnects == 1, stats
        print(
            f"\nFIGURE failover split-brain ({'priorityBackup' if priority else 'plain'}): "
            f"client on A found the connector on B "
            f"{connected:.2f} s after start ({stats.broker_switches} move(s)); "
            f"first GetState {took:.2f} s later"
        )
    assert a.stomp_port != b.stomp_port


async def test_client_follows_the_connector_from_b_to_a_and_back(
    two_activemq: BrokerPair, connector: Connector
) -> None:
    """The connector moves between the brokers; the client follows it both ways."""
    a, b = two_activemq.a, two_activemq.b
    await connector.start(b)
    url = two_activemq.failover_url(priorityBackup=False, initialReconnectDelay=100)
    async with Client(url, connect_timeout=CONNECT_TIMEOUT, handshake_timeout=60.0) as client:
        await served_on(client, b, 10.0)
        agent = client.agent("1001")
        await agent.login()
        await connector.stop()
        await connector.start(a)  # the connector moved to A
        to_a = await served_on(client, a, 30.0)
        await connector.stop()
        await connector.start(b)  # and back to B
        to_b = await served_on(client, b, 30.0)
        stats = client.stats()
        print(
            f"\nFIGURE failover follow: B->A served {to_a:.2f} s after the move, A->B "
            f"{to_b:.2f} s; {stats.broker_switches} move(s), {stats.resyncs} resync(s), "
            f"connector restarts seen {stats.connector_restarts}"
        )
        assert stats.broker_switches >= 2
        # each new connector instance forgot the agent: a resync showed it logged out
        assert agent.state == "LOGOUT" and not agent.logged_in
