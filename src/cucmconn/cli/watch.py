"""``cucmconn watch``: a live, readable tail of one agent's events.

The connector sends an agent's events to the client destination that logged the agent in, so a
watcher has two honest options, and both are offered:

- ``--destination TOPIC`` (passive, safe in production): subscribe to the topic the agent's own
  client uses and show the events for this agent.  Nothing is sent; the owner is undisturbed.
  The topic is non-durable: events from before the watcher subscribed are not shown.
- without ``--destination`` (active): log the agent in from this watcher, which moves the agent's
  events to the watcher's topic, tail them, and log the agent out on exit (``--stay`` keeps it
  logged in).  Meant for test desks and the emulator, not for an agent someone is using.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from ..codec import decode_event
from ..codec.events import ErrorEvent, Event, SystemStatus, TerminalStatus, UnknownEvent
from ..errors import ConnectorError, ProtocolError
from ..trace import RecordingTransport, TraceRecorder
from ..transport import open_transport, topic
from .common import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_OK,
    StopSignal,
    add_connection_options,
    add_record_option,
    positive,
    positive_int,
    stderr_console,
    stdout_console,
)
from .session import (
    CannotConnect,
    check_url,
    connect_hint,
    open_client,
    open_emulator,
    wants_emulator,
)

__all__ = ["add_parser", "describe_event", "event_dict"]

_DESCRIPTION = f"""\
Show one agent's events as they happen (state changes, calls ringing, dialog states, errors).

Events reach the client destination that logged the agent in. Two ways to watch:
  --destination TOPIC   passive: listen on the topic of the agent's own client; sends nothing.
  (no --destination)    active: log the agent in from here (its events then come here), and
                        log it out on exit unless --stay. Use on test desks or the emulator.
With --json, each event is one JSON object per line on stdout (JSON Lines).
In active mode, a log-out the connector refuses on exit (the agent still has a call) is reported
and the exit code is 1: the agent stays logged in.
{EXIT_CODES_HELP}
"""

_STYLE = {
    "AgentState": "cyan",
    "DialogState": "green",
    "InboundCall": "magenta",
    "ErrorEvent": "bold red",
    "SystemStatus": "yellow",
    "TerminalStatus": "yellow",
}


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """``cucmconn watch``'s options."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "watch",
        help="a live tail of one agent's events",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_connection_options(
        parser,
        ttl=False,
        destination_help="passive: the topic the agent's own client uses (nothing is sent)",
    )
    add_record_option(parser)
    parser.add_argument("--agent", required=True, help="the agent's extension, e.g. 1001")
    parser.add_argument("--json", action="store_true", help="one JSON object per event (stdout)")
    parser.add_argument("--stay", action="store_true", help="active mode: do not log out on exit")
    parser.add_argument(
        "--seconds",
        type=positive,
        default=None,
        help="stop after this many seconds (default: never)",
    )
    parser.add_argument(
        "--max-events",
        type=positive_int,
        default=None,
        help="stop after this many events (default: never)",
    )
    parser.set_defaults(handler=_handle)
    return parser


def event_dict(event: Event | Any) -> dict[str, Any]:
    """An event as JSON-ready data, its type under ``event``."""
    data: dict[str, Any] = {"event": type(event).__name__}
    built = msgspec.to_builtins(event)
    if isinstance(built, dict):
        data.update(built)
    return data


def describe_event(event: Event | Any) -> Text:
    """One readable line: type, agent, state, call id and parties."""
    name = type(event).__name__
    line = Text(time.strftime("%H:%M:%S "), style="dim")
    line.append(f"{name:<14}", style=_STYLE.get(name, "white"))
    if isinstance(event, SystemStatus):
        line.append(f" {event.status}")
        return line
    if isinstance(event, ErrorEvent):
        line.append(f" {event.target}  {event.code}  {event.message or ''}".rstrip())
        return line
    if isinstance(event, UnknownEvent):
        line.append(f" {event.raw}")
        return line
    fields = event_dict(event)
    agent = fields.pop("agent_id", None) or "-"
    fields.pop("event")
    state = fields.pop("state", None) or fields.pop("status", None) or ""
    line.append(f" {agent:<8} {state:<12}")
    parts = fields.pop("participants", None)
    for key, value in fields.items():
        if value is not None:
            line.append(f" {key}={value}", style="dim" if key.endswith("_at") else "")
    if parts:
        line.append(f" parties={','.join(parts)}")
    return line


