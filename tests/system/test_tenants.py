"""Tenant isolation on a real broker run as ``cucmconn broker start --secure`` (issue 11, case 4).

The broker authenticates every client, lets each read only its own topics, and stamps each
command with its real sender (``JMSXUserID``).  The emulator, logged in as the connector user
with ``require_sender``, refuses a command whose sender does not own the topic it would be
answered on.  crm1 and crm2 are two tenants; agent 1001 belongs to crm1.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from cucmconn import Client, Emulator
from cucmconn.emulator.front import REFUSAL_LOG_INTERVAL
from cucmconn.errors import ConnectorError
from cucmconn.transport import Message, Transport, open_transport
from tests.activemq import TenantBrokerHandle
from tests.waiting import waiter

until = waiter(15.0)
QUEUE = "/queue/Connector1"


@dataclass
class Tenants:
    """An emulator as the connector user, crm1's client with 1001 logged in, crm2's link."""

    emu: Emulator
    crm1: Client
    crm1_seen: list[Message]
    crm2: Transport
    crm2_seen: list[Message]


async def _raw(url: str) -> Transport:
    transport = open_transport(url, reconnect=False)
    await transport.connect()
    return transport


@pytest.fixture
async def tenants(
    tenant_activemq: TenantBrokerHandle, request: pytest.FixtureRequest
) -> AsyncIterator[Tenants]:
    check = getattr(request, "param", True)
    async with Emulator(tenant_activemq.url("connector"), require_sender=check, licenses=10) as emu:
        crm1 = Client(tenant_activemq.url("crm1"), client_destination="crm1", ttl=5)
        async with crm1:
            watcher = await _raw(tenant_activemq.url("crm1"))
            crm1_seen: list[Message] = []
            await watcher.subscribe("/topic/crm1", crm1_seen.append)
            crm2 = await _raw(tenant_activemq.url("crm2"))
            crm2_seen: list[Message] = []
            await crm2.subscribe("/topic/crm2", crm2_seen.append)
            await crm1.agent("1001").login()
            try:
                yield Tenants(emu, crm1, crm1_seen, crm2, crm2_seen)
            finally:
                await crm2.close()
                await watcher.close()
                agent = crm1.agent("1001")
                if agent.logged_in:
                    await agent.logout()


async def _forge_logout(t: Tenants) -> str:
    """crm2 sends Logout#1001 answered on crm1's topic, claiming to be crm1; then a Hello of
    its own, whose answer proves the emulator has dealt with the forged command (one queue,
    one producer, one worker: order is kept)."""
    forged = f"forged-{uuid.uuid4().hex[:8]}"
    await t.crm2.send(
        QUEUE,
        "",
        jms_type="Logout#1001",
        correlation_id=forged,
        reply_to="/topic/crm1",
        ttl=10,
        headers={"JMSXUserID": "crm1"},
    )
    mark = f"mark-{uuid.uuid4().hex[:8]}"
    await t.crm2.send(QUEUE, "", jms_type="Hello#crm2", correlation_id=mark, reply_to="/topic/crm2")
    await until(lambda: any(m.correlation_id == mark for m in t.crm2_seen))
    return forged


async def test_forged_reply_to_is_refused_and_the_agent_stays_logged_in(
    tenants: Tenants, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cucmconn.emulator")
    before = tenants.emu.stats().refused_sender
    forged = await _forge_logout(tenants)
    # crm1's own GetState, answered after the forged command: 1001 is still logged in
    state = await tenants.crm1.agent("1001").get_state()
    assert getattr(state, "state", None) == "READY"
    assert tenants.emu.stats().agents_logged_in == 1
    assert tenants.emu.stats().refused_sender == before + 1
    assert not [m for m in tenants.crm1_seen if m.correlation_id == forged]
    assert tenants.crm1.agent("1001").logged_in
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any("'crm2'" in line and "/topic/crm1" in line for line in refusals)
    print(
        f"\nFIGURE tenants-after: forged Logout refused (refused_sender +1), 1001 READY, "
        f"0 answers on /topic/crm1, {len(refusals)} log line"
    )


@pytest.mark.parametrize("tenants", [False], indirect=True)
async def test_before_the_check_the_forged_logout_is_obeyed(tenants: Tenants) -> None:
    """The figure "before" in docs/reliability.md: the broker's ACLs alone do not stop it."""
    forged = await _forge_logout(tenants)
    await until(lambda: any(m.correlation_id == forged for m in tenants.crm1_seen))
    assert tenants.emu.stats().agents_logged_in == 0
    assert tenants.emu.stats().refused_sender == 0
    answers = [m.text() for m in tenants.crm1_seen if m.correlation_id == forged]
    print(f"\nFIGURE tenants-before: forged Logout executed, 1001 logged out, answers {answers}")


