"""What every ``cucmconn`` subcommand shares: exit codes, the console, Ctrl-C, and options.

The subcommands import this module and :mod:`.session`; :mod:`.main` imports the subcommands.
Nothing here imports upward, so the command line has no import cycle.

Exit codes, the same for every command (``emulate`` and ``broker`` included):
0 success; 1 the run completed but something failed (a command lost, refused or timed out, an
agent that could not log in or out); 2 bad usage, or the broker or connector could not be
reached; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any, Protocol

from rich.console import Console

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Options",
    "StopSignal",
    "add_connection_options",
    "add_emulator_switch",
    "add_global_options",
    "add_queue_option",
    "add_record_option",
    "add_url_option",
    "non_negative",
    "non_negative_int",
    "positive",
    "positive_int",
    "stderr_console",
    "stdout_console",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 something failed (commands lost, refused or timed out, agents that "
    "could not log in or out); 2 usage or connection error; 130 interrupted."
)


def stderr_console() -> Console:
    """Human output goes to stderr so that stdout carries only what ``--json`` promises."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    """The console for a command's result (summary tables, answered events)."""
    return Console(highlight=False, soft_wrap=True)


# -- options ---------------------------------------------------------------------------------------


class Options(Protocol):
    """Where an option is declared: a parser, or one of its argument groups."""

    def add_argument(self, *name_or_flags: str, **kwargs: Any) -> argparse.Action:
        """Declare one option (argparse's method)."""
        ...

    def add_mutually_exclusive_group(self, *, required: bool = False) -> Any:
        """A group of options of which at most one may be given (argparse's method)."""
        ...


def add_global_options(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """``-v`` and ``--loop``: accepted before the command and after it.

    On the subcommands the defaults are suppressed, so a value given before the command is not
    overwritten by the subcommand's default.
    """
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if top else argparse.SUPPRESS,
        help="more logging on stderr (-v info, -vv debug)",
    )
    parser.add_argument(
        "--loop",
        choices=("auto", "uvloop", "asyncio"),
        default="auto" if top else argparse.SUPPRESS,
        help="event loop (default: uvloop when installed)",
    )


def add_connection_options(
    parser: argparse.ArgumentParser,
    *,
    ttl: bool = True,
    destination_help: str = "this client's destination (topic); default: a unique name",
) -> None:
    """The options that say where the connector is: declared once for load, demo, send, watch.

    ``--url`` and ``--queue`` are :func:`add_url_option` and :func:`add_queue_option`, which
    ``probe``, ``replay`` and ``emulate`` use too; ``--emulate``/``--no-emulator`` is
    :func:`add_emulator_switch`.
    """
    add_url_option(parser)
    add_queue_option(parser)
    parser.add_argument("--destination", default=None, help=destination_help)
    parser.add_argument(
        "--connect-timeout",
        type=positive,
        default=10.0,
        help="seconds to wait for the connector to answer Hello (default 10)",
    )
    if ttl:
        parser.add_argument(
            "--ttl",
            type=positive,
            default=10.0,
            help="seconds a command may wait for its answer (default 10)",
        )
    add_emulator_switch(parser)


_URL_HELP = "broker URL (default memory://, in-process); e.g. stomp://127.0.0.1:61613"


def add_url_option(
    parser: Options,
    *,
    default: str | None = "memory://",
    required: bool = False,
    help_text: str = _URL_HELP,
) -> None:
    """``--url``: the broker the command talks to (``memory://`` unless the command says).

    One declaration of the flag for every command; a command whose URL cannot default (probe)
    makes it required, one that serves others (emulate) defaults to a real broker.
    """
    parser.add_argument(
        "--url", default=None if required else default, required=required, help=help_text
    )


def add_queue_option(
    parser: Options,
    *,
    help_text: str = "connector command queue (default Connector1)",
) -> None:
    """``--queue``: the connector's command queue, ``Connector1`` as the connector ships."""
    parser.add_argument("--queue", default="Connector1", help=help_text)


def add_emulator_switch(
    parser: Options,
    *,
    help_text: str = (
        "run the connector emulator in this process on the same URL (default on memory://)"
    ),
) -> None:
    """``--emulate`` / ``--no-emulator``: ``args.emulate`` is True, False, or None (the
    command decides: an emulator on ``memory://``, none elsewhere)."""
    emu = parser.add_mutually_exclusive_group()
    emu.add_argument("--emulate", dest="emulate", action="store_true", default=None, help=help_text)
    emu.add_argument(
        "--no-emulator",
        dest="emulate",
        action="store_false",
        help="do not start an emulator (a real connector must answer)",
    )


def add_record_option(parser: argparse.ArgumentParser) -> None:
    """``--record PATH``: the client's link written to a trace (send, watch, load)."""
    parser.add_argument(
        "--record",
        metavar="PATH",
        default=None,
        help="write every message of this client's link to a trace (JSON Lines; "
        "docs/trace-format.md), for cucmconn replay",
    )


def _number(text: str, kind: type[float] | type[int]) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def positive(text: str) -> float:
    """argparse type: a number > 0."""
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def non_negative(text: str) -> float:
    """argparse type: a number >= 0."""
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0."""
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {text}")
    return value


# -- Ctrl-C ----------------------------------------------------------------------------------------


class StopSignal:
    """First Ctrl-C asks the run to stop cleanly (it still reports); the second aborts it."""

    def __init__(self, console: Console | None = None) -> None:
        self.event = asyncio.Event()
        self._console = console
        self._task: asyncio.Task[Any] | None = None
        self._installed = False

    def __enter__(self) -> StopSignal:
        self._task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, self._on_sigint)
            loop.add_signal_handler(signal.SIGTERM, self._on_sigint)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            loop = asyncio.get_running_loop()
            loop.remove_signal_handler(signal.SIGINT)
            loop.remove_signal_handler(signal.SIGTERM)

    def _on_sigint(self) -> None:
        if not self.event.is_set():
            self.event.set()
            if self._console is not None:
                self._console.print("[yellow]stopping... (Ctrl-C again to abort)[/]")
            return
        if self._task is not None:
            self._task.cancel()
