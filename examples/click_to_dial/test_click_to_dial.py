"""Tests of the click-to-dial endpoint: HTTP in, connector commands out, connector answers back
as HTTP statuses.  cucmconn's pytest fixtures only (plus aiohttp's own test client).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import test_utils
from click_to_dial import make_app

from cucmconn import Client
from cucmconn.testing import ClientFactory, Connector

HttpClient = test_utils.TestClient[Any, Any]  # (an alias: pytest would collect Test* names)


@pytest.fixture
async def http(cucmconn_client: Client) -> AsyncIterator[HttpClient]:
    """The web application on a local port, over the test's connected cucmconn client."""
    async with test_utils.TestClient(test_utils.TestServer(make_app(cucmconn_client))) as client:
        yield client


async def test_dialling_makes_the_agents_phone_call_the_number(
    connector: Connector, cucmconn_client: Client, http: HttpClient
) -> None:
    response = await http.post("/agents/1001/calls", json={"number": "5550100"})
    assert response.status == 201
    body = await response.json()
    # The service logged the agent in on first use, then sent MakeCall.
    await connector.wait_for("Login", agent="1001")
    await connector.wait_for("MakeCall", agent="1001", args=["5550100"])
    assert body == {"connection_id": "52129051", "state": "INITIATED"}
    # The customer picks up: the agent is talking; then the agent hangs up over HTTP.
    call = await connector.outbound_call(to="5550100")
    await call.answer()
    # The connector has sent the news; wait until the service's client has it too.
    agent = cucmconn_client.agent("1001")
    await connector.until(
        lambda: agent.calls[call.connection_id].state == "ACTIVE", what="the call is up"
    )
    state = await (await http.get("/agents/1001")).json()
    assert state == {"state": "TALKING", "calls": {"52129051": "ACTIVE"}}
    hung = await http.delete(f"/agents/1001/calls/{call.connection_id}")
    assert hung.status == 200
    assert call.state == "ended"


async def test_a_refused_call_is_409_with_the_connectors_code_and_advice(
    connector: Connector, http: HttpClient
) -> None:
    connector.fail_next("MakeCall", agent="1001", code="CF_INVALID_OBJECT_STATE")
    response = await http.post("/agents/1001/calls", json={"number": "5550100"})
    assert response.status == 409
    body = await response.json()
    assert body["error"] == "CF_INVALID_OBJECT_STATE"
    assert body["advice"]  # the guide's advice for the code, for the operator


async def test_no_answer_from_the_connector_is_504(
    connector: Connector, cucmconn_client_factory: ClientFactory
) -> None:
    impatient = await cucmconn_client_factory(ttl=0.5)
    async with test_utils.TestClient(test_utils.TestServer(make_app(impatient))) as http:
        connector.drop_next_answer("MakeCall")
        response = await http.post("/agents/1001/calls", json={"number": "5550100"})
        assert response.status == 504


async def test_cucm_out_of_service_is_503(
    connector: Connector, cucmconn_client: Client, http: HttpClient
) -> None:
    await connector.set_in_service(False)
    await connector.until(lambda: not cucmconn_client.in_service, what="the outage is seen")
    response = await http.post("/agents/1001/calls", json={"number": "5550100"})
    assert response.status == 503
    assert [c.name for c in connector.commands if c.name == "MakeCall"] == []


@pytest.mark.parametrize("number", ["555,0100", "555#0100", "555|0100"])
async def test_a_number_that_would_inject_a_field_is_400_and_nothing_is_sent(
    connector: Connector, http: HttpClient, number: str
) -> None:
    response = await http.post("/agents/1001/calls", json={"number": number})
    assert response.status == 400
    assert "MakeCall" not in [c.name for c in connector.commands]


async def test_a_request_without_a_number_is_400(http: HttpClient) -> None:
    assert (await http.post("/agents/1001/calls", json={})).status == 400
    assert (await http.post("/agents/1001/calls", data=b"not json")).status == 400


@pytest.mark.cucmconn(extensions="1001-1010", dial_out=False)
async def test_without_dial_out_an_outside_number_is_invalid_party(
    http: HttpClient,
) -> None:
    response = await http.post("/agents/1001/calls", json={"number": "5550100"})
    assert response.status == 409
    assert (await response.json())["error"] == "INVALID_PARTY"
