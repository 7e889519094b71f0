"""The command line, run for real: in-process through ``main_async`` on memory://, and as a
subprocess (``python -m cucmconn``) where the process boundary matters (exit codes, Ctrl-C).

Connector-side behaviour comes from the emulator (``--emulate``, the default on memory://) or,
where a test needs a connector that misbehaves on purpose, from the scripted fake in
``tests/fakeconnector.py``.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from cucmconn.cli.load import gc_threshold
from cucmconn.cli.main import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, main
from tests.cli.conftest import cli, one_json, run_module
from tests.fakeconnector import FakeConnector

REPORT_KEYS = {
    "agents",
    "commands",
    "errors",
    "errors_by_code",
    "lost",
    "timeouts",
    "throughput_cps",
    "latency_ms",
    "duration_s",
}


# -- help ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["demo", "load", "watch", "send"])
def test_each_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"usage: cucmconn {command}" in out
    assert "--url" in out and "--json" in out


@pytest.mark.parametrize("command", ["broker", "emulate"])
def test_delegated_commands_show_their_own_help(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--help"]) == EXIT_OK
    assert "usage:" in capsys.readouterr().out


def test_python_m_cucmconn_lists_every_command() -> None:
    proc = run_module("--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("demo", "load", "watch", "send", "emulate", "broker"):
        assert command in proc.stdout


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == EXIT_USAGE
    assert "invalid choice" in capsys.readouterr().err


# -- load ---------------------------------------------------------------------------------------


async def test_load_json_report_on_the_emulator(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await cli(
        capsys, "load", "--agents", "20", "--duration", "1", "--json", "--no-progress"
    )
    report = one_json(out)
    assert code == EXIT_OK
    assert report.keys() >= REPORT_KEYS
    assert {"p50", "p99", "max"} <= report["latency_ms"].keys()
    assert report["agents"] == 20 and report["logged_in"] == 20
    assert report["lost"] == 0 and report["timeouts"] == 0
    assert report["commands"] > 0  # traffic ran (log-ins are counted apart)
    assert report["answered"] == report["commands"]
    assert report["throughput_cps"] > 0
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p99"] <= report["latency_ms"]["max"]
    assert report["emulated"] is True


async def test_load_tunes_the_collector_only_for_its_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command raises the gen-0 threshold while it runs (and says so), then restores it;
    ``--gc-threshold 0`` leaves the collector alone."""
    before = gc.get_threshold()
    with gc_threshold(12345):
        assert gc.get_threshold() == (12345, *before[1:])
    assert gc.get_threshold() == before
    code, out, _ = await cli(
        capsys, "load", "--agents", "20", "--duration", "0.5", "--json", "--no-progress",
        "--gc-threshold", "12345",
    )  # fmt: skip
    assert code == EXIT_OK and one_json(out)["gc_threshold"] == 12345
    assert gc.get_threshold() == before
    code, out, _ = await cli(
        capsys, "load", "--agents", "20", "--duration", "0.5", "--json", "--no-progress",
        "--gc-threshold", "0",
    )  # fmt: skip
    assert code == EXIT_OK and one_json(out)["gc_threshold"] == before[0]


async def test_load_inbound_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await cli(
        capsys, "load", "--agents", "10", "--duration", "1", "--scenario", "inbound",
        "--json", "--no-progress",
    )  # fmt: skip
    report = one_json(out)
    assert code == EXIT_OK, report
    assert report["calls"] > 0 and report["lost"] == 0


