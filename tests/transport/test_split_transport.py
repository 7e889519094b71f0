"""``SplitTransport`` (``split_links``): why it exists, and that its two links stay one transport.

The first test is the mechanism of issue 11 case 6, made deterministic: ActiveMQ serialises a
connection's reads and writes, so while the broker cannot write to a connection (here a proxy
stops reading what the broker sends us) it stops reading that connection too, and our sends
on it stall.  One link shows the stall (the control); split links keep sending.  The rest is
the Transport contract the conformance suite does not reach: failover keeps both links on one
broker, and option handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest

from cucmconn.transport import open_transport
from cucmconn.transport.split import SplitTransport
from cucmconn.transport.stomp import StompTransport
from tests.faultproxy import FaultProxy
from tests.listeners import Recorder
from tests.waiting import waiter

WAIT = 15.0  # upper bound for an expected event; never a speed assertion
_until = waiter(WAIT)

pytestmark = pytest.mark.activemq


def _name() -> str:
    return uuid.uuid4().hex[:12]


@pytest.mark.parametrize("split", [False, True], ids=["one-link", "split-links"])
async def test_a_broker_blocked_writing_to_us_still_reads_our_sends_only_on_split_links(
    default_activemq: Any, closing: list[Any], split: bool
) -> None:
    broker = default_activemq
    proxy = await FaultProxy(broker.host, broker.stomp_port, rcvbuf=16 * 1024).start()
    closing.append(proxy)
    ours = open_transport(proxy.url(), heartbeat=0, reconnect=False, split_links=split)
    feeder = open_transport(broker.stomp_url, heartbeat=0)
    watcher = open_transport(broker.stomp_url, heartbeat=0)
    closing.extend([ours, feeder, watcher])
    for transport in (ours, feeder, watcher):
        await transport.connect()
    assert isinstance(ours, SplitTransport if split else StompTransport)
    inbox, outbox = f"/queue/inbox-{_name()}", f"/queue/outbox-{_name()}"
    await ours.subscribe(inbox, lambda message: None)
    seen: list[int] = []
    await watcher.subscribe(outbox, lambda message: seen.append(1))

    proxy.stall("down")  # we no longer read what the broker writes to us
    page = "x" * 1024
    for _ in range(4000):  # 4 MB to deliver to us: the broker's writer to our link blocks
        await feeder.send(inbox, page)
    await asyncio.sleep(1.0)  # let its dispatcher reach the full socket

    total = 2000  # ~1.2 MB: more than every buffer between us and the broker's reader
    line = "y" * 512

    async def pump() -> None:
        for _ in range(total):
            await ours.send(outbox, line)

    task = asyncio.create_task(pump())
    try:
        if split:
            await _until(lambda: len(seen) == total, what="every send read by the broker")
        else:  # the control: the broker's lock holds its reader behind its blocked writer
            with contextlib.suppress(TimeoutError):  # the proxy's buffers may take it all
                await asyncio.wait_for(asyncio.shield(task), 5.0)
            await asyncio.sleep(2.0)  # ample for the broker to read ~1.2 MB, were it reading
            assert len(seen) < total / 2, f"the broker read {len(seen)} of {total} sends"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        proxy.heal()


async def test_failover_keeps_both_links_on_one_broker(
    two_activemq: Any, closing: list[Any]
) -> None:
    """Lose A: both links move to B.  A is back (priorityBackup): both return to A."""
    pair = two_activemq
    url = pair.failover_url(initialReconnectDelay=100, maxReconnectDelay=500)
    transport = open_transport(url, heartbeat=1000, split_links=True)
    closing.append(transport)
    assert isinstance(transport, SplitTransport)
    recorder = Recorder()
    transport.set_listener(recorder)
    await transport.connect()
    on_a, on_b = (f"stomp://{h.host}:{h.stomp_port}" for h in (pair.a, pair.b))

    def where() -> tuple[str | None, str | None]:
        out = transport.outbound
        return transport.inbound.endpoint, out.endpoint if out is not None else None

    assert where() == (on_a, on_a)
    got: list[bytes] = []
    destination = f"/topic/split-{_name()}"
    await transport.subscribe(destination, lambda m: got.append(m.body))

    await asyncio.to_thread(pair.a.stop)
    await _until(lambda: recorder.kinds == ["lost", "restored"], 60, "failover to B")
    assert where() == (on_b, on_b) and transport.endpoint == on_b
    await transport.send(destination, "on B")
    await _until(lambda: got == [b"on B"], what="delivery on B")

    await asyncio.to_thread(pair.a.start)
    await _until(lambda: where() == (on_a, on_a) and transport.connected, 60, "the return to A")
    assert recorder.kinds == ["lost", "restored", "lost", "restored"]
    await transport.send(destination, "back on A")
    await _until(lambda: got == [b"on B", b"back on A"], what="delivery back on A")
    assert transport.stats()["reconnects"] == 2


async def test_split_links_is_read_from_the_url_and_checked(activemq: Any) -> None:
    assert isinstance(open_transport(f"{activemq.stomp_url}?split_links=true"), SplitTransport)
    assert isinstance(open_transport(f"{activemq.stomp_url}?split_links=0"), StompTransport)
    assert isinstance(  # the keyword wins over the URL
        open_transport(f"{activemq.stomp_url}?split_links=true", split_links=False),
        StompTransport,
    )
    with pytest.raises(ValueError, match="split_links must be true or false"):
        open_transport(f"{activemq.stomp_url}?split_links=maybe")
    with pytest.raises(ValueError, match="split_links applies to stomp"):
        open_transport("memory://x", split_links=True)
