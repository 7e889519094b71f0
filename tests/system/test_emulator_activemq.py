"""The emulator on a real ActiveMQ: every STOMP transport it can run on, and the command line
(``python -m cucmconn.emulator``) as a separate process that a client drives until SIGINT.

The scenario matrix (every command, error and format on memory:// and ActiveMQ) lives in
``test_emulator.py``; this file covers what only a real broker and a real process can show.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid

import pytest

from cucmconn import Client, CommandError, DialogState, Emulator
from cucmconn.cli.main import main
from cucmconn.transport.aiostomp_adapter import AiostompTransport
from cucmconn.transport.split import SplitTransport
from cucmconn.transport.stomp import StompTransport
from tests.activemq import BrokerHandle
from tests.waiting import waiter

pytestmark = pytest.mark.activemq


until = waiter(30.0)


async def call_flow(client_url: str, queue: str, tag: str) -> None:
    """Two agents on one client: make, answer, hold, retrieve, release, logout."""
    async with Client(client_url, client_destination=f"crm-{tag}", queue=queue) as client:
        a, b = client.agent("1001"), client.agent("1002")
        await a.login()
        await b.login()
        made = await a.make_call("1002")
        assert isinstance(made, DialogState) and made.connection_id is not None
        cid = made.connection_id
        await until(lambda: cid in b.calls)
        assert (await b.answer(cid)).state == "ACTIVE"
        assert (await a.hold(cid)).state == "HELD"
        assert (await a.retrieve(cid)).state == "ACTIVE"
        assert (await b.release(cid)).state == "DROPPED"
        await until(lambda: not a.calls and a.state == "READY")
        await a.logout()
        await b.logout()


@pytest.mark.parametrize(
    ("scheme", "query", "kind"),
    [
        ("stomp", "", SplitTransport),  # the default: two links (transport/split.py)
        ("stomp", "?split_links=false", StompTransport),
        ("aiostomp", "", AiostompTransport),
    ],
)
async def test_emulator_and_client_on_every_stomp_transport(
    activemq: BrokerHandle, scheme: str, query: str, kind: type
) -> None:
    url = activemq.aiostomp_url if scheme == "aiostomp" else activemq.stomp_url
    tag = uuid.uuid4().hex[:8]
    queue = f"Connector-{tag}"
    async with Emulator(url + query, queue=queue) as emu:
        assert type(emu.transport) is kind
        await call_flow(url, queue, tag)
        stats = emu.stats()
    assert stats.commands_executed == stats.commands_received > 0
    assert stats.internal_errors == 0 and stats.agents_logged_in == 0


async def test_emulator_on_aiostomp_serves_a_client_on_stomp(activemq: BrokerHandle) -> None:
    """Emulator and client on different STOMP stacks meet on the same broker."""
    tag = uuid.uuid4().hex[:8]
    queue = f"Connector-{tag}"
    async with Emulator(activemq.aiostomp_url, queue=queue, event_format="json"):
        await call_flow(activemq.stomp_url, queue, tag)


def test_main_refuses_bad_options() -> None:
    for argv in (["--extensions", "10-1"], ["--licenses", "-1"], ["--format", "xml"]):
        assert main(["emulate", *argv]) == 2


def _start_cli(url: str, queue: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cucmconn.emulator",
            "--url",
            url,
            "--queue",
            queue,
            "--extensions",
            "1000-1099,2000",
            "--licenses",
            "2",
            "--format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def test_cli_runs_until_interrupted(activemq: BrokerHandle) -> None:
    tag = uuid.uuid4().hex[:8]
    queue = f"Connector-{tag}"
    process = _start_cli(activemq.stomp_url, queue)
    try:
        client = Client(
            activemq.stomp_url,
            client_destination=f"crm-{tag}",
            queue=queue,
            handshake_timeout=60,
        )
        async with client:
            await client.agent("1001").login()
            await client.agent("2000").login()
            with pytest.raises(CommandError) as info:
                await client.agent("1002").login()
            assert info.value.code == "LICENSES_EXCEEDED"
            with pytest.raises(CommandError) as info:
                await client.agent("1500").login()
            assert info.value.code == "USER_NOT_FOUND"
        assert process.poll() is None  # still serving
        process.send_signal(signal.SIGINT)
        _, err = await asyncio.to_thread(process.communicate, timeout=30)
        assert process.returncode == 0, err.decode()
        assert b"Ctrl-C to stop" in err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
