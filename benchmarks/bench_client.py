"""Client throughput, latency and memory: memory:// with a scripted fake, and a real ActiveMQ.

Run: ``pytest benchmarks/bench_client.py --benchmark-min-rounds=3 -s`` (``-s`` prints the
figures).  One round is a burst: every agent sends one GetState at once (so 1,000 or 10,000
commands, bounded by ``max_in_flight``), and the round ends when all are answered.  Each round
prints commands/s and the client's own p50/p99 latency for that burst; asyncio and uvloop run the
same bursts side by side in one group per agent count, so their ratio is read off one table.
The fake connector is part of every round (it decodes, answers and publishes each command on the
same loop), so the figures are for client + peer on one core, an upper bound on client cost.

``test_getstate_burst_activemq`` runs the same bursts through a real ActiveMQ (started by the
``activemq`` fixture) to ``cucmconn emulate`` in its own process, native ``stomp://`` beside
``aiostomp://``; the broker and the emulator share the machine's two cores with the client.

``test_idle_session_memory`` measures bytes per AgentSession with tracemalloc, for sessions just
created and for sessions logged in and idle (state, AgentInfo, no call, no reader); the brief's
budget is 2 KB each.
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from tests.fakeconnector import FakeConnector

from cucmconn import AgentSession, Client, decode_event
from cucmconn.client.correlation import FINISHED_MEMORY, PendingTable
from cucmconn.client.stats import StatsCounters
from cucmconn.codec.events import AgentState
from cucmconn.transport.memory import MemoryBroker, MemoryTransport

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
try:
    import uvloop

    LOOPS["uvloop"] = uvloop.new_event_loop
except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
    pass

SESSION_BUDGET = 2048


class Rig:
    """A loop and a client with ``n`` logged-in agents, kept across rounds.

    Without ``url``: memory:// with the scripted fake connector on the same loop.  With a broker
    URL: the emulator answers from its own process (``emulator_process``).
    """

    def __init__(self, loop_name: str, n: int, url: str | None = None) -> None:
        MemoryBroker.reset()
        self.loop = LOOPS[loop_name]()
        self.n = n
        self.fake: FakeConnector | None = None
        if url is None:
            self.fake = FakeConnector(MemoryTransport(), record=False)
            self.client = Client(
                transport=MemoryTransport(), client_destination="bench", max_in_flight=1024,
                ttl=30.0,
            )  # fmt: skip
            first = 100_000
        else:
            self.client = Client(url, max_in_flight=1024, ttl=30.0)
            first = 1000  # the emulator's directory
        self.extensions = [str(first + i) for i in range(n)]
        self.agents: list[AgentSession] = []
        self.loop.run_until_complete(self._setup())

    async def _setup(self) -> None:
        if self.fake is not None:
            await self.fake.start()
        await self.client.connect()
        self.agents = [self.client.agent(ext) for ext in self.extensions]
        await asyncio.gather(*(a.login() for a in self.agents))
        self.client.stats(reset_latency=True)

    async def burst(self) -> float:
        start = time.perf_counter()
        await asyncio.gather(*(a.get_state() for a in self.agents))
        return time.perf_counter() - start

    def close(self) -> None:
        async def _close() -> None:
            if self.fake is None:
                await asyncio.gather(*(a.logout() for a in self.agents))
            await self.client.close()
            if self.fake is not None:
                await self.fake.stop()

        self.loop.run_until_complete(_close())
        self.loop.close()


def _bursts(benchmark: Any, rig: Rig, label: str) -> None:
    """Three timed bursts (one warm-up); records and prints commands/s and latency."""
    elapsed: list[float] = []
    try:

        def one_round() -> None:
            elapsed.append(rig.loop.run_until_complete(rig.burst()))

        benchmark.pedantic(one_round, rounds=3, iterations=1, warmup_rounds=1)
        stats = rig.client.stats()
    finally:
        rig.close()
    assert stats.timeouts == 0 and stats.in_flight == 0
    rate = rig.n / min(elapsed)
    benchmark.extra_info.update(
        commands_per_s=round(rate),
        p50_ms=round(stats.latency_p50_ms, 3),
        p99_ms=round(stats.latency_p99_ms, 3),
        max_ms=round(stats.latency_max_ms, 3),
    )
    print(
        f"\n[{label}] {rig.n:6} agents: {rate:9.0f} commands/s, "
        f"p50 {stats.latency_p50_ms:.2f} ms, p99 {stats.latency_p99_ms:.2f} ms, "
        f"max {stats.latency_max_ms:.2f} ms"
    )


@pytest.mark.parametrize("agents", [1000, 10_000])
@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_getstate_burst(benchmark: Any, loop_name: str, agents: int) -> None:
    """memory://, client + fake connector on one loop: an upper bound on the client's cost."""
    benchmark.group = f"client-getstate-burst-{agents}-agents"
    _bursts(benchmark, Rig(loop_name, agents), f"{loop_name:7}, memory://")


