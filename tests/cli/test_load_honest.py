"""``cucmconn load`` tells the run as it was: log-ins counted, one latency figure, a panel that
agrees with the summary, and a load generator that recovers its pairs after a dropped link."""

from __future__ import annotations

import asyncio
import io
import json
import re
from typing import Any

import pytest
from rich.console import Console

from cucmconn import Client, Emulator
from cucmconn.cli.live import LiveView
from cucmconn.cli.load import LoadOptions, measure, run_load
from cucmconn.cli.main import EXIT_FAILED, EXIT_OK, main_async
from cucmconn.cli.report import render_summary
from cucmconn.cli.tally import Tally, counted
from cucmconn.cli.traffic import LoadDriver
from cucmconn.errors import CommandError, CommandTimeout, ConnectionLost, ServiceUnavailable
from cucmconn.transport.memory import MemoryBroker, MemoryTransport
from tests.fakeconnector import FakeCommand, FakeConnector, Reply


def refuse_logins(fake: FakeConnector, refused: set[str]) -> None:
    default = fake.script.get("Login")

    def login(c: FakeCommand) -> list[Reply]:
        if c.target in refused:
            return [Reply(f"{c.target}#Error#USER_NOT_FOUND")]
        return default(c) if default else fake._default(c)

    fake.script["Login"] = login


async def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = await main_async(["load", "--no-emulator", "--json", "--no-progress", *argv])
    out = capsys.readouterr().out
    return code, json.loads(out)


# -- the tally ----------------------------------------------------------------------------------


async def test_tally_files_each_outcome_in_one_column() -> None:
    tally = Tally()

    async def fails(exc: Exception) -> str:  # a command that would answer, as answers() does
        raise exc

    async def answers() -> str:
        return "event"

    assert await counted(tally, answers()) == "event"
    for exc in (
        CommandError("INVALID_PARTY", "1001"),
        CommandTimeout("no answer"),
        ConnectionLost("connection lost: 1 command in flight"),
        ServiceUnavailable("down"),
        RuntimeError("a bug"),
    ):
        assert await counted(tally, fails(exc)) is None
    assert (tally.answered, tally.errors, tally.timeouts, tally.lost) == (1, 1, 1, 1)
    assert (tally.unavailable, tally.unexpected, tally.lost_in_flight) == (1, 1, 1)
    assert tally.errors_by_code == {"INVALID_PARTY": 1}
    assert tally.unexpected_kinds == {"RuntimeError": 1}
    assert tally.unanswered == 2  # timeouts + lost: "lost" alone means the link dropped
    assert tally.sent == 6 and tally.balanced
    assert tally.latency.count == 2  # the answer and the error answer; nothing else was timed
    with pytest.raises(CommandError):
        await tally.record(fails(CommandError("CF_INVALID_OBJECT_STATE")))
    assert tally.errors == 2 and tally.balanced


# -- log-ins ------------------------------------------------------------------------------------


