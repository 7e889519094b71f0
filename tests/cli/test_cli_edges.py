"""The command line's edges (issue 17): a refused log-out, exit codes that match the help,
global options before ``emulate``, hints for the wrong scheme or port, the wait for Hello, and
advice that agrees with the hint under it."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from cucmconn import Client, CommandError, Emulator
from cucmconn.cli.compare import render_comparison
from cucmconn.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from cucmconn.cli.main import main as cli_main
from cucmconn.cli.send import what_to_do
from cucmconn.transport.memory import MemoryBroker
from tests.cli.conftest import cli, run_module
from tests.fakeconnector import FakeConnector

# -- watch: a refused log-out --------------------------------------------------------------------


async def test_watch_reports_a_refused_logout_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The watched agent gets a call while watched: the connector refuses its log-out."""
    name = "watch-refused"
    MemoryBroker.reset(name)
    url = f"memory://{name}"

    async def caller() -> None:
        async with Client(url, handshake_timeout=5.0) as client:
            other = client.agent("1002")
            await other.login()
            watched = client.agent("1001")
            for _ in range(200):  # until the watcher has logged 1001 in
                if (await watched.get_state()).state != "LOGOUT":
                    break
                await asyncio.sleep(0.02)
            await other.make_call("1001")  # 1001 rings: it has a call when watch ends
            await asyncio.sleep(3.0)  # keep the call up while watch logs out

    task = asyncio.create_task(caller())
    code, _, err = await cli(
        capsys, "watch", "--url", url, "--emulate", "--agent", "1001", "--seconds", "1.5"
    )
    await task
    assert code == EXIT_FAILED
    assert "log-out of agent 1001 failed" in err and "still logged in" in err
    assert "CF_INVALID_OBJECT_STATE" in err
    assert "call(s)" in err  # the hint says why


async def test_watch_exit_0_when_the_logout_is_accepted(
    fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = await cli(
        capsys, "watch", "--no-emulator", "--agent", "1001", "--max-events", "1", "--seconds", "5"
    )
    assert code == EXIT_OK
    assert [c.name for c in fake.received if c.target == "1001"] == ["Login", "Logout"]


# -- emulate: exit codes, global options before the command ----------------------------------------


def test_emulate_connection_error_exits_2_as_its_help_says() -> None:
    help_text = run_module("emulate", "--help").stdout
    assert "2 bad options or the broker cannot be reached" in help_text
    proc = run_module("emulate", "--url", "stomp://127.0.0.1:9")
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr


def test_global_options_before_emulate() -> None:
    proc = run_module("--loop", "asyncio", "-v", "emulate", "--url", "stomp://127.0.0.1:9")
    assert "unrecognized arguments" not in proc.stderr
    assert proc.returncode == EXIT_USAGE, proc.stderr  # it ran, and could not reach the broker
    assert "127.0.0.1:9" in proc.stderr


def _option_help(text: str, flag: str) -> str:
    """The help of one option in an argparse --help text, joined onto one line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(flag))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith(" " * 10) or line.strip().startswith("-"):
            break
        block.append(line)
    return " ".join(" ".join(block).split())


def test_emulate_declares_the_shared_options_once(capsys: pytest.CaptureFixture[str]) -> None:
    """emulate's -v, --loop and --queue are the declarations every command shares (issue 12),
    and its --url keeps its broker default, said in the help."""
    assert cli_main(["emulate", "--help"]) == EXIT_OK
    emulate = capsys.readouterr().out
    assert cli_main(["load", "--help"]) == EXIT_OK
    load = capsys.readouterr().out
    for flag in ("-v, --verbose", "--loop", "--queue"):
        assert _option_help(emulate, flag) == _option_help(load, flag), flag
    assert "default Connector1" in _option_help(emulate, "--queue")
    assert "uvloop when installed" in _option_help(emulate, "--loop")
    assert "default stomp://127.0.0.1:61613" in _option_help(emulate, "--url")


def test_python_m_cucmconn_emulator_is_the_emulate_command() -> None:
    """The package's -m entry is an alias: the same parser, options and exit codes."""
    env = {**os.environ, "COLUMNS": "120"}
    run = functools.partial(
        subprocess.run, capture_output=True, text=True, timeout=60, env=env, check=False
    )
    proc = run([sys.executable, "-m", "cucmconn.emulator", "--help"])
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "usage: cucmconn emulate" in proc.stdout and "--loop" in proc.stdout
    proc = run([sys.executable, "-m", "cucmconn.emulator", "--licenses", "-1"])
    assert proc.returncode == EXIT_USAGE and "must be >= 0" in proc.stderr
    proc = run([sys.executable, "-m", "cucmconn.emulator", "--url", "stomp://127.0.0.1:9"])
    assert proc.returncode == EXIT_USAGE and "127.0.0.1:9" in proc.stderr


def test_probe_and_replay_share_the_queue_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["load", "--help"]) == EXIT_OK
    load = _option_help(capsys.readouterr().out, "--queue")
    for command in (["probe"], ["replay"]):
        assert cli_main([*command, "--help"]) == EXIT_OK
        assert _option_help(capsys.readouterr().out, "--queue") == load, command
    assert cli_main(["probe"]) == EXIT_USAGE  # --url stays required there
    assert "--url" in capsys.readouterr().err