@pytest.mark.parametrize("agents", [1000, 10_000])
@pytest.mark.parametrize("scheme", ["stomp", "aiostomp"])
def test_getstate_burst_activemq(
    benchmark: Any, emulator_process: str, scheme: str, agents: int
) -> None:
    """The same bursts through a real ActiveMQ to the emulator in its own process, on uvloop
    (what ``cucmconn.run`` picks); aiostomp:// beside the native transport."""
    benchmark.group = f"client-getstate-burst-activemq-{agents}-agents"
    url = emulator_process.replace("stomp://", f"{scheme}://", 1)
    _bursts(benchmark, Rig("uvloop" if "uvloop" in LOOPS else "asyncio", agents, url), scheme)


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_idle_session_memory(benchmark: Any) -> None:
    """Bytes per session: just created, and logged in with nothing happening."""
    n = 10_000
    MemoryBroker.reset()
    loop = asyncio.new_event_loop()
    fake = FakeConnector(MemoryTransport(), record=False)
    client = Client(transport=MemoryTransport(), client_destination="mem", max_in_flight=1024)
    loop.run_until_complete(fake.start())
    loop.run_until_complete(client.connect())
    tracemalloc.start()
    try:
        base = _traced()
        agents = [client.agent(str(100_000 + i)) for i in range(n)]
        created = (_traced() - base) / n

        async def login_all() -> None:
            await asyncio.gather(*(a.login() for a in agents))
            await asyncio.sleep(0.05)  # the follow-up events of each Login

        loop.run_until_complete(login_all())
        logged_in = (_traced() - base) / n
    finally:
        tracemalloc.stop()
        loop.run_until_complete(client.close())
        loop.run_until_complete(fake.stop())
        loop.close()
    assert all(a.state == "READY" for a in agents)
    benchmark.extra_info.update(bytes_created=round(created), bytes_logged_in=round(logged_in))
    benchmark.group = "client-session-memory"
    benchmark.pedantic(lambda: client.agent("100000"), rounds=3, iterations=1)
    print(
        f"\nper idle session ({n} agents): {created:.0f} B created, {logged_in:.0f} B logged in "
        f"(budget {SESSION_BUDGET} B; includes the bounded finished-id memory of the logins)"
    )
    assert created <= SESSION_BUDGET
    assert logged_in <= SESSION_BUDGET


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_sequential_roundtrip(benchmark: Any, loop_name: str) -> None:
    """One agent, one command at a time: the round trip without queueing behind a burst."""
    benchmark.group = "client-sequential-roundtrip"
    rig = Rig(loop_name, 1)
    agent = rig.agents[0]
    count = 2000

    async def sequence() -> None:
        for _ in range(count):
            await agent.get_state()

    try:
        benchmark.pedantic(lambda: rig.loop.run_until_complete(sequence()), rounds=3, iterations=1)
        stats = rig.client.stats()
    finally:
        rig.close()
    benchmark.extra_info.update(p50_ms=stats.latency_p50_ms, p99_ms=stats.latency_p99_ms)
    print(
        f"\n[{loop_name:7}] sequential: p50 {stats.latency_p50_ms * 1000:.0f} us, "
        f"p99 {stats.latency_p99_ms * 1000:.0f} us per command ({count} per round)"
    )


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_sequential_raw_baseline(benchmark: Any, loop_name: str) -> None:
    """The floor for the row above: a bare id -> future dict over the same transport and fake,
    with none of the client's guarantees (no deadline, no FIFO, no bound, no state)."""
    benchmark.group = "client-sequential-roundtrip"
    MemoryBroker.reset()
    loop = LOOPS[loop_name]()
    fake = FakeConnector(MemoryTransport(), record=False)
    transport = MemoryTransport()
    waiting: dict[str, asyncio.Future[Any]] = {}
    count = 2000

    def on_message(message: Any) -> None:
        future = waiting.pop(message.correlation_id, None)
        if future is not None:
            future.set_result(decode_event(message.body))

    async def setup() -> None:
        await fake.start()
        await transport.connect()
        await transport.subscribe("/topic/raw", on_message)

    async def sequence() -> None:
        running = asyncio.get_running_loop()
        for i in range(count):
            cid = f"raw-{i}"
            future = waiting[cid] = running.create_future()
            await transport.send(
                "/queue/Connector1",
                "",
                jms_type="GetState#1",
                correlation_id=cid,
                reply_to="/topic/raw",
                ttl=30.0,
            )
            await future

    loop.run_until_complete(setup())
    try:
        benchmark.pedantic(lambda: loop.run_until_complete(sequence()), rounds=3, iterations=1)
    finally:
        loop.run_until_complete(transport.close())
        loop.run_until_complete(fake.stop())
        loop.close()
    assert not waiting


