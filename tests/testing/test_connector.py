"""The pytest plugin's fixtures as a user's test meets them: ``connector``, ``cucmconn_client``,
``cucmconn_client_factory``, the ``cucmconn`` marker, call handles, outages, faults, waiting
and deterministic snapshots.  (The plugin is loaded here through its ``pytest11`` entry point,
exactly as in a user's project.)
"""

from __future__ import annotations

import json

import pytest

from cucmconn import Client, CommandError, CommandTimeout, DialogState, ServiceUnavailable
from cucmconn.testing import (
    DETERMINISTIC_EPOCH,
    CallHandle,
    CallState,
    ClientFactory,
    Connector,
    ConnectorOptions,
    ScenarioTimeout,
    open_connector,
)

CID = "52129051"
SNAPSHOT = """\
  #1 -> Hello#client-1  [c1 from client-1]
  #2 <- System#IN_SERVICE  [c1 to client-1]
  #3 -> Login#1001 client-1  [c2 from client-1]
  #4 <- 1001#AgentInfo#1001#SEP0000000003E9  [c2 to client-1]
  #5 <- 1001#AgentState#READY#2026-01-01 09:00:00  [c2 to client-1]
  #6 <- 1001#DialogState#IDLE#2026-01-01 09:00:00  [c2 to client-1]
  #7 <- 1001#InboundCall#ALERTING#2026-01-01 09:00:00#52129051#5550100  [no id to client-1]
  #8 -> AnswerCall#1001 52129051  [c3 from client-1]
  #9 <- 1001#DialogState#ACTIVE#2026-01-01 09:00:00#52129051#5550100,1001  [c3 to client-1]
  #10 <- 1001#AgentState#TALKING#2026-01-01 09:00:00  [c3 to client-1]"""


async def test_a_client_and_the_connector_meet_on_a_fresh_broker(
    connector: Connector, cucmconn_client: Client
) -> None:
    assert connector.url.startswith("memory://cucmconn-test-")
    assert connector.queue == "Connector1"
    assert cucmconn_client.in_service
    await cucmconn_client.agent("1001").login()
    login = await connector.wait_for("Login", agent="1001")
    assert login.reply_to == f"/topic/{cucmconn_client.destination}"


async def test_each_test_gets_its_own_broker(connector: Connector) -> None:
    assert not connector.commands  # nothing from the previous test


@pytest.mark.cucmconn(extensions="1001-1002", licenses=1, event_format="json")
async def test_the_marker_sets_extensions_licences_and_format(
    connector: Connector, cucmconn_client: Client
) -> None:
    with pytest.raises(CommandError) as unknown:
        await cucmconn_client.agent("1003").login()
    assert unknown.value.code == "USER_NOT_FOUND"
    await cucmconn_client.agent("1001").login()
    with pytest.raises(CommandError) as licences:
        await cucmconn_client.agent("1002").login()
    assert licences.value.code == "LICENSES_EXCEEDED"
    assert all(isinstance(json.loads(e.text), dict) for e in connector.events)


@pytest.mark.cucmconn(extensions="1001-1002")
class TestMarkersMerge:
    @pytest.mark.cucmconn(licenses=0)
    async def test_closest_marker_wins_and_others_still_apply(
        self, connector: Connector, cucmconn_client: Client
    ) -> None:
        with pytest.raises(CommandError) as refused:
            await cucmconn_client.agent("1001").login()
        assert refused.value.code == "LICENSES_EXCEEDED"  # licenses from the function
        assert connector.emulator.directory.spec == "1001-1002"  # extensions from the class


def test_unknown_options_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"unknown cucmconn option.*extension\b"):
        ConnectorOptions().updated({"extension": "1001"})


async def test_factory_makes_more_clients_and_closes_them(
    connector: Connector, cucmconn_client_factory: ClientFactory
) -> None:
    supervisor = await cucmconn_client_factory(ttl=1.0)
    crm = await cucmconn_client_factory()
    assert supervisor.destination != crm.destination and supervisor.ttl == 1.0
    await crm.agent("1001").login()
    with pytest.raises(CommandError) as stolen:  # another client owns 1001
        await supervisor.send("MakeReady", "1001")
    assert stolen.value.code == "PRIVILLEGE_VIOLATION"


def state_now(call: CallHandle) -> CallState:
    """``call.state`` read afresh: mypy would keep an earlier assert's narrowing of the property
    across the awaits that change it."""
    return call.state


async def test_placed_call_is_answered_at_the_phone_then_released_by_the_customer(
    connector: Connector, cucmconn_client: Client
) -> None:
    agent = cucmconn_client.agent("1001")
    await agent.login()
    call = await connector.place_call(to="1001", caller="5550123")
    assert (call.connection_id, call.state) == (CID, "ringing")
    await connector.wait_for_event("InboundCall", agent="1001", state="ALERTING")
    await call.answer()
    await connector.until(lambda: agent.state == "TALKING", what="1001 talking")
    assert state_now(call) == "connected"
    with pytest.raises(RuntimeError, match="only a ringing call can be abandoned"):
        await call.abandon()
    await call.release()
    await connector.until(lambda: agent.state == "READY", what="1001 ready again")
    assert state_now(call) == "ended"


