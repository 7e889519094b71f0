"""``cucmconn load``: log N agents in and drive calls against any connector, then report.

The run has three phases: log-in (not measured as throughput), traffic (each agent pair runs
call cycles back to back, optionally held to ``--rate`` commands per second across all pairs),
and log-out.  Every command is awaited for its answering event; its outcome lands in one
:class:`~cucmconn.cli.report.Tally`, so ``lost`` (timed out, or the link dropped with the
outcome unknown) has one definition and decides the exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from rich.console import Console

from ..client import Client
from ..codec import codec_backend
from ..emulator import Directory, Emulator
from .common import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    StopSignal,
    add_connection_options,
    add_record_option,
    non_negative,
    non_negative_int,
    positive,
    positive_int,
    stderr_console,
    stdout_console,
)
from .compare import load_report, render_comparison
from .live import LiveView
from .metrics import Attach, metrics_endpoint
from .report import client_stats, problems, render_summary, summary_dict
from .session import open_client, open_emulator, wants_emulator
from .soak import peak_rss_mb
from .tally import Tally
from .timeline import Timeline, histogram_rows
from .traffic import DEFAULT_MIX, LoadDriver, Scenario

__all__ = ["LoadOptions", "add_parser", "add_traffic_arguments", "measure", "run_load"]

log = logging.getLogger("cucmconn.cli")

GC_THRESHOLD = 10_000
"""The command line's gen-0 GC threshold for a run; see :func:`gc_threshold`."""

_DESCRIPTION = f"""\
Log N agents in through one client and drive calls between them, then print a report.

Each pair of agents (A, B) runs call cycles back to back: A calls B, B answers, A holds,
retrieves and releases (five commands); with --scenario inbound (needs the emulator) customers
call in and agents answer, hold, consult, transfer or conference. Every command waits for its
answering event. Its outcome is one of: answered, error (the connector answered
<target>#Error#<code>), unavailable (refused: OUT_OF_SERVICE), timeout (no answer within --ttl),
lost (the link dropped, outcome unknown). The report says "logged in X of N"; the exit code is 1
when any command went unanswered (timeout or lost), or any agent could not log in (unless
--allow-login-failures) or out.

On memory:// the emulator runs in this process by default (nothing else could answer there);
on a real broker add --emulate to start one on the same URL, or leave it off to load a real
connector. With --json, stdout carries ONE JSON object: agents, logged_in, login_failures,
commands, answered, errors, errors_by_code, unavailable, timeouts, lost, unanswered, calls,
duration_s, throughput_cps, latency_ms {{p50, p99, max}} (the traffic's: the run's one latency
figure), login_storm_s (wall time to log every agent in) and login_cpu_us_per_agent (this
process's CPU for it), cpu_us_per_command and
cpu_us_per_event (this process's CPU time over the traffic window only, divided by the commands
sent and the events received in it; with the emulator in this process its CPU is included,
cpu_scope says which), and details of the client and transport.
{EXIT_CODES_HELP}
"""