# -- the correlation table under churn ------------------------------------------------------------


def _churn(table: PendingTable, start: int, count: int) -> None:
    """``count`` commands added and answered, one at a time, as a long run does."""
    event = AgentState("1", "READY", "")
    for i in range(start, start + count):
        entry = table.add(f"c{i}", "GetState", "1", (), 1e9, 0.0)
        table.resolve(event, entry.correlation_id, "1")


@pytest.mark.parametrize("finished", ["empty", "full"])
def test_pending_table_churn(benchmark: Any, finished: str) -> None:
    """Add + answer on a table whose memory of finished ids is empty vs already full.

    A long run lives in the "full" state: the ids of the last ``FINISHED_MEMORY`` commands are
    kept to classify stragglers as late, and each new one evicts the oldest.  The two rows must
    cost about the same; an eviction that rescans the dict (``del d[next(iter(d))]``) made the
    "full" row several times slower and a 20 s load run 16 % slower than a 5 s one.
    """
    benchmark.group = "client-pending-table-churn"
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # futures are created on the loop in ``add``
    table = PendingTable(StatsCounters())
    count = 20_000
    start = [0]
    if finished == "full":
        loop.run_until_complete(_async(_churn, table, 0, FINISHED_MEMORY + 1))
        start[0] = FINISHED_MEMORY + 1

    def one_round() -> None:
        loop.run_until_complete(_async(_churn, table, start[0], count))
        start[0] += count

    try:
        benchmark.pedantic(one_round, rounds=5, iterations=1, warmup_rounds=1)
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    assert len(table) == 0
    if benchmark.stats is None:  # --benchmark-disable: a smoke run
        return
    _CHURN[finished] = benchmark.stats.stats.median
    if "empty" in _CHURN and "full" in _CHURN:
        ratio = _CHURN["full"] / _CHURN["empty"]
        benchmark.extra_info["full_vs_empty"] = round(ratio, 2)
        assert ratio < 1.5, f"a full finished-id memory makes churn {ratio:.1f}x slower"


_CHURN: dict[str, float] = {}


async def _async(fn: Callable[..., None], *args: Any) -> None:
    fn(*args)