async def test_a_flood_of_forged_commands_is_refused_and_logged_sparingly(
    tenants: Tenants, caplog: pytest.LogCaptureFixture
) -> None:
    """1,000 forged commands of three kinds: none runs, none is answered on crm1's topic, the
    log gets about one line a second, and crm1 keeps working meanwhile."""
    caplog.set_level(logging.WARNING, logger="cucmconn.emulator")
    before = tenants.emu.stats().refused_sender
    kinds = [
        ("Logout#1001", "", "/topic/crm1"),
        ("MakeCall#1001", "1002", "/topic/crm1.desk"),
        ("Login#1003", "crm1", None),  # no reply-to: the topic named in the body is checked
    ]
    started = time.monotonic()
    for index in range(1000):
        jms_type, body, reply_to = kinds[index % 3]
        await tenants.crm2.send(
            QUEUE, body, jms_type=jms_type, correlation_id=f"flood-{index}", reply_to=reply_to
        )
    mark = f"mark-{uuid.uuid4().hex[:8]}"
    await tenants.crm2.send(
        QUEUE, "", jms_type="Hello#crm2", correlation_id=mark, reply_to="/topic/crm2"
    )
    await until(lambda: any(m.correlation_id == mark for m in tenants.crm2_seen))
    elapsed = time.monotonic() - started
    state = await tenants.crm1.agent("1001").get_state()
    assert getattr(state, "state", None) == "READY"
    refused = tenants.emu.stats().refused_sender - before
    assert refused == 1000
    assert not [m for m in tenants.crm1_seen if (m.correlation_id or "").startswith("flood-")]
    assert tenants.emu.stats().agents_logged_in == 1
    lines = [r for r in caplog.records if "refused" in r.getMessage()]
    assert 1 <= len(lines) <= elapsed / REFUSAL_LOG_INTERVAL + 2
    print(
        f"\nFIGURE tenants-flood: {refused} forged commands refused in {elapsed:.2f} s, "
        f"0 executed, 0 answered on crm1's topics, {len(lines)} log line(s)"
    )


async def test_a_tenant_cannot_read_another_tenants_topic(
    tenant_activemq: TenantBrokerHandle,
) -> None:
    crm2 = await _raw(tenant_activemq.url("crm2"))
    try:
        with pytest.raises(ConnectorError, match="not authorized to read"):
            await crm2.subscribe("/topic/crm1", lambda m: None)
    finally:
        await crm2.close()
    crm2 = await _raw(tenant_activemq.url("crm2"))
    try:
        await crm2.subscribe("/topic/crm2.desk7", lambda m: None)  # its own: allowed
        await crm2.subscribe("/topic/ActiveMQ.Advisory.Consumer.Queue.Connector1", lambda m: None)
    finally:
        await crm2.close()


async def test_the_broker_overwrites_a_forged_sender(tenant_activemq: TenantBrokerHandle) -> None:
    """Read as the connector: crm2's command carries JMSXUserID crm2, not the crm1 it wrote."""
    connector = await _raw(tenant_activemq.url("connector"))
    crm2 = await _raw(tenant_activemq.url("crm2"))
    seen: list[Message] = []
    mark = f"probe-{uuid.uuid4().hex[:8]}"
    try:
        await connector.subscribe(QUEUE, seen.append)
        await crm2.send(
            QUEUE, "", jms_type="Hello#crm2", correlation_id=mark, headers={"JMSXUserID": "crm1"}
        )
        await until(lambda: any(m.correlation_id == mark for m in seen))
    finally:
        await crm2.close()
        await connector.close()
    (probe,) = [m for m in seen if m.correlation_id == mark]
    assert probe.headers.get("JMSXUserID") == "crm2"


async def test_a_wrong_passcode_is_refused(tenant_activemq: TenantBrokerHandle) -> None:
    url = tenant_activemq.url("crm1").replace("@", "x@", 1)
    with pytest.raises(ConnectorError):
        await asyncio.wait_for(_raw(url), 10)