async def test_load_against_a_real_connector_protocol_without_emulator(
    fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await cli(
        capsys, "load", "--no-emulator", "--agents", "4", "--duration", "0.5", "--json",
        "--no-progress", "--extensions", "2000-2003",
    )  # fmt: skip
    report = one_json(out)
    assert code == EXIT_OK
    logins = fake.commands("Login")
    assert sorted(c.target for c in logins) == ["2000", "2001", "2002", "2003"]
    assert len(fake.commands("MakeCall")) == report["calls"]
    assert len(fake.commands("Logout")) == 4


async def test_load_counts_unanswered_commands_as_lost_and_fails(
    fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.hold.add("HoldCall")  # the connector never answers HoldCall
    code, out, _ = await cli(
        capsys, "load", "--no-emulator", "--agents", "2", "--duration", "0.2", "--ttl", "0.3",
        "--json", "--no-progress",
    )  # fmt: skip
    report = one_json(out)
    assert code == EXIT_FAILED
    assert report["unanswered"] == report["timeouts"] == len(fake.held) > 0
    assert report["lost"] == 0  # the link never dropped: unanswered, not lost
    assert report["calls_failed"] == report["timeouts"]


async def test_load_reports_errors_by_code(
    fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fakeconnector import Reply

    fake.script["RetrieveCall"] = lambda c: [Reply(f"{c.target}#Error#CF_INVALID_OBJECT_STATE")]
    code, out, _ = await cli(
        capsys, "load", "--no-emulator", "--agents", "2", "--duration", "0.3", "--json",
        "--no-progress",
    )  # fmt: skip
    report = one_json(out)
    assert code == EXIT_OK  # errors are answers: nothing was lost
    retrieves = len(fake.commands("RetrieveCall"))
    assert report["errors_by_code"] == {"CF_INVALID_OBJECT_STATE": retrieves}
    assert report["errors"] == retrieves and report["lost"] == 0


async def test_load_survives_an_outage_without_spinning(
    fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    async def cucm_goes_down() -> None:
        await asyncio.sleep(0.3)
        fake.in_service = False

    outage = asyncio.create_task(cucm_goes_down())
    code, out, _ = await cli(
        capsys, "load", "--no-emulator", "--agents", "4", "--duration", "1", "--json",
        "--no-progress",
    )  # fmt: skip
    await outage
    report = one_json(out)
    # Refused, not lost; but CUCM is still down at the end, so no agent could log out, and a
    # run that leaves agents logged in has failed.
    assert report["unanswered"] == 0
    assert report["logout_failures"] == report["agents"] and code == EXIT_FAILED
    assert report["unavailable"] > 0
    assert report["calls_failed"] > 0
    # Failing fast must not become a busy loop: the generator waits for the service to return.
    assert report["unavailable"] < 100


async def test_load_rate_limit_holds_the_pace(
    fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await cli(
        capsys, "load", "--no-emulator", "--agents", "4", "--duration", "1", "--rate", "200",
        "--json", "--no-progress",
    )  # fmt: skip
    report = one_json(out)
    assert code == EXIT_OK
    # Logins are not paced (nor counted in ``commands``); traffic is: at most the rate.
    assert report["commands"] <= 200 * report["duration_s"] + 2
    assert report["commands"] >= 200 * report["duration_s"] * 0.8


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--agents", "1"], "at least 2"),
        (["--agents", "50", "--extensions", "1000-1009"], "only 10 extensions"),
        (["--extensions", "1999-1000"], "runs backwards"),
        (["--agents", "zero"], "not a number"),
        (["--duration", "-1"], "must be > 0"),
        (["--scenario", "inbound", "--url", "stomp://127.0.0.1:9"], "needs the emulator"),
    ],
)
async def test_load_bad_input_is_a_clear_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await cli(capsys, "load", *argv)
    assert code == EXIT_USAGE
    assert message in err
    assert out == ""


async def test_load_with_nothing_answering_says_what_to_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = await cli(
        capsys, "load", "--no-emulator", "--connect-timeout", "0.3", "--no-progress"
    )
    assert code == EXIT_USAGE
    assert "Hello" in err and "--emulate" in err


async def test_load_unreachable_broker_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = await cli(
        capsys, "load", "--url", "stomp://127.0.0.1:9", "--connect-timeout", "1", "--json"
    )
    assert code == EXIT_USAGE
    assert "127.0.0.1:9" in err and out == ""


# -- demo ---------------------------------------------------------------------------------------


async def test_demo_runs_and_prints_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await cli(
        capsys, "demo", "--agents", "10", "--duration", "1.5", "--think", "0", "0.02",
        "--no-progress",
    )  # fmt: skip
    assert code == EXIT_OK
    for row in ("calls", "commands", "events", "latency p50", "latency p99", "errors", "lost"):
        assert row in out
    assert "nothing lost" in out


async def test_demo_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await cli(
        capsys, "demo", "--agents", "6", "--duration", "1", "--think", "0", "0", "--json",
        "--no-progress",
    )  # fmt: skip
    report = one_json(out)
    assert code == EXIT_OK
    assert report["scenario"] == "inbound" and report["calls"] > 0
    assert report["events"] >= report["commands"]  # every command has at least its answer


@pytest.mark.slow
def test_demo_subprocess_ctrl_c_stops_cleanly_with_a_summary() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cucmconn", "demo", "--agents", "20", "--duration", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    time.sleep(4.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err
    assert "commands" in out and "stopped early" in err


@pytest.mark.slow
def test_demo_subprocess_default_settings_finish_by_themselves() -> None:
    proc = run_module("demo", "--agents", "50", "--duration", "3", timeout=120)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "nothing lost" in proc.stdout


# -- send ---------------------------------------------------------------------------------------


async def test_send_login_prints_the_answer_and_follows(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await cli(capsys, "send", "--json", "--follow", "0.3", "Login", "1001")
    result = one_json(out)
    assert code == EXIT_OK
    assert result["ok"] is True
    assert result["event"]["event"] == "AgentInfo"
    assert result["event"]["agent_id"] == "1001"
    assert "AgentState" in [e["event"] for e in result["events"]]


async def test_send_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await cli(capsys, "send", "login", "1001")
    assert code == EXIT_OK
    assert "Login#1001 answered in" in out and "AgentInfo" in out


async def test_send_error_event_exits_1_with_the_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await cli(capsys, "send", "--json", "AnswerCall", "1001", "999999")
    result = one_json(out)
    assert code == EXIT_FAILED
    assert result["ok"] is False
    assert result["error"]["type"] == "CommandError"
    assert result["error"]["code"]  # the emulator's code for "no such call"
    assert result["error"]["advice"]


async def test_send_timeout_exits_1(
    fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.hold.add("GetState")
    code, _, err = await cli(capsys, "send", "--no-emulator", "--ttl", "0.2", "GetState", "1001")
    assert code == EXIT_FAILED
    assert "CommandTimeout" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["Dance", "1001"], "Dance"),
        (["MakeCall"], "needs a TARGET"),
        (["MakeCall", "1001", "10,02"], "10,02"),
    ],
)
async def test_send_bad_input_is_refused_before_sending(
    argv: list[str], message: str, fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = await cli(capsys, "send", "--no-emulator", *argv)
    assert code == EXIT_USAGE
    assert message in err
    assert [c.name for c in fake.received if c.name not in ("Hello", "Beat")] == []


# -- watch --------------------------------------------------------------------------------------


async def test_watch_active_logs_in_tails_and_logs_out(
    fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await cli(
        capsys, "watch", "--no-emulator", "--agent", "1001", "--json", "--max-events", "3",
        "--seconds", "5",
    )  # fmt: skip
    events = [json.loads(line) for line in out.splitlines()]
    assert code == EXIT_OK
    assert [e["event"] for e in events] == ["AgentInfo", "AgentState", "DialogState"]
    assert all(e["agent_id"] == "1001" for e in events)
    assert [c.name for c in fake.received if c.target == "1001"] == ["Login", "Logout"]


async def test_watch_passive_shows_only_that_agent_and_sends_nothing(
    fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    async def owner_traffic() -> None:
        await asyncio.sleep(0.2)
        for body in (
            "1002#AgentState#READY#2026-01-01 10:00:00",
            "1001#AgentState#TALKING#2026-01-01 10:00:00",
            "System#OUT_OF_SERVICE",
            "1001#InboundCall#ALERTING#2026-01-01 10:00:01#77#5550100",
        ):
            await fake.push("/topic/desk-7", body)

    pusher = asyncio.create_task(owner_traffic())
    code, out, _ = await cli(
        capsys, "watch", "--no-emulator", "--destination", "desk-7", "--agent", "1001",
        "--max-events", "3", "--seconds", "5",
    )  # fmt: skip
    await pusher
    assert code == EXIT_OK
    lines = out.splitlines()
    assert len(lines) == 3
    assert "TALKING" in lines[0] and "OUT_OF_SERVICE" in lines[1] and "5550100" in lines[2]
    assert "1002" not in out
    assert fake.received == []  # passive: not even a Hello


# -- pieces -------------------------------------------------------------------------------------
