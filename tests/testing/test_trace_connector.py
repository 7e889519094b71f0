"""``connector_from_trace``: a recorded connector (``cucmconn.Replayer`` on the guide's trace)
as a test's connector, with the same history, waiting and failure messages as ``connector``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cucmconn import CommandError
from cucmconn.testing import ScenarioTimeout

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