def _for_agent(event: Event, ext: str) -> bool:
    if isinstance(event, SystemStatus):
        return True
    if isinstance(event, TerminalStatus):
        return event.agent_id in (None, ext)
    if isinstance(event, ErrorEvent):
        return event.target == ext
    return getattr(event, "agent_id", None) == ext


class _Printer:
    """Prints each event; tells the run to end once ``--max-events`` were shown."""

    def __init__(self, as_json: bool, console: Console, limit: int | None, done: asyncio.Event):
        self.as_json = as_json
        self.console = console
        self.count = 0
        self.limit = limit
        self.done = done

    def show(self, event: Any) -> None:
        if self.done.is_set():
            return
        self.count += 1
        if self.as_json:
            sys.stdout.write(msgspec.json.encode(event_dict(event)).decode() + "\n")
            sys.stdout.flush()
        else:
            self.console.print(describe_event(event), soft_wrap=True)
        if self.limit is not None and self.count >= self.limit:
            self.done.set()


async def _handle(args: argparse.Namespace) -> int:
    console = stderr_console()
    emulate = wants_emulator(args.url, args.emulate)
    ok = True
    with StopSignal() as stop:
        done = stop.event
        printer = _Printer(
            args.json, console if args.json else stdout_console(), args.max_events, done
        )
        if args.seconds is not None:
            asyncio.get_running_loop().call_later(args.seconds, done.set)
        async with open_emulator(
            args.url, queue=args.queue, extensions="1000-1999", enabled=emulate
        ):
            if args.destination:
                await _passive(
                    args.url, args.destination, args.agent, printer, console, args.record
                )
            else:
                ok = await _active(args, printer, console)
    console.print(f"[dim]{printer.count} event(s) shown[/]")
    return EXIT_OK if ok else EXIT_FAILED


async def _passive(
    url: str,
    destination: str,
    ext: str,
    printer: _Printer,
    console: Console,
    record: str | None = None,
) -> None:
    """Events for ``ext`` on someone else's topic until done; nothing is sent."""

    def on_message(message: Any) -> None:
        try:
            event = decode_event(message.body)
        except ProtocolError:
            return
        if _for_agent(event, ext):
            printer.show(event)  # printed at once: nothing buffers, nothing grows

    check_url(url)
    recorder = TraceRecorder(record) if record else None
    transport = open_transport(url)
    if recorder is not None:
        transport = RecordingTransport(transport, recorder)
    try:
        await transport.connect()
    except (ConnectorError, OSError) as exc:
        raise CannotConnect(
            f"cannot reach the broker at {transport.display_url}: {exc}{connect_hint(url, exc)}"
        ) from exc
    try:
        await transport.subscribe(topic(destination), on_message)
        console.print(f"[dim]listening on /topic/{destination} for agent {ext} (Ctrl-C stops)[/]")
        await printer.done.wait()
    finally:
        await transport.close()
        if recorder is not None:
            recorder.close()


async def _active(args: argparse.Namespace, printer: _Printer, console: Console) -> bool:
    """Log the agent in from here and tail its events; log it out on exit unless --stay.

    Returns False when the log-out was refused or failed (the agent is still logged in).
    """
    async with open_client(
        args.url,
        queue=args.queue,
        client_destination=args.destination,
        handshake_timeout=args.connect_timeout,
        say=console.print,
        record=args.record,
    ) as client:
        agent = client.agent(args.agent)
        stream = agent.events()
        reader = asyncio.create_task(_read(stream, printer))
        try:
            await agent.login()
            console.print(
                f"[dim]agent {args.agent} logged in on {client.destination} (Ctrl-C stops"
                f"{'' if args.stay else ' and logs out'})[/]"
            )
            await printer.done.wait()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if args.stay or not agent.logged_in:
            return True
        try:
            await agent.logout()
        except ConnectorError as exc:
            console.print(
                f"[red]error:[/] the log-out of agent {args.agent} failed, it is still logged "
                f"in: {type(exc).__name__}: {escape(str(exc))}"
            )
            if agent.calls:
                console.print(
                    f"  [dim]hint: it has {len(agent.calls)} call(s); release them, then log it "
                    "out (cucmconn send Logout ...)[/]"
                )
            return False
        return True


async def _read(stream: AsyncIterator[Any], printer: _Printer) -> None:
    async for event in stream:
        printer.show(event)
