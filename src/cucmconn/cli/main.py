"""``cucmconn``: the command line (demo, load, watch, send, emulate, broker).

argparse rather than click/typer: it is in the standard library, and a console script of an SDK
should not pull a CLI framework into every application that embeds the SDK.  Every command is
an ``async`` function taking the parsed arguments and returning an exit code, so tests (and
embedding applications) can await :func:`main_async` on a loop they already run.

Exit codes: 0 success; 1 the run completed but something was lost or a command failed;
2 bad usage or the connector/broker could not be reached; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from ..errors import ConnectorError, MissingExtra, TransportError

try:  # rich is the 'cli' extra: without it, one line naming the extra instead of a traceback
    from rich.console import Console
    from rich.markup import escape
except ModuleNotFoundError as _exc:
    raise SystemExit(f"cucmconn: {MissingExtra('cli', 'the command line')}") from _exc

from .session import CannotConnect

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main", "main_async"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_DELEGATED = ("emulate", "broker")
_EPILOG = """\
examples:
  cucmconn demo                              a contact centre in one process, no broker needed
  cucmconn load --agents 1000 --duration 30 --json
  cucmconn send --emulate Login 1001 my-desk
  cucmconn broker start                      a local ActiveMQ for the real thing
  cucmconn load --url stomp://127.0.0.1:61613 --emulate --agents 5000

URLs: memory://[name] (in-process broker), stomp://[user:pass@]host[:61613],
stomp+ssl://..., failover:(stomp://a,stomp://b), aiostomp://host[:61613].
Exit codes: 0 ok, 1 commands lost or failed, 2 usage or connection error, 130 interrupted.
"""

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def stderr_console() -> Console:
    """Human output goes to stderr so that stdout carries only what ``--json`` promises."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _common(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    default: Any = 0 if top else argparse.SUPPRESS
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default,
        help="more logging on stderr (-v info, -vv debug)",
    )
    parser.add_argument(
        "--loop",
        choices=("auto", "uvloop", "asyncio"),
        default="auto" if top else argparse.SUPPRESS,
        help="event loop (default: uvloop when installed)",
    )


def build_parser() -> argparse.ArgumentParser:
    from . import demo, load, send, watch

    parser = argparse.ArgumentParser(
        prog="cucmconn",
        description=(
            "Tools for the Expertflow CUCM Connector: try it with an in-process demo, "
            "load-test a connector, watch an agent, send one command."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (demo, load, watch, send):
        sub = module.add_parser(commands)
        _common(sub)
    commands.add_parser(
        "emulate", help="run the connector emulator (see: cucmconn emulate --help)", add_help=False
    )
    commands.add_parser(
        "broker",
        help="start|stop|status a local ActiveMQ (see: cucmconn broker --help)",
        add_help=False,
    )
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=stderr_console(), show_path=False)],
        force=True,
    )


def _delegate(name: str, argv: Sequence[str]) -> int:
    """``emulate`` and ``broker`` belong to their packages; their ``main`` sees the rest of argv."""
    try:
        if name == "broker":
            from ..broker.cli import main as broker_main

            return broker_main(list(argv))
        try:
            from ..emulator import main as emulator_main
        except ImportError as exc:
            stderr_console().print(f"[red]error:[/] the emulator is not available: {exc}")
            return EXIT_USAGE
        return int(emulator_main(list(argv)) or 0)
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
        console.print(f"[red]error:[/] cannot reach the broker: {escape(str(exc))}")
        return EXIT_USAGE
    except ValueError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return EXIT_USAGE


def _run(coro: Coroutine[Any, Any, int], loop: str) -> int:
    from ..client import loop as loops

    if loop == "uvloop" and loops.loop_factory(True) is None:
        coro.close()
        message = escape(str(MissingExtra("uvloop", "--loop uvloop")))  # keep its [uvloop]
        stderr_console().print(f"[red]error:[/] {message}")
        return EXIT_USAGE
    return loops.run(coro, use_uvloop=loop != "asyncio")


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: parse, set up logging, run on uvloop when installed, map Ctrl-C."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATED:
        return _delegate(argv[0], argv[1:])
    args = _parse(argv)
    if isinstance(args, int):
        return args
    _configure_logging(args.verbose)
    try:
        return _run(_dispatch(args), args.loop)
    except (KeyboardInterrupt, asyncio.CancelledError):
        stderr_console().print("[yellow]interrupted[/]")
        return EXIT_INTERRUPTED


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
