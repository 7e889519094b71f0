"""``connector_from_trace``: a recorded connector (``cucmconn.Replayer`` on the guide's trace)
as a test's connector, with the same history, waiting and failure messages as ``connector``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cucmconn import CommandError
from cucmconn.emulator import Emulator, Scenario
from cucmconn.emulator.checks import ScenarioChecks
from cucmconn.testing import Connector, ScenarioTimeout, TraceConnector

GUIDE = Path(__file__).resolve().parents[1] / "traces" / "guide.jsonl"


async def test_a_recorded_connector_answers_the_application(connector_from_trace: Any) -> None:
    replay = await connector_from_trace(GUIDE, speed=20)
    # A fresh memory:// broker, or (with --cucmconn-url) a command queue of its own.
    assert replay.url.startswith("memory://cucmconn-trace-") or replay.queue.startswith(
        "cucmconn-test-"
    )
    async with replay.client() as client:
        agent = client.agent("42031")
        info = await agent.login()
        assert info.agent_id == "42031"
        login = await replay.wait_for("Login", agent="42031")
        assert login.reply_to == f"/topic/{client.destination}"
        await replay.until(lambda: agent.state == "READY", what="42031 READY as recorded")
    assert replay.stats().commands_answered >= 2  # Hello and Login
    assert [type(e.event).__name__ for e in replay.events][:4] == [
        "SystemStatus",
        "AgentInfo",
        "AgentState",
        "DialogState",
    ]


async def test_a_command_the_trace_cannot_answer_and_a_fault(connector_from_trace: Any) -> None:
    replay = await connector_from_trace(GUIDE, speed=20)
    async with replay.client() as client:
        with pytest.raises(CommandError) as unknown:
            await client.agent("1234").login()
        assert unknown.value.code == "CF_INVALID_OBJECT_STATE"
        assert "Login#1234" in replay.replayer.unanswered_commands
        replay.fail_next("Login", agent="42031", code="LICENSES_EXCEEDED")
        with pytest.raises(CommandError) as refused:
            await client.agent("42031").login()
        assert refused.value.code == "LICENSES_EXCEEDED"
        await client.agent("42031").login()  # the recorded answer was kept for this one
        with pytest.raises(ScenarioTimeout, match=r"(?s)expected MakeCall.*-> Login#42031"):
            await replay.wait_for("MakeCall", within=0.1)


def test_both_doubles_share_one_set_of_checks() -> None:
    """Connector (an emulator), TraceConnector (a replayed trace) and the Emulator itself wait
    and read the history through one definition (issue 12), not copies of the same wrappers;
    only the Emulator's wait_for adds something (it also waits for the answers)."""
    for name in ("wait_for", "wait_for_event", "until", "transcript", "commands", "events"):
        shared = ScenarioChecks.__dict__[name]
        assert name not in Connector.__dict__ and name not in TraceConnector.__dict__, name
        assert getattr(Connector, name) is getattr(TraceConnector, name) is shared, name
        assert (name in Emulator.__dict__) == (name == "wait_for"), name


async def test_scenario_until_says_what_it_expected() -> None:
    """Scenario.until takes the same keywords as the doubles' until and words the timeout
    the same way ("expected <what>"), so the doubles need no adapter."""
    scenario = Scenario(history=10, event_format="default", clock=lambda: 0.0)
    with pytest.raises(ScenarioTimeout, match=r"^expected the agent ready: not seen within 0.05 s"):
        await scenario.until(lambda: False, within=0.05, what="the agent ready")
    await scenario.until(lambda: True)