async def test_failed_logins_fail_the_run_and_are_shown(
    fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    refuse_logins(fake, {"1001", "1003"})
    code, report = await run_json(capsys, "--agents", "6", "--duration", "0.3")
    assert code == EXIT_FAILED
    assert (report["agents"], report["logged_in"], report["login_failures"]) == (6, 4, 2)
    assert report["login_errors_by_code"] == {"USER_NOT_FOUND": 2}
    assert report["unanswered"] == 0 and report["calls"] > 0  # the four that logged in worked
    panel = render_panel(report)
    assert "4 of 6" in panel
    assert "2 of 6 agents did not log in" in panel and "nothing lost" not in panel


async def test_allow_login_failures_opts_out(
    fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    refuse_logins(fake, {"1001"})
    code, report = await run_json(
        capsys, "--agents", "6", "--duration", "0.3", "--allow-login-failures"
    )
    assert code == EXIT_OK
    assert report["logged_in"] == 5


async def test_every_login_failed_is_never_nothing_lost(
    fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    refuse_logins(fake, {str(n) for n in range(1000, 1010)})
    code = await main_async(
        ["load", "--no-emulator", "--no-progress", "--agents", "4", "--duration", "0.3"]
    )
    out = capsys.readouterr().out
    assert code == EXIT_FAILED
    assert "0 of 4" in out
    assert "no agent logged in" in out
    assert "nothing lost" not in out
    assert fake.commands("MakeCall") == []  # no traffic without agents


async def test_every_login_failed_fails_even_when_allowed(
    fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    refuse_logins(fake, {str(n) for n in range(1000, 1010)})
    code, report = await run_json(
        capsys, "--agents", "4", "--duration", "0.3", "--allow-login-failures"
    )
    assert code == EXIT_FAILED and report["logged_in"] == 0


# -- one latency figure; the panel agrees with the summary ----------------------------------------


def render_panel(report: dict[str, Any]) -> str:
    console = Console(file=io.StringIO(), width=200, highlight=False)
    console.print(render_summary(report, "load"))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


async def test_json_reports_one_latency_figure(capsys: pytest.CaptureFixture[str]) -> None:
    code = await main_async(
        ["load", "--agents", "10", "--duration", "0.5", "--json", "--no-progress"]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK
    # the timeline's per-second percentiles are that same figure over time (one per sample),
    # not a second run-wide p50
    timeline = report.pop("timeline")
    assert all("latency_p50_ms" in sample for sample in timeline)
    text = json.dumps(report)
    assert len(re.findall(r'"(?:latency_)?p50(?:_ms)?"', text)) == 1, text


async def test_live_panel_ends_on_the_summary_figures() -> None:
    """The last panel shows the summary's p50, p99 and duration (no "9.3 / 8 s")."""
    views: list[LiveView] = []
    original = LiveView.__aexit__

    async def keep(self: LiveView, *exc: Any) -> None:
        views.append(self)
        await original(self, *exc)

    opts = LoadOptions(agents=10, duration=0.5, progress=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LiveView, "__aexit__", keep)
        report = await measure(opts)
    (view,) = views
    fields = view._fields()
    lat = report["latency_ms"]
    assert f"p50 {lat['p50']:.2f} ms" in fields["latency"]
    assert f"p99 {lat['p99']:.2f} ms" in fields["latency"]
    assert f"max {lat['max']:.2f} ms" in fields["latency"]
    done, text = view._time()
    assert done <= opts.duration
    assert text == f"traffic ran {report['duration_s']:.1f} s"
    assert f"{report['commands']:,}" in fields["commands"]
    assert f"logged in {report['logged_in']:,} of {report['agents']:,}" in fields["agents"]


async def test_run_load_returns_the_same_verdict_as_the_summary(
    fake: FakeConnector, capsys: pytest.CaptureFixture[str]
) -> None:
    refuse_logins(fake, {"1000"})
    opts = LoadOptions(agents=4, duration=0.3, emulate=False, progress=False, json=False)
    assert await run_load(opts) == EXIT_FAILED
    assert "1 of 4 agents did not log in" in capsys.readouterr().out


# -- the generator after a dropped link (issue 11) -------------------------------------------------


async def test_pairs_are_cleaned_up_after_connection_lost_and_the_rate_holds() -> None:
    """Drop the client's link mid-run: the calls in progress are lost with it, but each pair's
    calls are released once the link is back (none is left up at the connector, so every agent
    can log out and no INVALID_PARTY follows), and the commands per second after recovery match
    those before the drop."""
    name = "cli-drop"
    MemoryBroker.reset(name)
    url, rate = f"memory://{name}", 400.0
    extensions = [str(1000 + i) for i in range(20)]
    async with (
        Emulator(url, extensions="1000-1019", latency=0.01),  # commands in flight at the drop
        Client(url, ttl=2.0, handshake_timeout=5.0) as client,
    ):
        driver = LoadDriver(client, extensions, rate, scenario="outbound")
        assert (await driver.login_all()).answered == len(extensions)
        driver.start()
        await asyncio.sleep(1.0)
        before = driver.tally.copy()
        transport = client.transport
        assert isinstance(transport, MemoryTransport)
        transport.simulate_disconnect()
        await asyncio.sleep(0.3)
        transport.simulate_reconnect()
        await asyncio.wait_for(client.wait_in_service(), 5.0)
        await asyncio.sleep(1.0)  # the pairs recover
        recovered = driver.tally.copy()
        await asyncio.sleep(1.0)
        after = driver.tally.copy()
        await driver.stop()
        # No call was left up at the connector: it refuses to log out an agent with a call.
        logouts = await driver.logout_all()
        assert logouts.answered == len(extensions), logouts.errors_by_code
    tally = driver.tally
    assert tally.lost > 0, "the drop must have cost some commands: " + tally.line()
    assert tally.unexpected == 0 and tally.balanced, tally.line()
    # Not one error answer from the drop on: no cycle ran into a call the drop left up.
    assert tally.errors == 0, f"errors after the drop: {tally.errors_by_code}"
    rate_before = before.sent / 1.0
    rate_after = after.sent - recovered.sent
    assert rate_after >= 0.9 * rate_before, (rate_before, rate_after)
    assert rate_after <= rate * 1.05
    assert after.calls_completed - recovered.calls_completed > 0
