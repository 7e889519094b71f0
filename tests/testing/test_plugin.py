"""The issue's proof: a fresh project outside this repository, with the test file a user would
write (the plugin's fixtures only, no cucmconn internals), run by pytest in a subprocess.  It
passes against a working application and fails, readably, against a broken one: the failure
shows the connector's recent commands and events.  Also: the plugin is inert until used.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

APP = '''
"""A user's service: answer every call that rings agent EXTENSION, and count them."""

import asyncio

from cucmconn import Client, InboundCall


class AutoAnswer:
    def __init__(self, client: Client, extension: str) -> None:
        self.session = client.agent(extension)
        self.answered = 0
        self.handled = 0

    async def run(self) -> None:
        events = self.session.events()
        await self.session.login()
        async for event in events:
            if isinstance(event, InboundCall):
                if event.state == RINGING:
                    await self.session.answer(event.connection_id)
                    self.answered += 1
                self.handled += 1
'''

TESTS = """
import asyncio

import pytest

from autoanswer import AutoAnswer


@pytest.fixture
async def app(cucmconn_client):
    service = AutoAnswer(cucmconn_client, "1001")
    task = asyncio.create_task(service.run())
    yield service
    task.cancel()


@pytest.mark.cucmconn(extensions="1001-1010")
async def test_an_inbound_call_is_answered(connector, app):
    call = await connector.place_call(to="1001", caller="5550100")
    await connector.wait_for("AnswerCall", agent="1001", args=[call.connection_id], within=2)
    await call.wait_until("connected")


async def test_answered_calls_are_counted(connector, app):
    call = await connector.place_call(to="1001")
    await connector.until(lambda: app.handled == 1, what="the service handled the call")
    assert app.answered == 1
    await call.release()
"""


def _project(root: Path, ringing: str) -> Path:
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n")
    (root / "autoanswer.py").write_text(APP.replace("RINGING", repr(ringing)))
    (root / "test_autoanswer.py").write_text(TESTS)
    return root


def _pytest(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CUCMCONN_"))}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_a_users_project_passes_with_a_working_application(tmp_path: Path) -> None:
    result = _pytest(_project(tmp_path / "working", ringing="ALERTING"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_a_broken_application_fails_with_the_recent_commands_and_events(tmp_path: Path) -> None:
    # The bug: the application waits for a state the connector never sends.
    result = _pytest(_project(tmp_path / "broken", ringing="RINGING"))
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "2 failed" in out
    # wait_for's own message: what was expected, and what the connector saw instead.
    assert "expected AnswerCall for agent 1001 with args '52129051': not seen within 2 s" in out
    assert "recent commands (->) and events (<-), oldest first:" in out
    assert "-> Login#1001" in out
    assert "<- 1001#InboundCall#ALERTING#" in out
    # A plain assert in a test that used the connector gets the same history as a section.
    assert "assert 0 == 1" in out
    assert "cucmconn: recent commands (->) and events (<-)" in out


def test_the_plugin_is_inert_until_a_fixture_is_used(tmp_path: Path) -> None:
    project = tmp_path / "plain"
    project.mkdir()
    (project / "test_plain.py").write_text(
        textwrap.dedent(
            """
            import sys

            def test_loaded_but_nothing_imported(pytestconfig):
                assert pytestconfig.pluginmanager.hasplugin("cucmconn")
                assert pytestconfig.getoption("cucmconn_url") is None
                loaded = [m for m in sys.modules if m.split(".")[0] == "cucmconn"]
                assert loaded == []
            """
        )
    )
    result = _pytest(project)
    assert result.returncode == 0, result.stdout + result.stderr
    help_text = _pytest(project, "--help").stdout
    assert "--cucmconn-url=URL" in help_text
    markers = _pytest(project, "--markers").stdout
    assert "@pytest.mark.cucmconn(**options)" in markers