def test_every_command_documents_the_same_exit_codes() -> None:
    for command in ("load", "demo", "watch"):
        text = run_module(command, "--help").stdout.replace("\n", " ")
        assert "2 usage or connection error" in " ".join(text.split()), command
    top = " ".join(run_module("--help").stdout.split())
    assert "2 usage or connection error" in top


# -- hints --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "url", "words"),
    [
        (["load"], "tcp://127.0.0.1:61616", "OpenWire"),
        (["send", "Hello"], "http://127.0.0.1:8161", "web console"),
        (["watch", "--agent", "1001"], "tcp://broker:61616", "OpenWire"),
    ],
)
async def test_a_url_of_another_protocol_gets_the_stomp_hint(
    command: list[str], url: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await cli(capsys, command[0], "--url", url, *command[1:])
    assert code == EXIT_USAGE
    assert words in err
    assert "stomp://HOST:61613" in err
    assert out == ""


async def test_a_server_that_closes_before_connected_gets_the_port_hint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What STOMP sees at a port that speaks another protocol: the connection closes."""

    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(slam, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        code, _, err = await cli(
            capsys, "send", "--url", f"stomp://127.0.0.1:{port}", "--no-emulator",
            "--connect-timeout", "2", "Hello",
        )  # fmt: skip
    finally:
        server.close()
        await server.wait_closed()
    assert code == EXIT_USAGE
    assert "OpenWire" in err and "stomp://HOST:61613" in err, err


async def test_waiting_for_the_connector_is_said(
    fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.hold.add("Hello")  # the connector never answers: the wait is the whole run
    code, _, err = await cli(
        capsys, "send", "--no-emulator", "--connect-timeout", "1", "GetState", "1001"
    )
    assert code == EXIT_USAGE
    assert "waiting for the connector on queue Connector1 to answer Hello (up to 1 s)" in err
    assert err.index("waiting for the connector") < err.index("error:")


async def test_no_waiting_line_when_the_connector_answers(
    fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = await cli(capsys, "send", "--no-emulator", "GetState", "1001")
    assert code == EXIT_OK
    assert "waiting for the connector" not in err


# -- advice and hint agree -------------------------------------------------------------------------


def test_privilege_advice_does_not_say_send_it_again() -> None:
    for code in ("PRIVILLEGE_VIOLATION", "PREVILLEGE_VIOLATION"):
        advice = what_to_do(CommandError(code, "1001"))
        assert "send the request again" not in advice.lower()
        assert "--destination" in advice
    # A code a retry can cure keeps the guide's words.
    assert what_to_do(CommandError("PLEASE_RETRY", "1001")) == CommandError("PLEASE_RETRY").advice
    # A code a retry cannot cure never says "send the request again".
    for code in ("INVALID_PARTY", "LICENSES_EXCEEDED", "USER_NOT_FOUND"):
        exc = CommandError(code, "1001")
        if not exc.retriable:
            assert "send the request again" not in what_to_do(exc).lower(), code


async def test_send_to_another_destinations_agent_prints_consistent_advice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "send-priv"
    MemoryBroker.reset(name)
    url = f"memory://{name}"
    async with (
        Emulator(url),
        Client(url, client_destination="desk-a", handshake_timeout=5.0) as owner,
    ):
        await owner.agent("1001").login()
        code, _, err = await cli(
            capsys, "send", "--url", url, "--no-emulator", "--destination", "desk-b",
            "MakeCall", "1001", "1002",
        )  # fmt: skip
        await owner.agent("1001").logout()
    assert code == EXIT_FAILED
    assert "PRIVILLEGE_VIOLATION" in err
    assert "send the request again" not in err.lower()
    assert "what to do:" in err and "--destination" in err


async def test_send_json_advice_is_what_can_work(capsys: pytest.CaptureFixture[str]) -> None:
    name = "send-priv-json"
    MemoryBroker.reset(name)
    url = f"memory://{name}"
    async with (
        Emulator(url),
        Client(url, client_destination="desk-a", handshake_timeout=5.0) as owner,
    ):
        await owner.agent("1001").login()
        code, out, _ = await cli(
            capsys, "send", "--url", url, "--no-emulator", "--destination", "desk-b", "--json",
            "MakeCall", "1001", "1002",
        )  # fmt: skip
        await owner.agent("1001").logout()
    error = json.loads(out)["error"]
    assert code == EXIT_FAILED and error["code"] == "PRIVILLEGE_VIOLATION"
    assert "send the request again" not in error["advice"].lower()
    assert error["guide_advice"] == CommandError("PRIVILLEGE_VIOLATION").advice


async def test_a_missing_file_is_named_not_blamed_on_the_broker(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A file the command line names that cannot be opened is a usage error that says so;
    "cannot reach the broker" is kept for the link (it once said that of a missing trace)."""
    missing = tmp_path / "run.jsonl"
    code, out, err = await cli(capsys, "replay", str(missing), "--check")
    assert code == EXIT_USAGE
    assert out == ""
    assert "No such file or directory" in err and "run.jsonl" in err
    assert "broker" not in err


def test_compare_prints_counts_as_counts() -> None:
    """`load --compare`: a count of zero reads 0 like any other count (it read 0.000)."""
    report = {
        "agents": 50,
        "commands": 38375,
        "throughput_cps": 19157.5,
        "errors": 0,
        "latency_ms": {"p50": 0.848, "p99": 9.258, "max": 13.242},
    }
    console = Console(width=120, record=True)
    console.print(render_comparison(report, report, ("a.json", "b.json")))
    cells = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in console.export_text().splitlines()
        if line.count("│") >= 4
    }
    assert cells["errors"] == "0"
    assert cells["commands"] == "38,375"
    assert cells["throughput (/s)"] == "19,157.500"
    assert cells["latency p50 (ms)"] == "0.848"


def test_logs_to_a_pipe_are_one_plain_line_per_record() -> None:
    """Piped stderr (a service manager, a test, ``2>log``) gets unwrapped lines: rich wrapped a
    long record at 80 columns and split the broker address it ended with over two lines."""
    address = "stomp://broker-with-a-rather-long-host-name.example.internal:61613"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import logging, sys\n"
            "from cucmconn.cli import main as cli\n"
            "cli._configure_logging(1)\n"
            "log = logging.getLogger('cucmconn.emulator')\n"
            f"log.warning('emulator reconnected to %s', {address!r})\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].endswith(f"cucmconn.emulator: emulator reconnected to {address}")
