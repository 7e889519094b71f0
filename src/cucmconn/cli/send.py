"""``cucmconn send``: send one command, print the event that answers it, exit non-zero if it failed.

The tool for "what does the connector say to this?": it runs the same client as an
application (Hello first, correlation ids, TTL), so what it shows is what the SDK would see.
``--follow`` keeps listening for a moment, because most commands cause more than one event
(Login answers with AgentInfo, then AgentState, then the current calls).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
import time
from typing import Any

import msgspec
from rich.console import Console
from rich.markup import escape

from ..codec import COMMANDS
from ..codec.commands import canonical_command
from ..errors import CommandError, CommandTimeout, ConnectionLost, ServiceUnavailable
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    add_connection_options,
    add_record_option,
    non_negative,
    stderr_console,
    stdout_console,
)
from .session import open_client, open_emulator, wants_emulator
from .watch import describe_event, event_dict

__all__ = ["add_parser"]

_DESCRIPTION = f"""\
Send one command to the connector and print the event that answers it.

COMMAND (case does not matter) is one of:
{textwrap.fill(", ".join(COMMANDS), 90, initial_indent="  ", subsequent_indent="  ")}
TARGET is the agent's extension (for Hello and Beat: a client destination; omit it to use this
client's own). ARGS are the command's arguments, e.g.:
  cucmconn send MakeCall 1001 1002         (1001 calls 1002)
  cucmconn send AnswerCall 1002 16777217   (1002 answers connection 16777217)
  cucmconn send Login 1001                 (the destination defaults to this client's)
The connector only takes an agent's commands from the destination that logged it in, so a
session of sends shares one --destination (and a broker: on memory:// every invocation runs
its own emulator, which forgets everything when it exits):
  cucmconn broker start && cucmconn emulate --url stomp://127.0.0.1:61613 &
  cucmconn send --url stomp://127.0.0.1:61613 --destination desk1 Login 1001
  cucmconn send --url stomp://127.0.0.1:61613 --destination desk1 Login 1002
  cucmconn send --url stomp://127.0.0.1:61613 --destination desk1 MakeCall 1001 1002
  cucmconn watch --url stomp://127.0.0.1:61613 --destination desk1 --agent 1001
Exit code 0 when answered, 1 on an error event (<target>#Error#<code>), a timeout, or
OUT_OF_SERVICE; 2 when the broker or connector cannot be reached.
With --json, stdout carries one JSON object: {{"ok", "command", "target", "latency_ms", "event"
or "error", "events"}}; an error answer's "advice" is what can work (the vendor guide's own text,
which says "send the request again" even where a retry cannot help, is in "guide_advice").
"""


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """``cucmconn send``'s options."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "send",
        help="send one command and print the answering event",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", metavar="COMMAND", help="e.g. Login, MakeCall, AnswerCall")
    parser.add_argument(
        "target",
        metavar="TARGET",
        nargs="?",
        default=None,
        help="agent extension (Hello/Beat: destination, default this client's)",
    )
    parser.add_argument("args", metavar="ARGS", nargs="*", help="command arguments")
    add_connection_options(parser)
    add_record_option(parser)
    parser.add_argument(
        "--follow",
        type=non_negative,
        default=0.0,
        metavar="SECONDS",
        help="after the answer, keep printing events on this client's topic for SECONDS",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument(
        "--any", action="store_true", help="send a command name this tool does not know"
    )
    parser.set_defaults(handler=_handle)
    return parser


def _command_args(
    name: str, target: str | None, args: list[str], own: str
) -> tuple[str, list[str]]:
    """Fill what only this client knows: its destination for Hello/Beat/Login."""
    spec = COMMANDS.get(name)
    if target is None:
        if spec is None or spec.target != "destination":
            raise ValueError(f"{name} needs a TARGET (the agent's extension)")
        target = own
    if name == "Login" and not args:
        args = [own]  # events must come back to this client
    return target, args


async def _handle(args: argparse.Namespace) -> int:
    console = stderr_console()
    name = canonical_command(args.command)  # a ValueError naming a malformed command
    if name not in COMMANDS and not args.any:
        raise ValueError(
            f"unknown command {args.command!r}; known: {', '.join(COMMANDS)} "
            "(--any sends it anyway)"
        )
    emulate = wants_emulator(args.url, args.emulate)
    async with (
        open_emulator(args.url, queue=args.queue, extensions="1000-1999", enabled=emulate),
        open_client(
            args.url,
            client_destination=args.destination,
            queue=args.queue,
            ttl=args.ttl,
            handshake_timeout=args.connect_timeout,
            say=None if args.json else console.print,
            record=args.record,
        ) as client,
    ):
        target, cmd_args = _command_args(name, args.target, list(args.args), client.destination)
        stream = client.events()
        started = time.perf_counter()
        result: dict[str, Any] = {"command": name, "target": target, "args": cmd_args}
        try:
            event = await client.send(name, target, *cmd_args, ttl=args.ttl)
        except (CommandError, CommandTimeout, ServiceUnavailable, ConnectionLost) as exc:
            result.update(ok=False, error=_error_dict(exc))
            _report(result, args.json, console, exc=exc)
            return EXIT_FAILED
        latency = (time.perf_counter() - started) * 1000.0
        result.update(ok=True, latency_ms=round(latency, 3), event=event_dict(event))
        followed = await _follow(stream, args.follow, event)
        result["events"] = [event_dict(e) for e in followed]
        _report(result, args.json, console, answer=event, more=followed)
    return EXIT_OK


async def _follow(stream: Any, seconds: float, answer: Any) -> list[Any]:
    """Events that arrive within ``seconds`` after the answer (the answer itself skipped)."""
    seen: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        item = stream.get_nowait()
        if item is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.sleep(min(0.02, remaining))
            continue
        if item is answer:
            continue
        seen.append(item)
    return seen


def _error_dict(exc: Exception) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, CommandError):
        out.update(
            code=exc.code,
            target=exc.target,
            advice=what_to_do(exc),  # the same words the human output prints
            guide_advice=exc.advice,  # the vendor guide's text, verbatim
            retriable=exc.retriable,
        )
    return out


_AGAIN = "send the request again."


def what_to_do(exc: CommandError) -> str:
    """The advice to print for an error answer, consistent with what can work.

    The guide's advice for a few codes (PRIVILLEGE_VIOLATION among them) repeats PLEASE_RETRY's
    "send the request again"; the code table marks those not retriable, and the same request
    sent again would fail the same way.  So the guide's sentence is kept only where a retry can
    succeed, and the privilege codes get what does work instead.
    """
    if exc.code.upper() in _PRIVILEGE:
        return (
            "the connector takes an agent's commands only from the destination that logged it "
            "in: send with that --destination (sending the same request again will not help)"
        )
    advice = exc.advice
    if exc.retriable or not advice.lower().endswith(_AGAIN):
        return advice
    kept = advice[: -len(_AGAIN)].rstrip(" .")
    return f"{kept + '; ' if kept else ''}sending the same request again will not help"


_PRIVILEGE = ("PRIVILLEGE_VIOLATION", "PREVILLEGE_VIOLATION")


def _report(
    result: dict[str, Any],
    as_json: bool,
    console: Console,
    *,
    exc: Exception | None = None,
    answer: Any = None,
    more: list[Any] | None = None,
) -> None:
    if as_json:
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
        sys.stdout.flush()
        return
    head = f"{result['command']}#{result['target']}"
    if exc is not None:
        console.print(f"[red]{escape(head)} failed:[/] {type(exc).__name__}: {escape(str(exc))}")
        if isinstance(exc, CommandError):
            console.print(f"  [dim]what to do: {escape(what_to_do(exc))}[/]")
        return
    out = stdout_console()
    out.print(f"{head} answered in {result['latency_ms']:.1f} ms:")
    out.print(describe_event(answer))
    for event in more or ():
        out.print(describe_event(event))
