"""Transports against the real ActiveMQ: consume rate and round trips, each client beside its peers.

Run: ``pytest benchmarks/bench_transport.py --benchmark-min-rounds=3 -p no:randomly``
(needs Java and Debian's ActiveMQ; the ``activemq`` fixture starts the broker).

consume
    A non-persistent queue is flooded (outside the timed part) with ``FLOOD`` text messages of
    about 70 bytes by a raw-socket producer; the timed part subscribes and takes them all.
    ``raw`` is a bare asyncio protocol that only counts frames: the broker's ceiling here.
sequential latency
    100 GetState one after another through the client to ``cucmconn emulate`` (its own
    process) on a broker with ActiveMQ's *default* transport options, native and aiostomp on
    asyncio and uvloop; p50 must be <= 3 ms with TCP_QUICKACK (the default), and the rows with
    it off on both sides show the ~40 ms Nagle/delayed-ACK wait it removes (issue 17).
round trip
    1, 64 or 1,024 commands in flight to a queue (1,024 is the client's default
    ``max_in_flight``, where a server client with thousands of agents lives); the Java
    connector peer (OpenWire, as the vendor's connector) answers each on our topic with the
    same correlation-id; each answer releases the next command.  ``ROUND_TRIPS`` per round.

``extra_info`` carries msgs_per_s (from the median round), the ratio to the native transport in
the same run, and the CPU split over the timed part: broker process (``/proc/<pid>/stat``), the
Java peer, and this client process.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.activemq import BrokerHandle
from tests.procstat import cpu_seconds

from cucmconn import AgentSession, Client
from cucmconn.transport import Message, open_transport

FLOOD = 20_000
ROUND_TRIPS = {1: 1_000, 64: 4_000, 1024: 20_000}  # by window: commands in flight
BODY = b"1001#DialogState#ACTIVE#2026-11-25 06:00:00#16777215#1001,1002,x"  # ~70 bytes
CONSUMERS = ["native", "raw", "aiostomp", "stomp.py"]  # native first: the others quote it
REQUESTERS = ["native", "aiostomp", "stomp.py"]
_RESULTS: dict[tuple[str, str], float] = {}

try:
    import uvloop

    _new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
    _new_loop = asyncio.new_event_loop


def _proc_cpu(pid: int | None) -> float:
    """utime + stime of a process, in seconds (0 when it is not ours to see)."""
    return cpu_seconds(pid) or 0.0


class CpuSplit:
    """CPU seconds spent by the broker and by this process over the timed part."""

    def __init__(self, broker_pid: int | None, peer_pid: int | None = None) -> None:
        self.pid, self.peer_pid = broker_pid, peer_pid
        self.broker = self.client = self.peer = 0.0
        self.calls = 0

    def __enter__(self) -> CpuSplit:
        self._b0, self._c0 = _proc_cpu(self.pid), time.process_time()
        self._p0 = _proc_cpu(self.peer_pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.broker += _proc_cpu(self.pid) - self._b0
        self.client += time.process_time() - self._c0
        self.peer += _proc_cpu(self.peer_pid) - self._p0
        self.calls += 1


# -- flooding (untimed) -------------------------------------------------------------------


def _raw_stomp(broker: BrokerHandle) -> socket.socket:
    sock = socket.create_connection((broker.host, broker.stomp_port), timeout=60)
    sock.sendall(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
    assert sock.recv(4096).startswith(b"CONNECTED")
    return sock


def _flood(broker: BrokerHandle, queue: str, count: int) -> None:
    """Enqueue ``count`` TextMessages (no content-length) and wait for the broker's receipt."""
    frame = b"SEND\ndestination:/queue/%s\npersistent:false\n\n%s\0" % (queue.encode(), BODY)
    last = b"SEND\ndestination:/queue/%s\npersistent:false\nreceipt:done\n\n%s\0" % (
        queue.encode(),
        BODY,
    )
    with _raw_stomp(broker) as sock:
        sock.sendall(frame * (count - 1) + last)
        reply = b""
        while b"\0" not in reply:
            reply += sock.recv(4096)
        assert reply.startswith(b"RECEIPT"), reply[:200]


# -- consumers (timed) --------------------------------------------------------------------


