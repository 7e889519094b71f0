"""``cucmconn``: the command line (demo, load, watch, send, emulate, broker).

argparse rather than click/typer: it is in the standard library, and a console script of an SDK
should not pull a CLI framework into every application that embeds the SDK.  Every command is
an ``async`` function taking the parsed arguments and returning an exit code, so tests (and
embedding applications) can await :func:`main_async` on a loop they already run.

The command line is an extra (``pip install 'cucmconn[cli]'``, which brings rich): without it,
this entry point says so in one line instead of a traceback.  Exit codes: see :mod:`.common`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from ..errors import ConnectorError, MissingExtra, TransportError

try:  # rich is the 'cli' extra: without it, one line naming the extra instead of a traceback
    from rich.logging import RichHandler
    from rich.markup import escape
except ModuleNotFoundError as _exc:
    raise SystemExit(f"cucmconn: {MissingExtra('cli', 'the command line')}") from _exc

from ..broker.cli import main as broker_main
from ..client import loop as loops
from . import demo, emulate, load, probe, replay, send, watch
from .common import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_global_options,
    stderr_console,
)
from .session import CannotConnect

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main", "main_async"]

_DELEGATED = ("broker",)
_EPILOG = f"""\
examples:
  cucmconn demo                              a contact centre in one process, no broker needed
  cucmconn load --agents 1000 --duration 30 --json
  cucmconn send --emulate Login 1001 my-desk
  cucmconn broker start                      a local ActiveMQ for the real thing
  cucmconn load --url stomp://127.0.0.1:61613 --emulate --agents 5000

URLs: memory://[name] (in-process broker), stomp://[user:pass@]host[:61613],
stomp+ssl://..., failover:(stomp://a,stomp://b), aiostomp://host[:61613].
Global options (-v, --loop) go before or after the command.
{EXIT_CODES_HELP}
"""

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; ``broker`` is listed, its parser is the broker package's."""
    parser = argparse.ArgumentParser(
        prog="cucmconn",
        description=(
            "Tools for the Expertflow CUCM Connector: try it with an in-process demo, "
            "load-test a connector, watch an agent, send one command, probe a connector, "
            "record and replay its traffic, emulate it, run a local ActiveMQ."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (demo, load, watch, send, replay, probe, emulate):
        sub = module.add_parser(commands)
        add_global_options(sub)
    commands.add_parser(
        "broker",
        help="start|stop|status a local ActiveMQ (see: cucmconn broker --help)",
        add_help=False,
    )
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    # A terminal gets rich's columns; a pipe or a file (a service manager, a test, `2>log`) gets
    # one plain line per record, since rich wraps long records at its assumed 80 columns and a
    # broker address split over two lines no longer greps.
    handler: logging.Handler
    if sys.stderr.isatty():
        handler = RichHandler(console=stderr_console(), show_path=False)
        fmt = "%(name)s: %(message)s"
    else:
        handler = logging.StreamHandler(sys.stderr)
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, handlers=[handler], force=True)


def _split_globals(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(global options, the rest) for an argv whose global options precede the command."""
    head: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--loop" and index + 1 < len(argv):
            head += argv[index : index + 2]
            index += 2
        elif token.startswith("--loop=") or token == "--verbose" or _is_v(token):
            head.append(token)
            index += 1
        else:
            break
    return head, list(argv[index:])


def _is_v(token: str) -> bool:
    return len(token) > 1 and token[0] == "-" and set(token[1:]) == {"v"}


def _delegate(argv: Sequence[str]) -> int:
    """``broker`` belongs to its package; its ``main`` sees the rest of argv.

    It runs no event loop and logs nothing, so global options given before it do not concern it.
    """
    try:
        return broker_main(list(argv))
    except SystemExit as exc:  # argparse's --help / usage errors inside the delegate
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _parse(argv: Sequence[str]) -> argparse.Namespace | int:
    parser = build_parser()
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2): keep argparse's message
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE


async def main_async(argv: Sequence[str]) -> int:
    """Run one command on the current loop (for tests and embedding); returns the exit code."""
    args = _parse(argv)
    if isinstance(args, int):
        return args
    return await _dispatch(args)


async def _dispatch(args: argparse.Namespace) -> int:
    handler: Handler = args.handler
    console = stderr_console()
    try:
        return await handler(args)
    except CannotConnect as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return EXIT_USAGE
    except TransportError as exc:
        console.print(f"[red]error:[/] cannot reach the broker: {escape(str(exc))}")
        return EXIT_USAGE
    except ConnectorError as exc:  # before OSError: CommandTimeout is also a TimeoutError
        console.print(f"[red]error:[/] {type(exc).__name__}: {escape(str(exc))}")
        return EXIT_FAILED
    except OSError as exc:
        if exc.filename is not None:  # a file named on the command line (trace, report, users)
            console.print(f"[red]error:[/] {escape(str(exc))}")
        else:
            console.print(f"[red]error:[/] cannot reach the broker: {escape(str(exc))}")
        return EXIT_USAGE
    except ValueError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return EXIT_USAGE


def _run(coro: Coroutine[Any, Any, int], loop: str) -> int:
    if loop == "uvloop" and loops.loop_factory(True) is None:
        coro.close()
        message = escape(str(MissingExtra("uvloop", "--loop uvloop")))  # keep its [uvloop]
        stderr_console().print(f"[red]error:[/] {message}")
        return EXIT_USAGE
    return loops.run(coro, use_uvloop=loop != "asyncio")


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: parse, set up logging, run on uvloop when installed, map Ctrl-C."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _, rest = _split_globals(argv)
    if rest and rest[0] in _DELEGATED:
        return _delegate(rest[1:])
    args = _parse(argv)
    if isinstance(args, int):
        return args
    _configure_logging(args.verbose)
    try:
        return _run(_dispatch(args), args.loop)
    except (KeyboardInterrupt, asyncio.CancelledError):
        stderr_console().print("[yellow]interrupted[/]")
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
