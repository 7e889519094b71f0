"""``cucmconn emulate`` (and ``python -m cucmconn.emulator``): run the emulator on a broker.

The command line owns the options; :func:`cucmconn.emulator.serve` does the work, so the
emulator package never imports the CLI. ``--url``, ``--queue``, ``-v`` and ``--loop`` are the
declarations every command shares (:mod:`.common`); ``--url`` defaults to the broker that
``cucmconn broker start`` runs, since an emulator on ``memory://`` alone would serve nobody.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.markup import escape

from ..emulator import serve
from ..emulator.directory import DEFAULT_EXTENSIONS, parse_extensions
from ..emulator.senders import load_owners
from ..errors import ConnectorError
from .common import (
    EXIT_OK,
    EXIT_USAGE,
    add_queue_option,
    add_url_option,
    non_negative,
    non_negative_int,
    stderr_console,
)

__all__ = ["DEFAULT_URL", "add_parser"]

DEFAULT_URL = "stomp://127.0.0.1:61613"
_EPILOG = "Exit codes: 0 stopped (Ctrl-C, SIGTERM); 2 bad options or the broker cannot be reached."


def _extensions(text: str) -> str:
    """argparse type: a directory spec :func:`parse_extensions` accepts, kept as written."""
    try:
        parse_extensions(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``cucmconn emulate`` on the command line's subparsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "emulate",
        help="run the connector emulator on a broker",
        description=(
            "Run a virtual CUCM behind the connector's wire protocol: it consumes the command "
            "queue like the real connector and answers on the clients' topics."
        ),
        epilog=_EPILOG,
    )
    add_url_option(
        parser,
        default=DEFAULT_URL,
        help_text=f"broker URL (default {DEFAULT_URL}, the one cucmconn broker start runs)",
    )
    add_queue_option(parser)
    parser.add_argument(
        "--extensions",
        type=_extensions,
        default=DEFAULT_EXTENSIONS,
        help=f"directory, e.g. 1000-1999 or 1000,2000 (default {DEFAULT_EXTENSIONS})",
    )
    parser.add_argument(
        "--licenses", type=non_negative_int, default=None, help="max concurrent logins"
    )
    parser.add_argument("--format", choices=("default", "json"), default="default")
    parser.add_argument(
        "--latency", type=non_negative, default=0.0, help="seconds added per command"
    )
    parser.add_argument(
        "--inbound-rate", type=non_negative, default=0.0, help="customer calls per second (0: none)"
    )
    parser.add_argument(
        "--stats-every",
        type=non_negative,
        default=0.0,
        help="every N s print one JSON line on stderr: the stats, and for the interval the "
        "commands executed, commands/s and this process's CPU per command (cpu_us_per_command)",
    )
    parser.add_argument(
        "--metrics-port",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="serve Prometheus metrics at http://127.0.0.1:N/metrics (0: a free port, printed; "
        "needs the prometheus extra)",
    )
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
    parser.set_defaults(handler=_handle)
    return parser


async def _handle(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM (exit 0); 2 when the broker cannot be reached."""
    if args.owners is not None and not args.require_sender:
        raise ValueError("--owners applies only with --require-sender")
    owners = load_owners(args.owners) if args.owners is not None else None
    try:
        await serve(
            args.url,
            queue=args.queue,
            extensions=args.extensions,
            licenses=args.licenses,
            event_format=args.format,
            latency=args.latency,
            require_sender=args.require_sender,
            owners=owners,
            inbound_rate=args.inbound_rate,
            stats_every=args.stats_every,
            metrics_port=args.metrics_port,
        )
    except (ConnectorError, OSError) as exc:  # a broker that cannot be reached: usage/connection
        stderr_console().print(f"[red]error:[/] {escape(str(exc))}")
        return EXIT_USAGE
    return EXIT_OK