class _Counter(asyncio.Protocol):
    """The ``raw`` consumer: counts MESSAGE frames by their NUL terminators, nothing else."""

    def __init__(self, queue: str, count: int, done: asyncio.Future[None]) -> None:
        self.queue, self.left, self.done, self.connected = queue, count, done, False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(  # type: ignore[attr-defined]
            b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0"
            b"SUBSCRIBE\nid:0\nack:auto\nactivemq.prefetchSize:1000\ndestination:/queue/%s\n\n\0"
            % self.queue.encode()
        )

    def data_received(self, data: bytes) -> None:
        frames = data.count(b"\0")
        if not self.connected and frames:
            self.connected, frames = True, frames - 1  # the CONNECTED frame
        self.left -= frames
        if self.left <= 0 and not self.done.done():
            self.done.set_result(None)


async def _consume_raw(broker: BrokerHandle, queue: str, count: int) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    transport, _ = await loop.create_connection(
        lambda: _Counter(queue, count, done), broker.host, broker.stomp_port
    )
    try:
        await asyncio.wait_for(done, 120)
    finally:
        transport.close()


async def _consume_transport(url: str, queue: str, count: int) -> None:
    transport = open_transport(url)
    await transport.connect()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    left = count

    def handler(message: Message) -> None:
        nonlocal left
        left -= 1
        if left == 0:
            done.set_result(None)

    try:
        await transport.subscribe(f"/queue/{queue}", handler)
        await asyncio.wait_for(done, 120)
    finally:
        await transport.close()


def _consume_stomp_py(broker: BrokerHandle, queue: str, count: int) -> None:
    import stomp

    done, left = threading.Event(), [count]

    class Listener(stomp.ConnectionListener):  # type: ignore[misc]
        def on_message(self, frame: Any) -> None:
            left[0] -= 1
            if left[0] == 0:
                done.set()

    conn = stomp.Connection([(broker.host, broker.stomp_port)], auto_decode=False)
    conn.set_listener("count", Listener())
    conn.connect(wait=True)
    try:
        conn.subscribe(f"/queue/{queue}", id="0", ack="auto")
        assert done.wait(120), f"stomp.py consumed {count - left[0]} of {count}"
    finally:
        conn.disconnect()


def _consume(kind: str, broker: BrokerHandle, queue: str, count: int) -> None:
    if kind == "stomp.py":
        _consume_stomp_py(broker, queue, count)
        return
    loop = _new_loop()
    try:
        if kind == "raw":
            loop.run_until_complete(_consume_raw(broker, queue, count))
        else:
            scheme = "stomp" if kind == "native" else "aiostomp"
            url = f"{scheme}://{broker.host}:{broker.stomp_port}"
            loop.run_until_complete(_consume_transport(url, queue, count))
    finally:
        loop.close()


def _record(benchmark: Any, group: str, kind: str, count: int, cpu: CpuSplit) -> None:
    if benchmark.stats is None:  # --benchmark-disable: a smoke run, nothing to report
        return
    rate = count / benchmark.stats.stats.median  # median: a shared machine has noisy rounds
    _RESULTS[(group, kind)] = rate
    rounds = max(1, cpu.calls)  # warm-up rounds included: CPU is averaged per call
    benchmark.extra_info["msgs_per_s"] = round(rate)
    native = _RESULTS.get((group, "native"))
    if native:
        benchmark.extra_info["vs_native"] = round(rate / native, 2)
    benchmark.extra_info["broker_cpu_s_per_round"] = round(cpu.broker / rounds, 3)
    benchmark.extra_info["client_cpu_s_per_round"] = round(cpu.client / rounds, 3)
    if cpu.peer_pid is not None:
        benchmark.extra_info["java_peer_cpu_s_per_round"] = round(cpu.peer / rounds, 3)
    benchmark.extra_info["client_us_per_msg"] = round(cpu.client / rounds / count * 1e6, 2)


@pytest.fixture(scope="module")
def warm_broker(activemq: BrokerHandle) -> BrokerHandle:
    """Run traffic through the broker first: its JIT compiles (and bills CPU) on first use,
    which would otherwise be charged to whichever client is measured first."""
    queue = f"bench.warm.{uuid.uuid4().hex[:6]}"
    for _ in range(5):
        _flood(activemq, queue, FLOOD)
        _consume("raw", activemq, queue, FLOOD)
    return activemq


