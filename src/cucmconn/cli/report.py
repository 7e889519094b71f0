"""The two faces of a load run's result: one JSON object, and the table a person reads.

Both are built from the run's :class:`~cucmconn.cli.tally.Tally` (its words, one meaning each)
and say the same things: how many agents logged in of how many asked, what the traffic did, its
one latency figure, and whether anything failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from .tally import Tally

__all__ = ["client_stats", "problems", "render_summary", "summary_dict"]

_LATENCY_KEYS = ("latency_p50_ms", "latency_p99_ms", "latency_max_ms")


def client_stats(stats: object) -> dict[str, Any]:
    """The client's own counters as plain data, without its latency figures.

    The client's histogram also holds the log-ins, log-outs and its own probes; the run's one
    latency figure is the traffic's (``latency_ms``), so the client's is left out rather than
    reported as a second, different p50.
    """
    built = msgspec.to_builtins(stats)
    if not isinstance(built, dict):
        return {}
    return {k: v for k, v in built.items() if k not in _LATENCY_KEYS}


def summary_dict(
    tally: Tally,
    *,
    agents: int,
    logins: Tally,
    logouts: Tally | None,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """The machine-readable report: one flat-ish JSON object, keys documented in ``--help``."""
    return {
        "agents": agents,
        "logged_in": logins.answered,
        "login_failures": agents - logins.answered,
        "login_errors_by_code": dict(logins.errors_by_code.most_common()),
        "logout_failures": (logouts.sent - logouts.answered) if logouts is not None else 0,
        **tally.as_dict(),
        "calls": tally.calls_completed,
        "calls_failed": tally.calls_failed,
        "duration_s": round(tally.seconds, 3),
        "throughput_cps": round(tally.throughput, 1),
        "latency_ms": tally.latency_ms(),
        **extra,
    }


def problems(report: Mapping[str, Any], *, allow_login_failures: bool = False) -> list[str]:
    """What went wrong in a run, in words; empty when nothing did (exit code 0)."""
    out: list[str] = []
    if report["logged_in"] == 0:
        out.append(f"no agent logged in (of {report['agents']:,})")
    elif report["login_failures"] and not allow_login_failures:
        out.append(f"{report['login_failures']:,} of {report['agents']:,} agents did not log in")
    if report["unanswered"]:
        out.append(
            f"{report['unanswered']:,} commands unanswered "
            f"({report['timeouts']:,} timed out, {report['lost']:,} lost with the link)"
        )
    if report["unexpected"]:
        out.append(f"{report['unexpected']:,} commands failed unexpectedly")
    if report["logout_failures"]:
        out.append(f"{report['logout_failures']:,} agents did not log out")
    return out


def render_summary(
    report: Mapping[str, Any], title: str, *, allow_login_failures: bool = False
) -> Panel:
    """The closing table a newcomer reads: what ran, how fast, and whether anything went wrong."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column(style="dim")
    lat = report["latency_ms"]
    agents, logged = report["agents"], report["logged_in"]
    rows: list[tuple[str, str, str]] = [
        ("logged in", f"{logged:,} of {agents:,}", "agents, through one client"),
        ("calls", f"{report['calls']:,}", f"{report['calls_failed']:,} did not complete"),
        ("commands", f"{report['commands']:,}", "traffic sent, each awaited for its answer"),
        ("throughput", f"{report['throughput_cps']:,.0f}/s", f"over {report['duration_s']:.1f} s"),
        ("latency p50", f"{lat['p50']:.2f} ms", "command sent -> its answering event"),
        ("latency p99", f"{lat['p99']:.2f} ms", f"max {lat['max']:.2f} ms"),
        ("errors", f"{report['errors']:,}", "connector answered <target>#Error#<code>"),
        ("unavailable", f"{report['unavailable']:,}", "refused: connector OUT_OF_SERVICE"),
        ("timeouts", f"{report['timeouts']:,}", "no answer within the TTL"),
        ("lost", f"{report['lost']:,}", "link dropped, outcome unknown"),
    ]
    if "events" in report:
        rows.insert(3, ("events", f"{report['events']:,}", "received by the client"))
    for name, value, note in rows:
        table.add_row(name, value, note)
    parts: list[Any] = [table]
    codes = {**report["errors_by_code"]}
    for code, count in report.get("login_errors_by_code", {}).items():
        codes[f"{code} (log-in)"] = count
    if codes:
        listing = Table("error code", "count", box=None, header_style="bold red")
        for code, count in codes.items():
            listing.add_row(code, f"{count:,}")
        parts.append(listing)
    wrong = problems(report, allow_login_failures=allow_login_failures)
    verdict = "[green]nothing lost[/]" if not wrong else f"[red]{'; '.join(wrong)}[/]"
    return Panel(Group(*parts), title=title, subtitle=verdict, expand=False)
