"""Sustained load with memory watched: the CI-sized soak, and an application that stops reading.

The soak is ``scripts/soak.py``'s own ``soak()`` (the emulator as the connector, a real
ActiveMQ, paced GetState plus MakeCall/ReleaseCall pairs) cut to ~20 s per event loop; the long
run is ``python scripts/soak.py --minutes 30``.  RSS is the whole test process's: the bound is
on growth after warm-up, judged on medians so a GC pause is not a leak.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from cucmconn import Client, Emulator, EventsMayBeMissed, SlowConsumer
from cucmconn.cli.soak import RssSampler, soak
from cucmconn.cli.traffic import LoadDriver
from cucmconn.client import EventStream
from tests.activemq import BrokerHandle

pytestmark = pytest.mark.activemq

SOAK_SECONDS = 20.0
SOAK_RATE = 300.0
SOAK_GROWTH_MB = 8.0


async def test_short_soak_keeps_rss_flat_and_every_command_answered(
    activemq: BrokerHandle,
) -> None:
    result = await soak(
        activemq.stomp_url,
        seconds=SOAK_SECONDS,
        rate=SOAK_RATE,
        agents=20,
        calls=True,
        max_growth_mb=SOAK_GROWTH_MB,
        warmup=5.0,
        sample_every=0.5,
    )
    tally = result.tally
    assert result.connector == "emulator"
    assert result.ok, result.failures
    assert tally.answered == tally.sent, tally.line()  # nothing failed on a healthy link
    assert tally.sent > 0.5 * SOAK_RATE * SOAK_SECONDS, "the soak barely loaded anything"
    assert result.in_flight_after == 0
    assert result.client_stats["late"] == 0
    print(
        f"\nFIGURE soak {result.seconds:.0f} s: {tally.line()} at {result.rate_achieved:.0f}/s; "
        f"RSS {result.rss_baseline_mb:.1f} -> {result.rss_final_mb:.1f} MB "
        f"({result.rss_growth_mb:+.1f} MB, bound {SOAK_GROWTH_MB:g}); "
        f"p50 {result.client_stats['latency_p50_ms']:.1f} ms, "
        f"p99 {result.client_stats['latency_p99_ms']:.1f} ms"
    )


@pytest.fixture
def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"Slow-{tag}", f"slow-{tag}"


AGENTS = [str(67_000 + i) for i in range(20)]


def drain(stream: EventStream) -> int:
    count = 0
    while stream.get_nowait() is not None:
        count += 1
    return count


async def test_application_that_stops_reading_stays_bounded_and_counted(
    activemq: BrokerHandle, names: tuple[str, str]
) -> None:
    client = Client(
        activemq.stomp_url,
        queue=names[0],
        client_destination=names[1],
        client_buffer=200,
        agent_buffer=50,
    )
    emulator = Emulator(activemq.stomp_url, queue=names[0], extensions=f"{AGENTS[0]}-{AGENTS[-1]}")
    async with emulator, client:
        driver = LoadDriver(client, AGENTS, 300.0)
        assert (await driver.login_all()).answered == len(AGENTS)
        ignored = client.events()  # never read: the application "stopped reading"
        ignored_agent = client.agent(AGENTS[0]).events()
        counter = client.events(maxlen=100_000)  # read all along: the truth to compare with
        seen = 0
        sampler = RssSampler(0.25)
        sampler.start()
        driver.start()
        for _ in range(30):
            await asyncio.sleep(0.2)
            seen += drain(counter)
        await driver.stop()
        await asyncio.sleep(0.3)
        seen += drain(counter)
        await sampler.stop()
        tally = driver.tally
        assert tally.answered == tally.sent, tally.line()  # commands unaffected by the backlog
        assert seen > 10 * client.client_buffer, "too few events to overflow anything"
        assert len(ignored) == client.client_buffer
        assert ignored.dropped == seen - client.client_buffer
        assert len(ignored_agent) == client.agent_buffer
        assert ignored_agent.dropped > 0
        stats = client.stats()
        assert stats.dropped_events == ignored.dropped + ignored_agent.dropped
        _, _, growth = sampler.growth_after(1.0)
        print(
            f"\nFIGURE slow-reader: {seen:,} events delivered; unread client stream held "
            f"{len(ignored)} and dropped {ignored.dropped:,}; unread agent stream held "
            f"{len(ignored_agent)}, dropped {ignored_agent.dropped:,}; RSS growth "
            f"{growth / 2**20:+.1f} MB; commands {tally.line()}"
        )


async def test_raise_policy_tells_the_slow_reader_and_keeps_older_events(
    activemq: BrokerHandle, names: tuple[str, str]
) -> None:
    client = Client(
        activemq.stomp_url,
        queue=names[0],
        client_destination=names[1],
        client_buffer=50,
        overflow="raise",
    )
    emulator = Emulator(activemq.stomp_url, queue=names[0], extensions=f"{AGENTS[0]}-{AGENTS[-1]}")
    async with emulator, client:
        stream = client.events()
        driver = LoadDriver(client, AGENTS[:5], 200.0)
        assert (await driver.login_all()).answered == 5
        driver.start()
        await asyncio.sleep(1.5)
        await driver.stop()
        assert len(stream) == 50
        with pytest.raises(SlowConsumer):
            stream.get_nowait()
        kept = [stream.get_nowait() for _ in range(50)]
        assert all(item is not None and not isinstance(item, EventsMayBeMissed) for item in kept)
        assert stream.get_nowait() is None
        assert client.stats().dropped_events == stream.dropped > 0
        assert driver.tally.answered == driver.tally.sent
