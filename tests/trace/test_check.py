"""``check_trace``: a trace's client side played against a connector, compared field by field."""

from __future__ import annotations

from pathlib import Path

import pytest

from cucmconn.trace import Replayer, read_trace
from cucmconn.trace.check import check_trace, load_expected, render
from cucmconn.trace.format import encode_line
from tests.activemq import BrokerHandle
from tests.trace.test_record_replay import record
from tests.traces import guide

GUIDE = Path(guide.__file__).with_name("guide.jsonl")
GUIDE_DIFFERENCES = GUIDE.with_name("guide-differences.json")


@pytest.mark.parametrize("event_format", ["default", "json"])
async def test_a_recorded_run_checks_identical_against_the_emulator(
    tmp_path: Path, event_format: str
) -> None:
    path = tmp_path / "run.jsonl"
    await record(path, event_format)
    report = await check_trace(path, "memory://check")
    assert report.different == 0, "\n".join(render(report))
    assert report.identical == len(read_trace(path).commands()) >= 14
    assert (
        report.summary()
        == f"{report.identical} commands, {report.identical} identical, 0 different"
    )
    assert report.ok


async def test_check_finds_an_altered_behaviour(tmp_path: Path) -> None:
    """The emulator with a one-licence variant switched on refuses the second Login."""
    path = tmp_path / "run.jsonl"
    await record(path, "default")
    report = await check_trace(path, "memory://altered", emulator_options={"licenses": 1})
    assert not report.ok and report.different > 0
    login = next(c for c in report.commands if c.command == "Login#1001")
    first = login.differences[0]
    assert (first.event, first.field, first.expected, first.observed) == (
        0,
        "event",
        "AgentInfo",
        "ErrorEvent",
    )
    assert login.observed[0] == {
        "type": "ErrorEvent",
        "target": "1001",
        "code": "LICENSES_EXCEEDED",
        "message": None,
    }


async def test_check_compares_fields_not_ids(tmp_path: Path) -> None:
    """A trace whose answer differs in one field: exactly that field is reported."""
    path = tmp_path / "run.jsonl"
    await record(path, "default")
    trace = read_trace(path)
    for record_ in trace.records:
        if record_.dir == "in" and record_.body.startswith("1000#AgentState#READY"):
            record_.body = record_.body.replace("READY", "NOT_READY")
            break
    altered = tmp_path / "altered.jsonl"
    altered.write_bytes(encode_line(trace.header) + b"".join(map(encode_line, trace.records)))
    report = await check_trace(altered, "memory://fields")
    assert report.different == 1
    (command,) = [c for c in report.commands if c.differences]
    assert [(d.field, d.expected, d.observed) for d in command.differences] == [
        ("AgentState.state", "NOT_READY", "READY")
    ]


def test_the_guide_trace_is_built_from_its_script() -> None:
    header, records = guide.build()
    expected = encode_line(header) + b"".join(map(encode_line, records))
    assert GUIDE.read_bytes().startswith(expected), "run: python -m tests.traces.guide"


async def test_the_guide_checks_against_the_emulator_with_its_listed_differences() -> None:
    listed = load_expected(GUIDE_DIFFERENCES)
    report = await check_trace(GUIDE, "memory://guide", expected=listed)
    assert report.ok, "\n".join(render(report))
    seen = {(c.index, d.event, d.field) for c in report.commands for d in c.differences}
    assert seen == {(e.command, e.event, e.field) for e in listed}, "stale or missing entries"
    assert all(e.reason for e in listed)
    assert report.identical >= 5  # Hello, Beat, the WRONG_EXTENSION login, both logouts


async def test_the_guide_replayed_checks_identical() -> None:
    """Replay of the guide answers exactly as the guide does: check finds no difference."""
    async with Replayer(GUIDE, "memory://guide-replay"):
        report = await check_trace(GUIDE, "memory://guide-replay", emulate=False)
    assert report.different == 0, "\n".join(render(report))


async def test_replay_and_check_over_activemq(activemq: BrokerHandle) -> None:
    async with Replayer(GUIDE, activemq.stomp_url, queue="GuideCheck"):
        report = await check_trace(GUIDE, activemq.stomp_url, queue="GuideCheck")
    assert report.different == 0, "\n".join(render(report))
    assert report.identical == len(guide.SCENARIO)