@dataclass
class LoadOptions:
    """Everything a traffic run needs; ``demo`` fills it with its own defaults."""

    url: str = "memory://"
    agents: int = 100
    duration: float = 10.0
    rate: float = 0.0
    extensions: str | None = None
    emulate: bool | None = None
    scenario: Scenario = "outbound"
    queue: str = "Connector1"
    ttl: float = 10.0
    connect_timeout: float = 10.0
    destination: str | None = None
    think: tuple[float, float] = (0.0, 0.0)
    mix: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_MIX))
    json: bool = False
    progress: bool = True
    title: str = "cucmconn load"
    count_events: bool = False
    gc_threshold: int = 0
    allow_login_failures: bool = False
    metrics_port: int | None = None
    """Serve the run's metrics at http://127.0.0.1:N/metrics (0: a free port, printed)."""
    report: str | None = None
    """Write the run as one self-contained HTML page to this path (``--report``)."""
    record: str | None = None
    """Write the client's link to this trace (``--record``)."""


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """``cucmconn load``'s options."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "load",
        help="load-test a connector: N agents, calls for S seconds, a report",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_traffic_arguments(parser, agents=100, duration=10.0)
    add_record_option(parser)
    parser.add_argument(
        "--rate",
        type=non_negative,
        default=0.0,
        help="total commands per second across all agents (default 0: as fast as answers come)",
    )
    parser.add_argument(
        "--scenario",
        choices=("outbound", "inbound"),
        default="outbound",
        help="outbound: agent calls agent (any connector); inbound: customers call in (emulator)",
    )
    parser.add_argument(
        "--report",
        default=None,
        metavar="PATH.html",
        help="also write the run as one self-contained HTML page (charts over time, latency "
        "histogram, parameters and totals; opens offline; needs the report extra)",
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        default=None,
        metavar=("A.json", "B.json"),
        help="print two saved --json reports side by side with ratios (B / A), run nothing",
    )
    parser.add_argument(
        "--extensions",
        default=None,
        help="extensions to log in, first N used (default 1000-1999, longer when N > 1000; "
        "e.g. 2000-2999,3001)",
    )
    parser.set_defaults(handler=_handle)
    return parser


def add_traffic_arguments(parser: argparse.ArgumentParser, *, agents: int, duration: float) -> None:
    """Options demo and load share (the connection options among them)."""
    add_connection_options(parser)
    parser.add_argument(
        "--agents", type=positive_int, default=agents, help=f"agents (default {agents})"
    )
    parser.add_argument(
        "--duration",
        type=positive,
        default=duration,
        help=f"seconds of traffic (default {duration:g})",
    )
    parser.add_argument("--json", action="store_true", help="print ONE JSON report on stdout")
    parser.add_argument(
        "--allow-login-failures",
        action="store_true",
        help="an agent that cannot log in is reported but does not fail the run (exit code)",
    )
    parser.add_argument(
        "--metrics-port",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="serve Prometheus metrics at http://127.0.0.1:N/metrics during the run (0: a free "
        "port, printed on stderr; needs the prometheus extra)",
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no live progress display"
    )
    parser.add_argument(
        "--gc-threshold",
        type=non_negative_int,
        default=GC_THRESHOLD,
        help=f"this process's gen-0 GC threshold during the run (default {GC_THRESHOLD:,}; "
        "0 keeps CPython's 700)",
    )


def options_from(args: argparse.Namespace, **overrides: Any) -> LoadOptions:
    """LoadOptions from parsed arguments; ``overrides`` win."""
    names = LoadOptions.__dataclass_fields__
    values = {k: v for k, v in vars(args).items() if k in names}
    values.update(overrides)
    return LoadOptions(**values)


async def _handle(args: argparse.Namespace) -> int:
    if args.compare is not None:
        first, second = args.compare
        stdout_console().print(
            render_comparison(load_report(first), load_report(second), (first, second))
        )
        return EXIT_OK
    return await run_load(options_from(args))


def default_extensions(agents: int) -> str:
    """1000-1999, or as long as needed when there are more agents than that."""
    return f"1000-{999 + max(agents, 1000)}"


def _validate(opts: LoadOptions) -> list[str]:
    if opts.extensions is None:
        opts.extensions = default_extensions(opts.agents)
    if opts.agents < 2:
        raise ValueError("--agents must be at least 2 (agents work in pairs)")
    extensions = Directory(opts.extensions).first(opts.agents)
    if opts.agents > len(extensions):
        raise ValueError(
            f"--agents {opts.agents} but only {len(extensions)} extensions in "
            f"{opts.extensions!r}; widen --extensions"
        )
    if opts.scenario == "inbound" and not wants_emulator(opts.url, opts.emulate):
        raise ValueError("--scenario inbound needs the emulator (customers call in through it)")
    return extensions


async def run_load(opts: LoadOptions, *, console: Console | None = None) -> int:
    """One complete run, reported on stdout; returns the exit code (0 ok, 1 failed, 130 Ctrl-C)."""
    console = console or stderr_console()
    if opts.report is not None:
        # the report extra (plotly), loaded only when a report is asked for
        from .htmlreport import check_report_path, write_html_report

        check_report_path(opts.report)
    attach = None
    if opts.metrics_port is not None:
        attach = metrics_endpoint(opts.metrics_port, console.print)
    with StopSignal(console) as stop, gc_threshold(opts.gc_threshold):
        report = await measure(opts, console=console, stop=stop.event, attach=attach)
    report["gc_threshold"] = opts.gc_threshold or gc.get_threshold()[0]
    if opts.report is not None:
        wrong_now = problems(report, allow_login_failures=opts.allow_login_failures)
        write_html_report(
            report,
            opts.report,
            f"{opts.title}: {report['url']}",
            "; ".join(wrong_now) if wrong_now else "nothing lost",
        )
        console.print(f"report written to {opts.report}")
    _emit(report, opts, console)
    if report["interrupted"]:
        return EXIT_INTERRUPTED
    wrong = problems(report, allow_login_failures=opts.allow_login_failures)
    return EXIT_FAILED if wrong else EXIT_OK


async def measure(
    opts: LoadOptions,
    *,
    console: Console | None = None,
    stop: asyncio.Event | None = None,
    attach: Attach | None = None,
) -> dict[str, Any]:
    """Run the load and return the report (the dict ``--json`` prints); for benchmarks and apps.

    ``attach(client, emulator)`` is entered once the client is connected and left after the
    run (``--metrics-port`` serves metrics this way; benchmarks compare with and without).
    Raises ValueError for bad options and ``CannotConnect`` when nothing answers.
    """
    extensions = _validate(opts)
    console = console or Console(stderr=True, quiet=not opts.progress)
    stop = stop or asyncio.Event()
    emulate = wants_emulator(opts.url, opts.emulate)
    async with (
        open_emulator(
            opts.url, queue=opts.queue, extensions=opts.extensions or "", enabled=emulate
        ) as emulator,
        open_client(
            opts.url,
            say=console.print if opts.progress else None,
            client_destination=opts.destination,
            queue=opts.queue,
            ttl=opts.ttl,
            handshake_timeout=opts.connect_timeout,
            max_in_flight=max(1024, opts.agents),
            record=opts.record,
        ) as client,
    ):
        with attach(client, emulator) if attach is not None else contextlib.nullcontext():
            report = await _drive(opts, extensions, client, emulator, stop, console)
        report["client"] = client_stats(client.stats())
        if emulator is not None:
            report["emulator_stats"] = msgspec.to_builtins(emulator.stats())
    report["max_rss_mb"] = peak_rss_mb()
    return report


@contextlib.contextmanager
def gc_threshold(gen0: int) -> Iterator[None]:
    """Raise the gen-0 collection threshold for a run (0: leave the collector alone).

    With thousands of commands in flight, CPython's default (700 net allocations) runs a young
    collection every few dozen commands, each walking the whole in-flight state: about 12 % of a
    5,000-agent memory:// run.  The load generator is an application, so it may tune its own
    process; the library never touches the collector.  Restored afterwards.
    """
    if gen0 <= 0:
        yield
        return
    saved = gc.get_threshold()
    gc.set_threshold(gen0, *saved[1:])
    try:
        yield
    finally:
        gc.set_threshold(*saved)


def _grace(opts: LoadOptions) -> float:
    """How long the cycles in progress at the deadline may take to end: each command by TTL."""
    return 10 * opts.ttl + 2 * 5.0 + 10 * opts.think[1] + 1.0


async def _drive(
    opts: LoadOptions,
    extensions: list[str],
    client: Client,
    emulator: Emulator | None,
    stop: asyncio.Event,
    console: Console,
) -> dict[str, Any]:
    driver = LoadDriver(
        client,
        extensions,
        opts.rate,
        scenario=opts.scenario,
        think=opts.think,
        mix=opts.mix,
        place_call=emulator.place_call if emulator is not None else None,
    )
    events = _EventCounter(client) if opts.count_events else None
    logins, logouts = Tally(), Tally()
    view = LiveView(
        console,
        title=f"{opts.title} -> {client.display_url}",
        duration=opts.duration,
        extra=_extra_rows(logins, logouts, driver, events, len(extensions)),
        enabled=opts.progress,
    )
    cpu: _TrafficCPU | None = None
    timeline = Timeline(driver.tally)
    async with view:
        view.show("logging in", logins)
        login_cpu = time.process_time()
        await driver.login_all(tally=logins)
        login_cpu = time.process_time() - login_cpu
        login_storm_s = logins.seconds
        if logins.answered < len(extensions):
            log.warning(
                "%d of %d agents could not log in",
                len(extensions) - logins.answered,
                len(extensions),
            )
        if logins.answered and not stop.is_set():
            view.start_traffic(driver.tally)
            cpu = _TrafficCPU(client)
            timeline.start()
            await driver.run(opts.duration, stop=stop, grace=_grace(opts))
            await timeline.stop()
            cpu.stop(driver.tally.sent)
        view.show("logging out")
        await driver.logout_all(tally=logouts)
    if events is not None:
        events.stop()
    extra = {
        "url": client.display_url,
        "scenario": opts.scenario,
        "rate_limit_cps": opts.rate or None,
        "emulated": emulator is not None,
        "codec": codec_backend(),
        "loop": _loop_name(),
        "interrupted": stop.is_set(),
        "login_storm_s": round(login_storm_s, 3),
        "login_cpu_us_per_agent": (
            round(login_cpu * 1e6 / len(extensions), 1) if extensions else None
        ),
        "cpu_scope": "client+emulator+broker" if emulator is not None else "client",
        **(cpu.figures() if cpu is not None else {}),
        "timeline": timeline.samples(),
        "latency_histogram": histogram_rows(driver.tally.latency),
    }
    if events is not None:
        extra["events"] = events.count
    return summary_dict(
        driver.tally, agents=len(extensions), logins=logins, logouts=logouts, extra=extra
    )


def _extra_rows(
    logins: Tally,
    logouts: Tally,
    driver: LoadDriver,
    events: _EventCounter | None,
    agents: int,
) -> Callable[[], dict[str, str]]:
    """The agents row counts from the log-in tally, as the summary does: "logged in X of N"."""

    def rows() -> dict[str, str]:
        text = f"logged in {logins.answered:,} of {agents:,}"
        if logouts.sent:
            text += f", {logouts.answered:,} logged out"
        else:
            text += f", {driver.in_progress:,} in a call"
        out = {"agents": text}
        if events is not None:
            out["events"] = f"{events.count:,} received"
        return out

    return rows


class _TrafficCPU:
    """This process's CPU time over the traffic window, per command sent and event received.

    ``time.process_time`` (user + system, all threads) rather than wall time: on a shared
    machine the wall clock measures the neighbours too, the CPU a command costs does not.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._cpu = time.process_time()
        self._times = os.times()
        self._events = client.stats().events_received
        self._spent = 0.0
        self._user = 0.0
        self._system = 0.0
        self._commands = 0
        self._received = 0

    def stop(self, commands: int) -> None:
        """End the window; ``commands`` were sent in it."""
        self._spent = time.process_time() - self._cpu
        times = os.times()
        self._user = times.user - self._times.user
        self._system = times.system - self._times.system
        self._received = self._client.stats().events_received - self._events
        self._commands = commands

    def figures(self) -> dict[str, object]:
        """``cpu_s_traffic``, ``cpu_us_per_command`` and ``cpu_us_per_event`` (None: none)."""
        return {
            "cpu_s_traffic": round(self._spent, 3),
            "cpu_us_per_command": (
                round(self._spent * 1e6 / self._commands, 2) if self._commands else None
            ),
            "cpu_us_per_event": (
                round(self._spent * 1e6 / self._received, 2) if self._received else None
            ),
            "events_in_traffic": self._received,
            # user = Python and the codec; system = the kernel (on loopback a socket write also
            # runs the receiving side's TCP path, charged to the writer)
            "cpu_split_us_per_command": (
                {
                    "user": round(self._user * 1e6 / self._commands, 2),
                    "system": round(self._system * 1e6 / self._commands, 2),
                }
                if self._commands
                else None
            ),
        }


class _EventCounter:
    """Counts every event on the client's topic (for the demo's display)."""

    def __init__(self, client: Client) -> None:
        self.count = 0
        self._stream = client.events()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for _ in self._stream:
            self.count += 1

    def stop(self) -> None:
        self._task.cancel()


def _loop_name() -> str:
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def _emit(report: dict[str, Any], opts: LoadOptions, console: Console) -> None:
    if opts.json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
        sys.stdout.flush()
        return
    stdout_console().print(
        render_summary(
            report,
            f"{opts.title}: {report['url']}",
            allow_login_failures=opts.allow_login_failures,
        )
    )
    if report["interrupted"]:
        console.print("[yellow]stopped early by Ctrl-C[/]")
