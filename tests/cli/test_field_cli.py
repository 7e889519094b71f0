"""``cucmconn replay`` (replay and --check) and ``cucmconn probe``, in-process on memory://."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from cucmconn import Client, Emulator
from cucmconn.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main_async
from cucmconn.trace import read_trace
from tests.scenario import application, normalised
from tests.trace.test_record_replay import record
from tests.traces import guide

GUIDE = Path(guide.__file__).with_name("guide.jsonl")


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await main_async(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_check_passes_on_a_faithful_connector(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "run.jsonl"
    await record(path, "default")
    code, out, _ = await cli(capsys, "replay", str(path), "--check", "--settle", "0.05")
    assert code == EXIT_OK
    n = len(read_trace(path).commands())
    assert out.splitlines()[0] == f"{n} commands, {n} identical, 0 different"


async def test_check_fails_on_an_altered_behaviour(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "run.jsonl"
    await record(path, "json")
    code, out, _ = await cli(
        capsys, "replay", str(path), "--check", "--emulator-option", "licenses=1",
        "--settle", "0.05",
    )  # fmt: skip
    assert code == EXIT_FAILED
    assert "#2 Login#1001: different" in out
    assert 'event 0 event: expected "AgentInfo", observed "ErrorEvent"' in out
    n = len(read_trace(path).commands())
    assert f"{n} commands, " in out and "identical, " in out
    code, out, _ = await cli(
        capsys, "replay", str(path), "--check", "--json", "--emulator-option", "licenses=1",
        "--settle", "0.05",
    )  # fmt: skip
    report = json.loads(out)
    summary = f"{n} commands, {report['identical']} identical, {report['different']} different"
    assert report["ok"] is False and report["different"] >= 1 and report["summary"] == summary
    assert report["commands"][2]["observed"][0]["code"] == "LICENSES_EXCEEDED"


async def test_check_the_guide_with_its_listed_differences(
    capsys: pytest.CaptureFixture[str],
) -> None:
    listed = str(GUIDE.with_name("guide-differences.json"))
    code, out, _ = await cli(capsys, "replay", str(GUIDE), "--check", "--settle", "0.05")
    assert code == EXIT_FAILED  # differences the list would excuse are still differences
    code, out, _ = await cli(
        capsys, "replay", str(GUIDE), "--check", "--expected", listed, "--settle", "0.05"
    )
    assert code == EXIT_OK
    assert "13 commands, 5 identical, 8 different (8 only in expected, listed ways)" in out
    assert "(expected: The guide's default DialogState pattern" in out


async def test_replay_until_done_serves_the_application(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "run.jsonl"
    recorded = await record(path, "default")

    async def app() -> list[object]:
        await asyncio.sleep(0.1)
        async with Client("memory://cli-replay", client_destination="cli") as client:
            return list(await application(client))

    replay = main_async(
        ["replay", str(path), "--url", "memory://cli-replay", "--until-done", "--json"]
    )
    code, replayed = await asyncio.gather(replay, app())
    out, _ = capsys.readouterr()
    assert code == EXIT_OK
    stats = json.loads(out)
    assert (
        stats["commands_answered"] == len(read_trace(path).commands())
        and stats["commands_unanswered"] == 0
    )
    assert normalised(replayed) == normalised(recorded)  # type: ignore[arg-type]


async def test_replay_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = await cli(capsys, "replay", str(GUIDE))
    assert code == EXIT_USAGE and "needs --url" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    code, _, err = await cli(capsys, "replay", str(bad), "--check")
    assert code == EXIT_USAGE and "bad.jsonl:1" in err


async def test_probe_changes_no_agent_unless_login(capsys: pytest.CaptureFixture[str]) -> None:
    async with Emulator("memory://probe-cli") as emulator:
        code, out, _ = await cli(capsys, "probe", "--url", "memory://probe-cli", "--agent", "1001")
        assert code == EXIT_OK
        assert "GetState#1001" in out and "LOGOUT" in out
        assert emulator.stats().commands_received == 3  # Hello, Beat, GetState: nothing else
        code, out, _ = await cli(
            capsys, "probe", "--url", "memory://probe-cli", "--agent", "1001", "--login", "--json"
        )
        checks = json.loads(out)["checks"]
        assert checks["agent"]["figure"].startswith("READY")
        assert emulator.stats().agents_logged_in == 0  # logged out again after GetState
    code, _, err = await cli(capsys, "probe", "--url", "memory://x", "--login")
    assert code == EXIT_USAGE and "--login needs --agent" in err


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(marker: str) -> str:
    """The ``text`` block after ``<!-- marker ... -->`` in README's field-tools section."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {re.escape(marker)}[^>]*-->\n```text\n(.*?)```", text, re.S)
    assert found, f"README lost its {marker!r} block"
    return found.group(1)


async def test_readme_check_output_is_what_the_command_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = await cli(capsys, "replay", str(GUIDE), "--check")
    assert code == EXIT_FAILED
    assert out == readme_block("check output")


async def test_send_watch_and_load_record_their_link(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sent = tmp_path / "send.jsonl"
    code, _, _ = await cli(
        capsys, "send", "--record", str(sent), "--destination", "d1", "GetState", "1001"
    )
    assert code == EXIT_OK
    trace = read_trace(sent)
    assert [c.jms_type for c in trace.commands()] == ["Hello#d1", "GetState#1001"]
    assert trace.events() and trace.dropped == 0

    watched = tmp_path / "watch.jsonl"
    code, _, _ = await cli(
        capsys, "watch", "--agent", "1001", "--seconds", "0.5", "--record", str(watched)
    )
    assert code == EXIT_OK
    names = [c.jms_type.split("#")[0] for c in read_trace(watched).commands()]
    assert names[:2] == ["Hello", "Login"] and names[-1] == "Logout"

    loaded = tmp_path / "load.jsonl"
    code, out, _ = await cli(
        capsys, "load", "--agents", "10", "--duration", "1", "--json", "--no-progress",
        "--record", str(loaded),
    )  # fmt: skip
    assert code == EXIT_OK
    report = json.loads(out)
    trace = read_trace(loaded)
    logins = [c for c in trace.commands() if c.jms_type.startswith("Login#")]
    assert len(logins) == 10 and trace.dropped == 0
    assert len(trace.commands()) >= report["client"]["sent"] > 10
