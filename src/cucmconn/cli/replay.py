"""``cucmconn replay``: answer a connector's queue from a trace, or ``--check`` a trace.

Replay (``--url URL``): a recorded connector on that broker, for tests and load runs without a
Cisco lab (``cucmconn.Replayer``).  Check (``--check``): the trace's commands are played
against a connector (by default the emulator, in this process, on ``memory://``) and each
command's answers are compared with the recorded ones (``cucmconn.trace.check``).  The trace
format is described in docs/trace-format.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Any

import msgspec

from ..trace import Replayer, read_trace
from ..trace.check import check_trace, load_expected, render
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    StopSignal,
    add_emulator_switch,
    add_queue_option,
    add_url_option,
    positive,
    stderr_console,
)

__all__ = ["add_parser", "parse_option"]

_DESCRIPTION = """\
Replay a trace as the connector, or check a trace against a connector.

  cucmconn replay run.jsonl --url stomp://127.0.0.1:61613            answer Connector1 from it
  cucmconn replay run.jsonl --url stomp://127.0.0.1:61613 --speed 4  four times as fast
  cucmconn replay run.jsonl --check                                 against the emulator
  cucmconn replay run.jsonl --check --url stomp://host:61613         against a live connector

Replay answers each command with the events that followed the same command (same name, same
agent, in order) in the trace, with live correlation ids and renamed connection ids and times;
calls that rang in play at their recorded offsets. A command the trace cannot answer gets
<target>#Error#<--unanswered> (or nothing, with --unanswered silence). It runs until Ctrl-C,
--duration, or with --until-done once every recorded command was answered.

--check prints each command whose answers differ, field by field (ids and times are not
compared), then "N commands, M identical, K different"; exit code 1 on any difference that
--expected does not list. Record a trace with Client(record=PATH) or --record on send, watch
and load. Exit codes: 0 ok; 1 differences (--check) or unanswered commands; 2 usage or
connection error.
"""


def parse_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` for ``--emulator-option``: ints, floats, true/false/none understood."""
    key, sep, raw = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    lowered = raw.lower()
    value: Any = raw
    if lowered in ("true", "false"):
        value = lowered == "true"
    elif lowered == "none":
        value = None
    else:
        with contextlib.suppress(ValueError):
            value = float(raw) if "." in raw else int(raw)
    return key, value


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``cucmconn replay`` on the command line's subparsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "replay",
        help="play a recorded connector from a trace, or --check a trace against a connector",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("trace", metavar="TRACE", help="a trace file (JSON Lines)")
    add_url_option(
        parser, default=None, help_text="broker URL (replay: required; --check: default memory://)"
    )
    add_queue_option(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    replay = parser.add_argument_group("replay")
    replay.add_argument("--speed", type=positive, default=1.0, help="divide recorded delays")
    replay.add_argument(
        "--unanswered",
        default="CF_INVALID_OBJECT_STATE",
        metavar="CODE|silence",
        help="error code for a command the trace cannot answer, or 'silence'",
    )
    replay.add_argument("--duration", type=positive, default=None, help="stop after SECONDS")
    replay.add_argument(
        "--until-done",
        action="store_true",
        help="stop once every recorded command was answered and its events sent",
    )
    check = parser.add_argument_group("check")
    check.add_argument("--check", action="store_true", help="compare instead of replaying")
    check.add_argument(
        "--expected",
        default=None,
        metavar="FILE",
        help="JSON list of expected differences ({command, event, field, reason})",
    )
    add_emulator_switch(check, help_text="run the emulator in this process (default on memory://)")
    check.add_argument(
        "--emulator-option",
        action="append",
        type=parse_option,
        default=[],
        metavar="KEY=VALUE",
        help="an Emulator() argument for --check, e.g. licenses=1 (repeatable)",
    )
    check.add_argument(
        "--settle", type=positive, default=0.2, help="seconds of quiet that end a command"
    )
    check.add_argument(
        "--answer-wait", type=positive, default=5.0, help="seconds to wait for the answers"
    )
    check.add_argument("--all", action="store_true", help="list identical commands too")
    parser.set_defaults(handler=_handle)
    return parser


async def _handle(args: argparse.Namespace) -> int:
    trace = read_trace(args.trace)  # TraceError is a ValueError: exit code 2 with the line
    if args.check:
        return await _check(args, trace)
    if args.url is None:
        raise ValueError("replay needs --url (the broker the application will use)")
    return await _replay(args, trace)


async def _check(args: argparse.Namespace, trace: Any) -> int:
    expected = load_expected(args.expected) if args.expected else ()
    report = await check_trace(
        trace,
        args.url or "memory://",
        queue=args.queue,
        emulate=args.emulate,
        emulator_options=dict(args.emulator_option),
        expected=expected,
        settle=args.settle,
        answer_wait=args.answer_wait,
    )
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=False) + "\n")
    else:
        sys.stdout.write("\n".join(render(report, verbose=args.all)) + "\n")
    return EXIT_OK if report.ok else EXIT_FAILED


async def _replay(args: argparse.Namespace, trace: Any) -> int:
    console = stderr_console()
    unanswered = None if args.unanswered.lower() == "silence" else args.unanswered
    replayer = Replayer(trace, args.url, queue=args.queue, speed=args.speed, unanswered=unanswered)
    if not replayer.plan.commands:
        console.print("[red]error:[/] the trace holds no command to answer")
        return EXIT_USAGE
    with StopSignal(console) as stop:
        async with replayer:
            console.print(
                f"replaying {len(replayer.plan.commands)} commands on "
                f"{replayer.display_url} (speed {args.speed:g}); Ctrl-C stops"
            )
            await _wait(replayer, stop.event, args.duration, args.until_done)
            stats = replayer.stats()
    if args.json:
        out = {"url": replayer.display_url, **_builtins(stats)}
        out["unanswered_commands"] = list(replayer.unanswered_commands)
        sys.stdout.write(json.dumps(out) + "\n")
    else:
        console.print(
            f"{stats.commands_answered} answered, {stats.commands_unanswered} unanswered, "
            f"{stats.events_sent} events sent ({stats.unsolicited_sent} unsolicited), "
            f"{stats.commands_left} recorded commands never asked"
        )
    return EXIT_FAILED if stats.commands_unanswered else EXIT_OK


async def _wait(
    replayer: Replayer, stop: asyncio.Event, duration: float | None, done: bool
) -> None:
    loop = asyncio.get_running_loop()
    deadline = None if duration is None else loop.time() + duration
    while not stop.is_set():
        if deadline is not None and loop.time() >= deadline:
            return
        stats = replayer.stats()
        if done and stats.commands_left == 0 and stats.scheduled == 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


def _builtins(stats: Any) -> dict[str, Any]:
    result: dict[str, Any] = msgspec.to_builtins(stats)
    return result
