"""Faults under load, against a real ActiveMQ: every command ends, and the counts add up.

Each test drives many agents with the soak script's ``LoadDriver`` (paced GetState, one
command in flight per agent), breaks something for real (SIGKILL of the broker, the connector
going away, OUT_OF_SERVICE flapping, a TCP proxy that half-opens, stalls or cuts the link), lets
it recover, and checks the client's promises:

* ``sent == answered + errors + timeouts + lost + unavailable`` exactly, nothing unexpected;
* no command is left pending (``stats().in_flight == 0``) and every worker finished;
* after recovery the client said Hello again, resynchronised its agents and commands succeed.

The connector peer, on its own transport to the same broker, is the scripted fake
(``tests/fakeconnector.py``: it can hold a command unanswered) or the emulator.  Each test
prints a ``FIGURE`` line (run with ``-s``) quoted in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cucmconn import Client, ConnectionLost, Emulator, TerminalStatus
from cucmconn.cli.tally import Tally, counted
from cucmconn.cli.traffic import LoadDriver
from cucmconn.transport import open_transport
from tests.activemq import BrokerHandle
from tests.fakeconnector import FakeConnector
from tests.faultproxy import FaultProxy
from tests.waiting import waiter

pytestmark = pytest.mark.activemq

AGENTS = [str(61_000 + i) for i in range(20)]
IDLE = "61050"
RATE = 300.0  # commands/s in total
DETECT_LIMIT = 5.0  # s: heart-beats every 300 ms must reveal a silent link well within this


until = waiter(30.0)


@pytest.fixture
def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"Rel-{tag}", f"rel-{tag}"


async def start_fake(url: str, queue: str) -> FakeConnector:
    return await FakeConnector(
        open_transport(url, max_backoff=0.5), queue=f"/queue/{queue}"
    ).start()


@pytest.fixture
async def fake(activemq: BrokerHandle, names: tuple[str, str]) -> AsyncIterator[FakeConnector]:
    connector = await start_fake(activemq.stomp_url, names[0])
    yield connector
    await connector.stop()


def make_client(url: str, names: tuple[str, str], **options: Any) -> Client:
    options.setdefault("ttl", 2.0)
    options.setdefault("connect_timeout", 0.3)
    options.setdefault("handshake_timeout", 20.0)
    options.setdefault("keepalive", 0.5)
    options.setdefault("transport_options", {"max_backoff": 0.5, "heartbeat": 1000})
    return Client(url, queue=names[0], client_destination=names[1], **options)


async def check_accounting(tally: Tally, client: Client) -> None:
    assert tally.unexpected == 0, tally.line()
    assert tally.balanced, tally.line()
    # The application's commands have all ended (the workers returned); the client's own
    # Hello/Beat probes end by their short TTL, so the table must drain within it.
    await until(lambda: client.stats().in_flight == 0, 5 * client.connect_timeout, "empty table")


def assert_no_client_tasks() -> None:
    """After ``close()`` no task of the client is left behind (keep-alive, sweeper, resync)."""
    left = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("cucmconn-")]
    assert left == [], f"tasks left after close: {left}"


async def hold_one(fake: FakeConnector, client: Client, tally: Tally) -> asyncio.Task[object]:
    """A MakeCall the connector receives but never answers, counted in ``tally``: at least one
    command is surely in flight when the fault strikes, whatever the timing."""
    fake.hold.add("MakeCall")
    held = len(fake.held)
    # A long TTL, so it can only end as "lost with the link", never as a timeout.
    command = client.agent(AGENTS[0]).make_call(AGENTS[1], ttl=30.0)
    task = asyncio.create_task(counted(tally, command))
    await until(lambda: len(fake.held) > held, 10, "the held command to reach the connector")
    return task


async def start_load(client: Client) -> LoadDriver:
    """Every agent of ``AGENTS`` logged in, then the load running."""
    driver = LoadDriver(client, AGENTS, RATE)
    assert (await driver.login_all()).answered == len(AGENTS)
    driver.start()
    return driver


async def load_phase(driver: LoadDriver, seconds: float) -> Tally:
    """Let the load run for ``seconds``; returns a snapshot of the tally at its end."""
    await asyncio.sleep(seconds)
    return driver.tally.copy()


# -- broker SIGKILL ---------------------------------------------------------------------------


async def test_broker_sigkill_under_load_every_command_accounted(
    fresh_activemq: BrokerHandle, names: tuple[str, str]
) -> None:
    url = fresh_activemq.stomp_url
    fake = await start_fake(url, names[0])
    resyncs: list[float] = []
    client = make_client(url, names, on_resync=lambda c: resyncs.append(time.monotonic()))
    try:
        async with client:
            driver = LoadDriver(client, AGENTS, RATE)
            assert (await driver.login_all()).answered == len(AGENTS)
            await client.agent(IDLE).login()  # logged in, never driven: only a resync asks it
            driver.start()
            before = await load_phase(driver, 1.5)
            hellos = len(fake.commands("Hello"))
            held = await hold_one(fake, client, driver.tally)
            await asyncio.to_thread(fresh_activemq.kill)
            await until(lambda: not client.connected, 10, "the client to see the loss")
            await asyncio.sleep(0.5)  # a real outage: load keeps coming while the broker is gone
            restarted = time.monotonic()
            mark = len(fake.received)
            await asyncio.to_thread(fresh_activemq.start)
            await until(lambda: bool(resyncs) and client.in_service, 60, "resync")
            recovered = resyncs[0] - restarted
            at_recovery = driver.tally.copy()
            after = await load_phase(driver, 1.5)
            await driver.stop()
            await held
            tally = driver.tally
            await check_accounting(tally, client)
            assert before.answered > 0
            assert tally.lost_in_flight > 0, "the held command must end as lost, not time out"
            assert after.answered - at_recovery.answered > 0, "no command succeeded after recovery"
            assert len(fake.commands("Hello")) > hellos, "no Hello after the reconnect"
            resynced = [c.target for c in fake.received[mark:] if c.name == "GetState"]
            assert IDLE in resynced, "the idle agent was not resynchronised"
            stats = client.stats()
            assert stats.reconnects == 1
            print(
                f"\nFIGURE sigkill: {tally.line()}; resynced {recovered:.2f} s after the broker "
                f"process was started again; 0 pending; client.stats: sent {stats.sent}, "
                f"late {stats.late}, reconnects {stats.reconnects}"
            )
        assert_no_client_tasks()
    finally:
        await fake.stop()


# -- the connector (the emulator) goes away, loses its state, flaps ----------------------------

EXTENSIONS = f"{AGENTS[0]}-{AGENTS[-1]}"


def start_emulator(url: str, queue: str) -> Emulator:
    return Emulator(url, queue=queue, extensions=EXTENSIONS, max_backoff=0.5)


@pytest.mark.parametrize("how", ["process", "state"])
async def test_emulator_restart_under_load(
    activemq: BrokerHandle, names: tuple[str, str], how: str
) -> None:
    """``process``: the connector dies and a new one starts after more than a TTL (queued
    commands expire in the broker); ``state``: it restarts in place, forgetting agents and
    the commands it had not executed.  Either way every command ends and is counted, and the
    agents work again once the application logs them in again (the client shows them LOGOUT,
    from GetState, but does not log them in by itself: that is the application's call)."""
    emulator = start_emulator(activemq.stomp_url, names[0])
    await emulator.start()
    client = make_client(activemq.stomp_url, names)
    try:
        async with client:
            driver = await start_load(client)
            await load_phase(driver, 1.0)
            before = driver.tally.copy()
            if how == "process":
                await emulator.stop()
                await until(lambda: not client.in_service, 10, "the missed Beat")
                await asyncio.sleep(client.ttl + 0.5)
                emulator = start_emulator(activemq.stomp_url, names[0])
                await emulator.start()
                await until(lambda: client.in_service, 20, "Hello to find the new connector")
            else:
                emulator.restart()
            await load_phase(driver, 0.5)
            states = {client.agent(ext).state for ext in AGENTS}  # GetState told the truth
            relogin = await driver.login_all()  # what an application does on seeing LOGOUT
            at_recovery = driver.tally.copy()
            await load_phase(driver, 1.0)
            await driver.stop()
            tally = driver.tally
            await check_accounting(tally, client)
            assert states == {"LOGOUT"}, f"agents still shown as {states} after the restart"
            if how == "process":
                assert tally.timeouts > before.timeouts, "the connector's death timed nothing out"
            assert relogin.answered == len(AGENTS), relogin.line()
            assert tally.answered > at_recovery.answered, "no command succeeded after re-login"
            stats = emulator.stats()
            assert stats.internal_errors == 0
            print(
                f"\nFIGURE emulator-restart [{how}]: {tally.line()}; emulator: "
                f"lost in restart {stats.commands_lost_in_restart}, expired "
                f"{stats.commands_expired}, errors sent {stats.errors_sent}"
            )
    finally:
        await emulator.stop()


async def _emulator_process(url: str, queue: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cucmconn", "emulate", "--url", url, "--queue", queue,
        "--extensions", EXTENSIONS,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_connector_process_sigkill_under_load(
    activemq: BrokerHandle, names: tuple[str, str]
) -> None:
    """The connector process is SIGKILLed (no DISCONNECT: the broker learns from the dead
    socket) and a new one starts at once, faster than a missed Beat would show.  What the dead
    one had taken ends as a timeout, never as a late answer; commands sent meanwhile wait in
    the queue for the new one; the client's link never dropped, so nothing is
    ``ConnectionLost``; GetState shows the agents LOGOUT and a re-login works."""
    url, queue = activemq.stomp_url, names[0]
    proc = await _emulator_process(url, queue)
    client = make_client(url, names)
    try:
        async with client:
            driver = await start_load(client)
            before = await load_phase(driver, 1.0)
            proc.kill()
            await proc.wait()
            proc = await _emulator_process(url, queue)
            await until(
                lambda: client.in_service and driver.tally.answered > before.answered + 100,
                30,
                "commands answered by the new connector",
            )
            # The load's own GetState reaches every agent once its timed-out command (if any)
            # has ended; the new connector never saw a Login, so each is LOGOUT.
            await until(
                lambda: all(client.agent(ext).state == "LOGOUT" for ext in AGENTS),
                3 * client.ttl,
                "every agent shown LOGOUT by the new connector",
            )
            relogin = await driver.login_all()
            at_recovery = await load_phase(driver, 0.5)
            await load_phase(driver, 0.5)
            await driver.stop()
            tally = driver.tally
            await check_accounting(tally, client)
            assert tally.lost == 0 and tally.errors == 0, tally.line()
            assert relogin.answered == len(AGENTS), relogin.line()
            assert tally.answered > at_recovery.answered, "no command succeeded after re-login"
            assert client.stats().late == 0  # the dead process never answered after all
            print(
                f"\nFIGURE connector-sigkill: {tally.line()}; timeouts from the kill "
                f"{tally.timeouts - before.timeouts}"
            )
    finally:
        if proc.returncode is None:
            proc.kill()
        stderr = await proc.stderr.read() if proc.stderr else b""
        await proc.wait()
    assert b"Traceback" not in stderr, stderr.decode(errors="replace")[-2000:]


async def test_out_of_service_flapping_under_load(
    activemq: BrokerHandle, names: tuple[str, str]
) -> None:
    emulator = start_emulator(activemq.stomp_url, names[0])
    client = make_client(activemq.stomp_url, names)
    terminal_events = 0
    async with emulator, client:
        stream = client.events()
        driver = await start_load(client)
        flaps = 8
        for _ in range(flaps):
            await asyncio.sleep(0.25)
            await emulator.set_in_service(False)
            await until(lambda: not client.in_service, 10, "OUT_OF_SERVICE to be seen")
            await asyncio.sleep(0.25)
            await emulator.set_in_service(True)
            await until(lambda: client.in_service, 10, "IN_SERVICE to be seen")
        at_end = driver.tally.copy()
        await load_phase(driver, 0.5)
        await driver.stop()
        while (item := stream.get_nowait()) is not None:
            terminal_events += isinstance(item, TerminalStatus)
        tally = driver.tally
        await check_accounting(tally, client)
        assert tally.unavailable > 0
        assert tally.timeouts == 0 and tally.lost == 0 and tally.errors == 0, tally.line()
        assert tally.answered > at_end.answered, "no command succeeded after the last flap"
        assert terminal_events >= 2 * flaps * len(AGENTS) * 0.5  # out/in per agent, most kept
        print(
            f"\nFIGURE flapping ({flaps} outages, emulator): {tally.line()}; "
            f"{terminal_events} Terminal events seen"
        )


# -- a TCP proxy that misbehaves between client and broker ----------------------------------------


@pytest.mark.parametrize("fault", ["half_open", "stall", "stall_up", "stall_down", "cut"])
async def test_link_faults_under_load(
    activemq: BrokerHandle, fake: FakeConnector, names: tuple[str, str], fault: str
) -> None:
    proxy = await FaultProxy(activemq.host, activemq.stomp_port).start()
    resyncs: list[float] = []
    client = make_client(
        proxy.url(),
        names,
        on_resync=lambda c: resyncs.append(time.monotonic()),
        transport_options={"max_backoff": 0.5, "heartbeat": 300, "connect_timeout": 1.0},
    )
    try:
        async with client:
            driver = await start_load(client)
            await load_phase(driver, 1.0)
            held = await hold_one(fake, client, driver.tally)
            broken = time.monotonic()
            if fault == "cut":
                proxy.cut(refuse=True)
            elif fault.startswith("stall_"):
                proxy.stall(fault.removeprefix("stall_"))  # type: ignore[arg-type]
            else:
                getattr(proxy, fault)()  # half_open() / stall(): sockets stay open
            noticed = await until(lambda: not client.connected, 10, "the link to be declared dead")
            # Commands in flight fail with the link (their tasks resume a tick later), well
            # inside their TTL: nobody waits for a timeout on a link known to be dead.
            await until(lambda: driver.tally.lost_in_flight > 0, 0.5, "the held command's loss")
            proxy.heal()
            await until(lambda: bool(resyncs) and client.in_service, 30, "reconnect and resync")
            healed = resyncs[0] - broken
            at_recovery = driver.tally.copy()
            await load_phase(driver, 1.0)
            await driver.stop()
            await held
            tally = driver.tally
            await check_accounting(tally, client)
            assert tally.answered > at_recovery.answered
            if fault != "cut":
                # Only heart-beats can reveal a silent link: ours (the read watchdog, 2 beats of
                # 300 ms) when the broker goes quiet, ActiveMQ's (1.5 beats) when we seem to.
                assert noticed < DETECT_LIMIT, f"a silent link went unnoticed for {noticed:.1f} s"
            print(
                f"\nFIGURE {fault}: {tally.line()}; link declared dead after {noticed:.2f} s, "
                f"resynced {healed:.2f} s after the fault"
            )
        assert_no_client_tasks()
    finally:
        await proxy.close()


async def test_in_flight_command_fails_with_connection_lost_not_timeout(
    activemq: BrokerHandle, fake: FakeConnector, names: tuple[str, str]
) -> None:
    """A command whose answer is cut off ends with ConnectionLost, once, and is never re-sent."""
    proxy = await FaultProxy(activemq.host, activemq.stomp_port).start()
    client = make_client(proxy.url(), names, ttl=10.0)
    try:
        async with client:
            agent = client.agent(AGENTS[0])
            await agent.login()
            fake.hold.add("MakeCall")
            task = asyncio.create_task(agent.make_call(AGENTS[1]))
            await until(lambda: len(fake.held) == 1, 10, "the command to reach the connector")
            proxy.cut()
            with pytest.raises(ConnectionLost, match="not re-sent"):
                await asyncio.wait_for(task, 5.0)  # well inside the 10 s TTL
            await until(lambda: client.in_service, 30, "reconnect")
            await asyncio.sleep(0.5)
            assert len(fake.commands("MakeCall")) == 1
    finally:
        await proxy.close()