async def test_an_abandoned_call_ends_while_ringing(
    connector: Connector, cucmconn_client: Client
) -> None:
    await cucmconn_client.agent("1001").login()
    call = await connector.place_call(to="1001")
    await call.abandon()
    dropped = await connector.wait_for_event("DialogState", agent="1001", state="DROPPED")
    assert isinstance(dropped.event, DialogState)
    assert dropped.event.connection_id == call.connection_id
    assert call.state == "ended"


async def test_the_application_answers_a_placed_call(
    connector: Connector, cucmconn_client: Client
) -> None:
    agent = cucmconn_client.agent("1001")
    await agent.login()
    call = await connector.place_call(to="1001")
    await agent.answer(call.connection_id)
    await call.wait_until("connected")
    with pytest.raises(ScenarioTimeout, match="call 52129051 from 5550100 to 1001 ended"):
        await call.wait_until("ended", within=0.1)


async def test_place_call_waits_for_the_agent_and_says_so_when_it_never_logs_in(
    connector: Connector,
) -> None:
    with pytest.raises(ScenarioTimeout) as failed:
        await connector.place_call(to="1001", within=0.1)
    assert "expected agent 1001 logged in and free: not seen within 0.1 s" in str(failed.value)


async def test_an_agent_dials_a_customer_who_answers_and_hangs_up(
    connector: Connector, cucmconn_client: Client
) -> None:
    agent = cucmconn_client.agent("1001")
    await agent.login()
    await agent.make_call("5550199")
    call = await connector.outbound_call(to="5550199")
    assert (call.caller, call.customer, call.state) == ("1001", "5550199", "ringing")
    await call.answer()
    await connector.wait_for_event("DialogState", agent="1001", state="ACTIVE")
    await call.release()
    await connector.until(lambda: agent.state == "READY", what="1001 ready")


async def test_an_outage_and_the_return_to_service(
    connector: Connector, cucmconn_client: Client
) -> None:
    await connector.set_in_service(False)
    await connector.until(lambda: not cucmconn_client.in_service, what="client sees the outage")
    with pytest.raises(ServiceUnavailable):
        await cucmconn_client.agent("1001").login()
    await connector.set_in_service(True)
    await connector.until(lambda: cucmconn_client.in_service, what="client back in service")
    await cucmconn_client.agent("1001").login()


async def test_faults_through_the_connector(connector: Connector, cucmconn_client: Client) -> None:
    agent = cucmconn_client.agent("1001")
    connector.fail_next("Login", agent="1001", code="USER_NOT_FOUND")
    with pytest.raises(CommandError):
        await agent.login()
    await agent.login()
    connector.drop_next_answer("GetState")
    with pytest.raises(Exception, match="GetState"):
        await agent.get_state(ttl=0.2)
    record = await connector.wait_for("GetState")
    assert record.fault == "drop the answer (GetState)"


async def test_a_slow_answer_times_the_command_out(
    connector: Connector, cucmconn_client: Client
) -> None:
    agent = cucmconn_client.agent("1001")
    await agent.login()
    connector.delay_next("MakeNotReady", agent="1001", seconds=1.0)
    with pytest.raises(CommandTimeout):
        await agent.make_not_ready(ttl=0.3)
    # It reaches the connector after its TTL, so the connector skips it, as the real one does.
    stats = connector.emulator.stats
    await connector.until(lambda: stats().commands_expired == 1, what="the late command skipped")
    assert agent.state == "READY"


@pytest.mark.cucmconn(deterministic=True)
async def test_deterministic_history_can_be_written_down_in_advance(
    connector: Connector, cucmconn_client: Client
) -> None:
    agent = cucmconn_client.agent("1001")
    await agent.login()
    call = await connector.place_call(to="1001", caller="5550100")
    await agent.answer(call.connection_id)
    await connector.wait_for("AnswerCall")
    assert connector.transcript(100) == SNAPSHOT
    assert connector.clock() == DETERMINISTIC_EPOCH
    connector.clock.advance(61)
    await agent.release(call.connection_id)
    assert connector.events[-1].text == "1001#AgentState#READY#2026-01-01 09:01:01"
    assert connector.deterministic and cucmconn_client.destination == "client-1"


async def test_a_connector_on_the_wall_clock_has_no_clock_to_move(
    connector: Connector, cucmconn_client: Client
) -> None:
    assert not connector.deterministic
    assert cucmconn_client.destination != "client-1"
    with pytest.raises(RuntimeError, match=r"cucmconn\(deterministic=True\)"):
        connector.clock.advance(61)


async def test_open_connector_works_without_pytest_fixtures() -> None:
    async with open_connector(extensions="2000-2009") as emulated:
        async with emulated.client() as client:
            await client.agent("2000").login()
        assert [c.name for c in emulated.commands] == ["Hello", "Login"]
    with pytest.raises(CommandTimeout):  # the connector is gone
        async with emulated.client(handshake_timeout=0.2) as client:
            pass