@pytest.mark.parametrize("kind", CONSUMERS)
def test_consume_flooded_queue(benchmark: Any, warm_broker: BrokerHandle, kind: str) -> None:
    activemq = warm_broker
    benchmark.group = "transport: consume a flooded queue"
    cpu = CpuSplit(activemq.pid)
    queue = f"bench.consume.{kind}.{uuid.uuid4().hex[:6]}"

    def setup() -> None:
        _flood(activemq, queue, FLOOD)

    def consume() -> None:
        with cpu:
            _consume(kind, activemq, queue, FLOOD)

    benchmark.pedantic(consume, setup=setup, rounds=5, iterations=1, warmup_rounds=1)
    _record(benchmark, "consume", kind, FLOOD, cpu)


# -- round trips through the Java connector peer ------------------------------------------


@pytest.fixture(scope="module")
def echo_peer(activemq: BrokerHandle, connector_peer_classpath: str) -> Iterator[tuple[str, int]]:
    """One Java ConnectorPeer answering every command; yields its queue name and pid."""
    queue = f"bench.rt.{uuid.uuid4().hex[:6]}"
    template = base64.b64encode(b"1001#DialogState#ACTIVE#2026-11-25 06:00:00#16777215#{text}")
    process = subprocess.Popen(
        ["java", "-Xmx256m", "-cp", connector_peer_classpath, "ConnectorPeer",
         f"{activemq.openwire_url}?socketBufferSize=1048576", queue, template.decode(),
         str(10**9), "3600", "quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    assert b"ready" in process.stdout.readline()  # quiet: nothing more until it exits
    for _ in range(2):  # warm the broker's and the peer's JIT before anything is measured
        _round_trips("stomp.py", activemq, queue, ROUND_TRIPS[64], 64)
    try:
        yield queue, process.pid
    finally:
        process.kill()
        process.wait()


async def _round_trips_transport(url: str, queue: str, count: int, in_flight: int) -> None:
    transport = open_transport(url)
    await transport.connect()
    topic = f"/topic/bench-rt-{uuid.uuid4().hex[:6]}"
    window = asyncio.Semaphore(in_flight)
    pending: set[str] = set()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    answered = 0

    def handler(message: Message) -> None:
        nonlocal answered
        cid = message.correlation_id
        if cid in pending:
            pending.discard(cid)
            answered += 1
            window.release()
            if answered == count:
                done.set_result(None)

    try:
        await transport.subscribe(topic, handler)
        for i in range(count):
            await window.acquire()
            cid = f"c{i}"
            pending.add(cid)
            await transport.send(
                f"/queue/{queue}", "1002", jms_type="MakeCall#1001", correlation_id=cid,
                reply_to=topic, ttl=30,
            )  # fmt: skip
        await asyncio.wait_for(done, 120)
    finally:
        await transport.close()


def _round_trips_stomp_py(broker: BrokerHandle, queue: str, count: int, in_flight: int) -> None:
    import stomp

    window, done, answered = threading.Semaphore(in_flight), threading.Event(), [0]
    topic = f"/topic/bench-rt-{uuid.uuid4().hex[:6]}"

    class Listener(stomp.ConnectionListener):  # type: ignore[misc]
        def on_message(self, frame: Any) -> None:
            answered[0] += 1
            window.release()
            if answered[0] == count:
                done.set()

    conn = stomp.Connection(
        [(broker.host, broker.stomp_port)], auto_decode=False, auto_content_length=False
    )
    conn.set_listener("rt", Listener())
    conn.connect(wait=True)
    try:
        conn.subscribe(topic, id="0", ack="auto", headers={"receipt": "s"})
        time.sleep(0.2)  # let the subscription settle before the first answer can arrive
        for i in range(count):
            window.acquire()
            conn.send(
                f"/queue/{queue}", b"1002", headers={
                    "type": "MakeCall#1001", "correlation-id": f"c{i}", "reply-to": topic,
                    "persistent": "false", "expires": str(int((time.time() + 30) * 1000)),
                },
            )  # fmt: skip
        assert done.wait(120), f"stomp.py got {answered[0]} of {count} answers"
    finally:
        conn.disconnect()


def _round_trips(kind: str, broker: BrokerHandle, queue: str, count: int, in_flight: int) -> None:
    if kind == "stomp.py":
        _round_trips_stomp_py(broker, queue, count, in_flight)
        return
    scheme = "stomp" if kind == "native" else "aiostomp"
    loop = _new_loop()
    try:
        loop.run_until_complete(
            _round_trips_transport(
                f"{scheme}://{broker.host}:{broker.stomp_port}", queue, count, in_flight
            )
        )
    finally:
        loop.close()


@pytest.mark.parametrize("kind", REQUESTERS)
@pytest.mark.parametrize("in_flight", list(ROUND_TRIPS))
def test_round_trips_via_java_peer(
    benchmark: Any, activemq: BrokerHandle, echo_peer: tuple[str, int], kind: str, in_flight: int
) -> None:
    benchmark.group = f"transport: round trips, {in_flight} in flight, Java JMS peer"
    queue, peer_pid = echo_peer
    cpu = CpuSplit(activemq.pid, peer_pid)
    count = ROUND_TRIPS[in_flight]

    def run() -> None:
        with cpu:
            _round_trips(kind, activemq, queue, count, in_flight)

    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    _record(benchmark, f"round trips {in_flight}", kind, count, cpu)


# -- sequential latency on a broker with ActiveMQ's default transport options (issue 17) ------

SEQUENTIAL = 100  # GetState one after another per round, as the issue measured
SEQUENTIAL_P50_TARGET_MS = 3.0
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
if _new_loop is not asyncio.new_event_loop:
    LOOPS["uvloop"] = _new_loop
# One agent per row, so a row never meets an agent another row left logged in.
SEQUENTIAL_AGENT = {
    key: str(1000 + i)
    for i, key in enumerate(
        (loop, kind, quickack)
        for loop in LOOPS
        for kind in ("native", "aiostomp")
        for quickack in (True, False)
    )
}


async def _sequential_get_states(agent: AgentSession, latencies: list[float]) -> None:
    for _ in range(SEQUENTIAL):
        start = time.perf_counter()
        await agent.get_state()
        latencies.append(time.perf_counter() - start)


@pytest.mark.parametrize("quickack", [True, False], ids=["quickack", "no-quickack"])
@pytest.mark.parametrize("loop_name", list(LOOPS))
@pytest.mark.parametrize("kind", ["native", "aiostomp"])
def test_sequential_latency_default_broker(
    benchmark: Any,
    default_activemq: BrokerHandle,
    default_broker_emulators: dict[bool, str],
    kind: str,
    loop_name: str,
    quickack: bool,
) -> None:
    """100 GetState one after another for a logged-in agent through the client, the emulator
    in its own process, on ActiveMQ with its default transport options (Nagle on, 64 KB).

    The ``quickack`` rows (client and emulator re-arm TCP_QUICKACK, the transports' default)
    must hold p50 <= 3 ms; the ``no-quickack`` rows turn it off on both sides and are the
    "before" reference (the broker's Nagle waits for our delayed ACK: ~40 ms), with no target.
    """
    benchmark.group = "transport: sequential GetState, default-options ActiveMQ"
    scheme = "stomp" if kind == "native" else "aiostomp"
    url = f"{scheme}://{default_activemq.host}:{default_activemq.stomp_port}"
    loop = LOOPS[loop_name]()
    client = Client(
        url,
        queue=default_broker_emulators[quickack],
        ttl=10.0,
        transport_options={"tcp_quickack": quickack},
    )
    latencies: list[float] = []
    try:
        loop.run_until_complete(client.connect())
        # Logged in, as the issue measured: GetState then answers with more than one event,
        # and the broker's second small write is the one Nagle holds for our delayed ACK.
        agent = client.agent(SEQUENTIAL_AGENT[loop_name, kind, quickack])
        loop.run_until_complete(agent.login())
        loop.run_until_complete(_sequential_get_states(agent, []))  # warm-up

        def one_round() -> None:
            loop.run_until_complete(_sequential_get_states(agent, latencies))

        benchmark.pedantic(one_round, rounds=3, iterations=1)
        loop.run_until_complete(agent.logout())
    finally:
        loop.run_until_complete(client.close())
        loop.close()
    latencies.sort()
    p50_ms = latencies[len(latencies) // 2] * 1000
    p99_ms = latencies[int(len(latencies) * 0.99)] * 1000
    if benchmark.stats is not None:
        benchmark.extra_info.update(p50_ms=round(p50_ms, 3), p99_ms=round(p99_ms, 3))
    row = f"{kind}/{loop_name}/{'quickack' if quickack else 'no-quickack'}"
    print(f"\n  {row}: p50 {p50_ms:.2f} ms, p99 {p99_ms:.2f} ms, {len(latencies)} sequential")
    if quickack:
        assert p50_ms <= SEQUENTIAL_P50_TARGET_MS, (
            f"sequential p50 {p50_ms:.2f} ms > {SEQUENTIAL_P50_TARGET_MS} ms target"
        )
