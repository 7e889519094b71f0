"""The cost of recording a link (issue 14's target: at most 15 % of throughput at 10,000/s).

Run: ``pytest benchmarks/bench_trace.py -s``.  Two rigs on one loop, each a client with
``AGENTS`` logged-in agents over memory:// and the scripted fake connector: one plain, one
recording (``record=`` a TraceRecorder).  A run is ``BURSTS`` bursts in a row (every agent sends
one GetState at once) and, for the recording rig, the wait until every record of the run is
written, so the writer's cost is counted where it is paid.  Runs alternate between the rigs.

The cost is measured in CPU seconds per command (``time.process_time``, the best run of each
rig: a neighbour only ever adds time), because the client is CPU-bound and its throughput is the
inverse of that figure, while wall time on a shared machine measures the neighbours as much as
the code; wall-clock commands/s are reported beside it.  The test fails when recording costs
more than ``MAX_COST``.  The rigs run flat out, above ``TARGET_RATE`` (the rate the target is
stated at) on an idle machine: a cost per command is the same at any rate, and at saturation it
shows as lost throughput.  The trace is read back: every command must be in it, none dropped.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.fakeconnector import FakeConnector

from cucmconn import AgentSession, Client
from cucmconn.trace import TraceRecorder, read_trace
from cucmconn.transport.memory import MemoryBroker, MemoryTransport

AGENTS = 2000
BURSTS = 5
ROUNDS = 9
MAX_COST = 0.15
TARGET_RATE = 10_000


class Rig:
    """A client with ``AGENTS`` logged-in agents and the fake connector, on ``loop``."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, name: str, record: TraceRecorder | None
    ) -> None:
        self.loop = loop
        self.fake = FakeConnector(MemoryTransport(broker=MemoryBroker.get(name)), record=False)
        self.client = Client(
            transport=MemoryTransport(broker=MemoryBroker.get(name)),
            client_destination=f"bench-{name}",
            max_in_flight=1024,
            ttl=30.0,
            record=record,
        )
        self.recorder = record
        self.agents: list[AgentSession] = []
        loop.run_until_complete(self._setup())

    async def _setup(self) -> None:
        await self.fake.start()
        await self.client.connect()
        self.agents = [self.client.agent(str(100_000 + i)) for i in range(AGENTS)]
        await asyncio.gather(*(a.login() for a in self.agents))

    async def _burst(self) -> float:
        start = time.perf_counter()
        await asyncio.gather(*(a.get_state() for a in self.agents))
        return time.perf_counter() - start

    def run(self) -> tuple[float, float]:
        """(wall, CPU) seconds for BURSTS bursts, the recorder's writing included."""
        recorder = self.recorder
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(BURSTS):
            self.loop.run_until_complete(self._burst())
        if recorder is not None:
            recorder.flush()
        return time.perf_counter() - start, time.process_time() - cpu

    def close(self) -> None:
        async def _close() -> None:
            await self.client.close()
            await self.fake.stop()

        self.loop.run_until_complete(_close())


def test_recording_costs_at_most_15_percent(benchmark: Any, tmp_path: Path) -> None:
    MemoryBroker.reset()
    loop = asyncio.new_event_loop()
    path = tmp_path / "bench.jsonl"
    recorder = TraceRecorder(path)
    plain = Rig(loop, "plain", None)
    recorded = Rig(loop, "recorded", recorder)
    times: dict[str, list[tuple[float, float]]] = {"plain": [], "recorded": []}
    try:

        def alternate() -> None:  # all rounds in one call: --benchmark-disable runs it once
            for _ in range(ROUNDS):
                times["plain"].append(plain.run())
                times["recorded"].append(recorded.run())

        benchmark.pedantic(alternate, rounds=1, iterations=1)
    finally:
        plain.close()
        recorded.close()
        recorder.close()
        loop.close()
    per_run = AGENTS * BURSTS
    plain_rate = per_run / min(wall for wall, _ in times["plain"])
    recorded_rate = per_run / min(wall for wall, _ in times["recorded"])
    plain_cpu = min(cpu for _, cpu in times["plain"]) / per_run
    recorded_cpu = min(cpu for _, cpu in times["recorded"]) / per_run
    cost = 1 - plain_cpu / recorded_cpu  # the share of throughput recording takes
    trace = read_trace(path)
    benchmark.group = "trace-recording-cost"
    benchmark.extra_info.update(
        plain_commands_per_s=round(plain_rate),
        recorded_commands_per_s=round(recorded_rate),
        plain_cpu_us=round(plain_cpu * 1e6, 2),
        recorded_cpu_us=round(recorded_cpu * 1e6, 2),
        cost=round(cost, 3),
    )
    print(
        f"\n{AGENTS} agents x {BURSTS} bursts, {ROUNDS} alternating runs: CPU per command "
        f"{plain_cpu * 1e6:.1f} us plain, {recorded_cpu * 1e6:.1f} us recording: cost "
        f"{cost:.1%} of throughput (target <= {MAX_COST:.0%}); best wall rate plain "
        f"{plain_rate:,.0f}/s, recording {recorded_rate:,.0f}/s (target >= {TARGET_RATE:,}/s); "
        f"{len(trace.records):,} records, {trace.dropped} dropped"
    )
    commands = AGENTS * (1 + ROUNDS * BURSTS)  # the logins, then the timed bursts
    assert trace.dropped == 0 and len(trace.commands()) == commands + 1  # + the Hello
    # The rigs run flat out (above TARGET_RATE on an idle 2-core box: the harder condition);
    # on a crowded box they may not reach it, which says nothing about the recorder.
    if benchmark.disabled:  # the CI smoke run: one short pass proves it runs, not the figure
        print(f"recording cost target <= {MAX_COST:.0%} not judged (smoke run)")
        return
    assert cost <= MAX_COST, f"recording cost {cost:.1%} of throughput"
