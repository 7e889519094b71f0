"""``cucmconn demo``: a whole contact centre in one process, on a fresh machine.

The in-process broker (memory://), the emulator and a few hundred agents run the inbound
scenario: customers call in, agents answer, hold and retrieve, then release, blind-transfer, or
consult a colleague and transfer or conference.  Agents pause between steps (the think time) so
the traffic looks like a contact centre rather than a benchmark; ``cucmconn load`` is the
flat-out version.  It is the same code path as ``load``, so what the demo shows is what a load
run measures.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import EXIT_CODES_HELP
from .load import add_traffic_arguments, options_from, run_load

__all__ = ["add_parser"]

_DESCRIPTION = f"""\
Run a contact centre in this process and watch it work: no broker, no Java needed.

An in-process broker (memory://), the connector emulator, and --agents agents logged in through
one client. Customers call in; agents answer, hold and retrieve, then hang up, blind-transfer,
or consult a colleague and transfer or conference. A live panel shows calls, commands, events,
latency and errors; a summary table closes the run.

--url stomp://host:61613 runs the same against a real ActiveMQ (the emulator connects there
too; start one with `cucmconn broker start`).
{EXIT_CODES_HELP}
"""


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """``cucmconn demo``'s options (load's, with a contact centre's defaults)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="a contact centre in one process: emulator + agents + live stats (start here)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_traffic_arguments(parser, agents=200, duration=15.0)
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=(0.05, 0.3),
        metavar=("MIN", "MAX"),
        help="seconds an agent pauses between steps (default 0.05 0.3; 0 0 for flat out)",
    )
    parser.set_defaults(handler=_handle)
    return parser


async def _handle(args: argparse.Namespace) -> int:
    low, high = args.think
    if low < 0 or high < low:
        raise ValueError("--think MIN MAX needs 0 <= MIN <= MAX")
    opts = options_from(
        args,
        scenario="inbound",
        emulate=True if args.emulate is None else args.emulate,
        think=(low, high),
        title="cucmconn demo",
        count_events=True,
    )
    return await run_load(opts)
