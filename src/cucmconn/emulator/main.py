"""``cucmconn emulate``: run the emulator on a broker until interrupted.

argparse rather than a CLI framework because the rest of ``cucmconn``'s command line is
argparse and ``cucmconn emulate`` hands this function the rest of its argv.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec

from ..client import loop as loops
from ..errors import ConnectorError
from ..transport.url import redact_url
from .directory import DEFAULT_EXTENSIONS, parse_extensions
from .emulator import Emulator, EmulatorStats
from .senders import load_owners

__all__ = ["build_parser", "main"]

log = logging.getLogger("cucmconn.emulator")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cucmconn emulate",
        description=(
            "Run a virtual CUCM behind the connector's wire protocol: it consumes the command "
            "queue like the real connector and answers on the clients' topics."
        ),
        epilog="Exit codes: 0 stopped (Ctrl-C); 2 bad options or the broker cannot be reached.",
    )
    parser.add_argument("--url", default="stomp://127.0.0.1:61613", help="broker URL")
    parser.add_argument("--queue", default="Connector1", help="command queue name")
    parser.add_argument(
        "--extensions", default=DEFAULT_EXTENSIONS, help="directory, e.g. 1000-1999 or 1000,2000"
    )
    parser.add_argument("--licenses", type=int, default=None, help="max concurrent logins")
    parser.add_argument("--format", choices=("default", "json"), default="default")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per command")
    parser.add_argument(
        "--inbound-rate", type=float, default=0.0, help="customer calls per second (0: none)"
    )
    parser.add_argument(
        "--stats-every",
        type=float,
        default=0.0,
        help="every N s print one JSON line on stderr: the stats, and for the interval the "
        "commands executed, commands/s and this process's CPU per command (cpu_us_per_command)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="N",
        help="serve Prometheus metrics at http://127.0.0.1:N/metrics (0: a free port, printed; "
        "needs the prometheus extra)",
    )
    parser.add_argument(
        "--loop", choices=("auto", "uvloop", "asyncio"), default="auto", help="event loop"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument(
        "--require-sender",
        action="store_true",
        help=(
            "refuse a command whose authenticated sender (JMSXUserID, set by a broker with "
            "populateJMSXUserID) does not own its reply topic: the topic is the user's name or "
            "starts with '<user>.'; for a broker with authentication (cucmconn broker start "
            "--secure), never on an open one"
        ),
    )
    parser.add_argument(
        "--owners",
        type=Path,
        default=None,
        metavar="FILE",
        help=(
            'with --require-sender: JSON {"user": ["topic pattern", ...]} replacing that rule '
            "(ActiveMQ wildcards * and >); the users file of broker start --secure also works"
        ),
    )
    return parser


async def _serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with Emulator(
        args.url,
        queue=args.queue,
        extensions=args.extensions,
        licenses=args.licenses,
        event_format=args.format,
        latency=args.latency,
        require_sender=args.require_sender,
        owners=args.owners_map,
    ) as emulator:
        checked = ", sender checked" if args.require_sender else ""
        print(
            f"emulator on {redact_url(args.url)} queue {args.queue}, extensions "
            f"{args.extensions}, format {args.format}{checked}; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        if args.inbound_rate > 0:
            emulator.start_inbound_traffic(args.inbound_rate)
        with contextlib.ExitStack() as metrics:
            if args.metrics_port is not None:
                metrics.enter_context(_metrics_server(args.metrics_port, emulator))
            window = _Window(emulator.stats().commands_executed)
            while not stop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.stats_every or None)
                if args.stats_every and not stop.is_set():
                    stats = emulator.stats()
                    line = {"stats": msgspec.to_builtins(stats), "interval": window.next(stats)}
                    print(msgspec.json.encode(line).decode(), file=sys.stderr, flush=True)


@contextlib.contextmanager
def _metrics_server(port: int, emulator: Emulator) -> Iterator[object]:
    """``--metrics-port``: the prometheus extra is loaded only when asked for."""
    from ..otel.prometheus import MetricsServer  # the prometheus extra

    with MetricsServer(port) as server:
        server.instrument_emulator(emulator)
        print(f"metrics at {server.url}", file=sys.stderr, flush=True)
        yield server


class _Window:
    """Commands executed and this process's CPU time between two stats lines.

    CPU time (``time.process_time``), not wall time: on a shared machine, or with the broker
    and the clients on the same cores, the CPU per command is what says how many commands
    one core of this emulator can take (1e6 / cpu_us_per_command per second).
    """

    def __init__(self, executed: int) -> None:
        self._executed = executed
        self._cpu = time.process_time()
        self._wall = time.monotonic()

    def next(self, stats: EmulatorStats) -> dict[str, float | int | None]:
        """The interval since the previous call, and start the next one."""
        cpu, wall = time.process_time(), time.monotonic()
        commands = stats.commands_executed - self._executed
        spent, seconds = cpu - self._cpu, wall - self._wall
        self._executed, self._cpu, self._wall = stats.commands_executed, cpu, wall
        return {
            "seconds": round(seconds, 3),
            "commands": commands,
            "commands_per_s": round(commands / seconds, 1) if seconds > 0 else None,
            "cpu_s": round(spent, 6),
            "cpu_us_per_command": round(spent * 1e6 / commands, 2) if commands else None,
        }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 after an interrupt, 2 on bad options or when the
    broker cannot be reached: the same codes as the rest of ``cucmconn``)."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        parse_extensions(args.extensions)
    except ValueError as exc:
        parser.error(str(exc))
    if args.licenses is not None and args.licenses < 0:
        parser.error("--licenses must be >= 0")
    if args.latency < 0 or args.inbound_rate < 0:
        parser.error("--latency and --inbound-rate must be >= 0")
    if args.verbose:
        logging.basicConfig(level=logging.INFO if args.verbose == 1 else logging.DEBUG)
    args.owners_map = None
    if args.owners is not None:
        if not args.require_sender:
            parser.error("--owners applies only with --require-sender")
        try:
            args.owners_map = load_owners(args.owners)
        except ValueError as exc:
            parser.error(str(exc))
    try:
        loops.run(_serve(args, asyncio.Event()), use_uvloop=args.loop != "asyncio")
    except KeyboardInterrupt:
        return 0
    except (ConnectorError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
