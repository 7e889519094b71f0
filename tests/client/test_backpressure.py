"""TTL under backpressure (issue 11, case 1) on memory:// with a link the test can block.

``ThrottledTransport`` keeps the transport contract the client relies on: ``send(...,
deadline=)`` never writes after the deadline and raises TimeoutError (nothing written) when it
passes while the link is blocked; ``write_blocked`` and ``flow_control_held`` report the block.
It records every write with its time and deadline so the tests can check none was late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from cucmconn import AgentState, Client, ClientStats, CommandTimeout
from cucmconn.client import ClientObserver
from cucmconn.client.slots import DeadlineWheel, Slots
from cucmconn.transport.memory import MemoryTransport
from tests.fakeconnector import FakeConnector
from tests.waiting import waiter

DEST = "crm-bp"
until = waiter(5.0)
SLACK = 0.15
"""Scheduling noise allowed past a deadline: two sweeper buckets plus a shared, busy box."""


class ThrottledTransport(MemoryTransport):
    """A memory transport whose writing the test blocks and unblocks."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked = False
        self._open = asyncio.Event()
        self._open.set()
        self.held = 0.0
        self.writes: list[tuple[float, float | None, str | None]] = []
        self._taken = asyncio.Event()  # clear: the broker stopped taking what reached it
        self._taken.set()

    @property
    def write_blocked(self) -> bool:
        return self.blocked

    @property
    def flow_control_held(self) -> float:
        return self.held

    def block(self) -> None:
        self.blocked = True
        self._open.clear()

    def unblock(self) -> None:
        self.blocked = False
        self._open.set()

    def withhold(self) -> None:
        """Writes still succeed (the kernel's buffers take them) but the broker no longer
        takes them: ``flush`` waits, as a receipt behind them would not come."""
        self._taken.clear()

    def take(self) -> None:
        self._taken.set()

    async def flush(self) -> None:
        await super().flush()
        await self._taken.wait()

    async def send(
        self,
        destination: str,
        body: str,
        *,
        deadline: float | None = None,
        headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        loop = asyncio.get_running_loop()
        if self.blocked:
            started = loop.time()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._open.wait()
            except TimeoutError:
                raise TimeoutError("link blocked until the send deadline") from None
            finally:
                self.held += loop.time() - started
        if deadline is not None and loop.time() >= deadline:
            raise TimeoutError("send deadline passed")
        self.writes.append((loop.time(), deadline, options.get("jms_type")))
        await super().send(destination, body, headers=headers, **options)


class ServiceChanges(ClientObserver):
    def __init__(self) -> None:
        self.seen: list[tuple[bool, str]] = []

    def service_changed(self, in_service: bool, reason: str) -> None:
        self.seen.append((in_service, reason))


def make_client(transport: ThrottledTransport, **options: Any) -> Client:
    options.setdefault("ttl", 0.25)
    options.setdefault("connect_timeout", 0.1)
    options.setdefault("handshake_timeout", 2.0)
    return Client(transport=transport, client_destination=DEST, **options)


@contextlib.asynccontextmanager
async def beating(
    fake: FakeConnector,
) -> AsyncIterator[tuple[Client, ThrottledTransport, ServiceChanges]]:
    """A client Beating every 50 ms through a ``ThrottledTransport``, its service changes
    recorded; yields once its first Beat reached the connector."""
    transport = ThrottledTransport()
    changes = ServiceChanges()
    async with make_client(transport, keepalive=0.05) as client:
        client.add_observer(changes)
        await until(lambda: len(fake.commands("Beat")) >= 1)
        yield client, transport, changes


def accounted(stats: ClientStats) -> int:
    """Every issued command, counted once by its outcome (or still in flight)."""
    return (
        stats.answered
        + stats.errors
        + stats.timeouts
        + stats.service_unavailable
        + stats.connection_lost
        + stats.cancelled
        + stats.in_flight
    )


async def test_every_command_ends_by_its_deadline_while_the_link_is_blocked(
    fake: FakeConnector,
) -> None:
    transport = ThrottledTransport()
    async with make_client(transport) as client:
        loop = asyncio.get_running_loop()
        agents = [client.agent(str(4000 + i)) for i in range(100)]
        await asyncio.gather(*(a.get_state() for a in agents))
        transport.block()
        overshoot: list[float] = []

        async def one(agent: Any) -> None:
            issued = loop.time()
            with pytest.raises(CommandTimeout):
                await agent.get_state()
            overshoot.append(loop.time() - issued - client.ttl)

        # two per agent: the second also waits for the first's turn, inside its own TTL
        await asyncio.gather(*(one(a) for a in agents for _ in range(2)))
        assert len(overshoot) == 200
        assert max(overshoot) <= SLACK, max(overshoot)
        assert all(written <= deadline for written, deadline, _ in transport.writes if deadline)
        stats = client.stats()
        assert stats.timeouts == 200 and stats.timed_out_unsent == 200
        assert stats.timeouts <= stats.issued
        assert accounted(stats) == stats.issued
        assert stats.sent == len(transport.writes)
        assert stats.throttle_episodes == 1 and stats.flow_control_held_s > 0
        transport.unblock()
        assert isinstance(await agents[0].get_state(), AgentState)
        assert accounted(client.stats()) == client.stats().issued


async def test_keepalive_is_not_starved_and_no_outage_is_declared(
    fake: FakeConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """A Beat the broker will not take says nothing about the connector: stay IN_SERVICE,
    log the throttling once."""
    caplog.set_level(logging.INFO, "cucmconn.client")
    async with beating(fake) as (client, transport, changes):
        transport.block()
        beats = [w for w in transport.writes if w[2] and w[2].startswith("Beat")]
        tasks = [asyncio.create_task(client.agent(str(i)).get_state()) for i in range(20)]
        await asyncio.sleep(0.6)  # several Beat periods and connect_timeouts
        assert client.in_service
        assert [w for w in transport.writes if w[2] and w[2].startswith("Beat")] == beats
        await asyncio.gather(*tasks, return_exceptions=True)
        throttled = [r for r in caplog.records if "not taking our writes" in r.getMessage()]
        assert len(throttled) == 1
        assert changes.seen == []  # never declared out of service
        transport.unblock()
        await until(lambda: len(fake.commands("Beat")) > len(beats))
        assert client.in_service
        assert isinstance(await client.agent("1").get_state(), AgentState)
        assert any("takes our writes again" in r.getMessage() for r in caplog.records)


async def test_beat_written_but_unanswered_while_throttled_is_no_outage(
    fake: FakeConnector,
) -> None:
    transport = ThrottledTransport()
    changes = ServiceChanges()
    async with make_client(transport, keepalive=0.05) as client:
        client.add_observer(changes)
        fake.hold.add("Beat")
        await until(lambda: len(fake.commands("Beat")) >= 1)
        transport.block()  # the Beat went out; the link blocks before its answer is due
        await asyncio.sleep(0.3)
        assert client.in_service and changes.seen == []
        transport.unblock()
        await until(lambda: (False, "Beat unanswered") in changes.seen)  # a free link: outage


async def test_beat_written_but_never_taken_by_the_broker_is_no_outage(
    fake: FakeConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """The Beat left our buffer (the send returned: the kernel took it) but the broker never
    confirmed having it: the link is throttled, which says nothing about the connector (issue
    11).  Once the broker takes what we write again, an unanswered Beat is an outage."""
    caplog.set_level(logging.INFO, "cucmconn.client")
    async with beating(fake) as (client, transport, changes):
        fake.hold.add("Beat")
        transport.withhold()
        written = len(fake.commands("Beat"))
        await asyncio.sleep(0.6)  # several keep-alive periods and connect_timeouts
        assert len(fake.commands("Beat")) >= written + 2  # Beats were written, unanswered
        assert client.in_service and changes.seen == []
        assert any("Beat not taken by the broker" in r.getMessage() for r in caplog.records)
        transport.take()
        await until(lambda: (False, "Beat unanswered") in changes.seen)


async def test_a_command_queued_behind_its_agent_times_out_unsent(fake: FakeConnector) -> None:
    transport = ThrottledTransport()
    async with make_client(transport, ttl=2.0) as client:
        loop = asyncio.get_running_loop()
        fake.hold.add("HoldCall")
        agent = client.agent("7")
        first = asyncio.create_task(agent.hold("c1"))
        await until(lambda: len(fake.held) == 1)
        issued = loop.time()
        with pytest.raises(CommandTimeout, match="queued"):
            await agent.get_state(ttl=0.2)
        assert loop.time() - issued <= 0.2 + SLACK
        assert not fake.commands("GetState")  # never written
        first.cancel()
        stats = client.stats()
        await asyncio.gather(first, return_exceptions=True)
        assert stats.timeouts == 1 and stats.timed_out_unsent == 1
        assert accounted(client.stats()) == client.stats().issued


async def test_max_in_flight_wait_is_bounded_by_the_ttl(fake: FakeConnector) -> None:
    transport = ThrottledTransport()
    async with make_client(transport, ttl=2.0, max_in_flight=1) as client:
        fake.hold.add("HoldCall")
        first = asyncio.create_task(client.agent("1").hold("c1"))
        await until(lambda: len(fake.held) == 1)
        with pytest.raises(CommandTimeout, match="queued"):
            await client.agent("2").get_state(ttl=0.1)
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        stats = client.stats()
        assert stats.cancelled == 1 and accounted(stats) == stats.issued


async def test_slots_deadline_wheel_times_out_waiters_and_keeps_order() -> None:
    loop = asyncio.get_running_loop()
    wheel = DeadlineWheel(0.05)
    gate = Slots(1)
    await gate.acquire()
    started = loop.time()
    early = asyncio.create_task(gate.acquire(started + 0.1, wheel))
    late = asyncio.create_task(gate.acquire(started + 5.0, wheel))
    with pytest.raises(TimeoutError):
        await early
    waited = loop.time() - started
    assert 0.1 <= waited <= 0.1 + 0.05 + SLACK
    gate.release()  # skips the timed-out waiter, serves the next one
    await late
    assert late.done() and not late.exception()
    gate.release()
    assert gate.try_acquire()
