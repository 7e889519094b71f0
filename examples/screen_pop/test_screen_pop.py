"""Tests of the screen pop, written as its author would: cucmconn's pytest fixtures only.

``connector`` is an emulated CUCM Connector (a fresh one per test), ``cucmconn_client`` a
connected client to it.  ``pytest --cucmconn-url stomp://host:61613`` runs the same tests
against a real broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from screen_pop import Customer, DictCrm, Pop, ScreenPop

from cucmconn import Client
from cucmconn.testing import Connector

ALICE = Customer("Alice Example", "AC-1001")


class SlowCrm:
    """A CRM that answers after ``delay`` seconds (or never, past the service's timeout)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def lookup(self, number: str) -> Customer | None:
        await asyncio.sleep(self.delay)
        return ALICE


@pytest.fixture
async def pops(cucmconn_client: Client) -> AsyncIterator[list[Pop]]:
    """Run the service on the test's client; collect what it publishes."""
    published: list[Pop] = []

    async def publish(pop: Pop) -> None:
        published.append(pop)

    crm = DictCrm({"5550100": ALICE})
    service = ScreenPop(cucmconn_client, ["1001", "1002"], crm, publish)
    task = asyncio.create_task(service.run())
    yield published
    task.cancel()


async def test_a_known_caller_pops_the_customer(connector: Connector, pops: list[Pop]) -> None:
    call = await connector.place_call(to="1001", caller="5550100")
    await connector.until(lambda: len(pops) == 1, what="one screen pop")
    assert pops == [Pop("1001", call.connection_id, "5550100", ALICE)]


async def test_an_unknown_caller_pops_the_number_alone(
    connector: Connector, pops: list[Pop]
) -> None:
    call = await connector.place_call(to="1002", caller="5559999")
    await connector.until(lambda: len(pops) == 1, what="one screen pop")
    assert pops == [Pop("1002", call.connection_id, "5559999", None)]


async def test_each_ringing_call_pops_once_even_if_answered_and_released(
    connector: Connector, pops: list[Pop]
) -> None:
    first = await connector.place_call(to="1001", caller="5550100")
    await first.answer()
    await first.release()
    second = await connector.place_call(to="1001", caller="5550100")
    await second.abandon()
    await connector.until(lambda: len(pops) == 2, what="two screen pops")
    assert [p.connection_id for p in pops] == [first.connection_id, second.connection_id]


async def test_an_agent_that_cannot_log_in_does_not_stop_the_others(
    connector: Connector, cucmconn_client: Client
) -> None:
    connector.fail_next("Login", agent="1001", code="LICENSES_EXCEEDED")
    pops: list[Pop] = []

    async def publish(pop: Pop) -> None:
        pops.append(pop)

    service = ScreenPop(cucmconn_client, ["1001", "1002"], DictCrm({}), publish)
    task = asyncio.create_task(service.run())
    try:
        await connector.place_call(to="1002", caller="5550123")
        await connector.until(lambda: len(pops) == 1, what="a pop for 1002")
        assert service.failed_logins == {"1001": "LICENSES_EXCEEDED"}
    finally:
        task.cancel()


async def test_a_slow_crm_still_pops_in_time_and_a_dead_one_pops_the_number(
    connector: Connector, cucmconn_client: Client
) -> None:
    pops: list[Pop] = []

    async def publish(pop: Pop) -> None:
        pops.append(pop)

    service = ScreenPop(cucmconn_client, ["1001"], SlowCrm(5.0), publish, lookup_timeout=0.2)
    task = asyncio.create_task(service.run())
    try:
        await connector.place_call(to="1001", caller="5550100")
        await connector.until(lambda: len(pops) == 1, what="a pop despite the CRM")
        assert pops[0].customer is None and pops[0].number == "5550100"
    finally:
        task.cancel()


async def test_pops_resume_after_cucm_was_out_of_service(
    connector: Connector, cucmconn_client: Client, pops: list[Pop]
) -> None:
    await connector.wait_for("Login", agent="1002")
    await connector.set_in_service(False)
    await connector.until(lambda: not cucmconn_client.in_service, what="the outage is seen")
    await connector.set_in_service(True)
    call = await connector.place_call(to="1002", caller="5550100")
    await connector.until(lambda: len(pops) == 1, what="a pop after the outage")
    assert pops[0].connection_id == call.connection_id
