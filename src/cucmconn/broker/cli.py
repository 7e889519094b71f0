"""``cucmconn broker start|stop|status``: a local ActiveMQ for development, from the shell.

``start --secure`` runs it with authentication, per-tenant authorization and
``populateJMSXUserID`` (see :mod:`cucmconn.broker.tenants`): with ``--users FILE`` the accounts
come from that file; without, fresh ones are generated for ``--clients`` and printed once, on
stdout, as a users file (they are kept nowhere else but the broker's own 0600 configuration).

Kept apart from the manager so the CLI engineer can mount it as a sub-command unchanged
(``main(argv)`` returns an exit code and never calls ``sys.exit`` itself).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from .activemq import TRANSPORT_PROFILES, TUNED, LocalActiveMQ, LocalBrokerError, default_base_dir
from .tenants import Tenancy, TenancyError, parse_logins

__all__ = ["build_parser", "main"]


def build_parser(prog: str = "cucmconn broker") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Run a local ActiveMQ broker.")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start the broker (in the background)")
    _add_dir(start)
    start.add_argument("--stomp-port", type=int, default=61613)
    start.add_argument("--openwire-port", type=int, default=61616)
    start.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for ports")
    start.add_argument(
        "--transport",
        choices=TRANSPORT_PROFILES,
        default=TUNED,
        help="connector options: tuned (1 MB socket buffers, TCP_NODELAY; default) or "
        "ActiveMQ's defaults, as most users' brokers run",
    )
    start.add_argument(
        "--secure",
        action="store_true",
        help="authentication, per-tenant topic ACLs and populateJMSXUserID (for "
        "cucmconn emulate --require-sender)",
    )
    start.add_argument(
        "--users",
        type=Path,
        default=None,
        metavar="FILE",
        help='with --secure: JSON {"connector": {"login", "passcode"}, "clients": '
        '{login: passcode}, "topics": {login: [patterns]}}; default: generate and print',
    )
    start.add_argument(
        "--clients",
        default="crm1,crm2",
        help="with --secure and no --users: client logins to generate (default crm1,crm2)",
    )
    start.add_argument(
        "--queue", default="Connector1", help="with --secure: the command queue (Connector1)"
    )
    start.add_argument(
        "--foreground", action="store_true", help="stay attached; Ctrl-C stops the broker"
    )
    _add_json(start)
    stop = commands.add_parser("stop", help="stop the broker started from --dir")
    _add_dir(stop)
    status = commands.add_parser("status", help="is the broker in --dir running and reachable")
    _add_dir(status)
    _add_json(status)
    return parser


def _add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="broker directory (default: $CUCMCONN_BROKER_DIR or ~/.cache/cucmconn/activemq)",
    )


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the status as JSON")


def main(argv: Sequence[str] | None = None) -> int:
    """``cucmconn broker start|stop|status`` (also ``python -m cucmconn.broker``); returns the
    exit code."""
    args = build_parser().parse_args(argv)
    base = args.dir if args.dir is not None else default_base_dir()
    try:
        if args.command == "start":
            return _start(base, args)
        if args.command == "stop":
            return _stop(base)
        return _status(LocalActiveMQ.from_state(base), as_json=args.json)
    except LocalBrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _tenancy(args: argparse.Namespace) -> tuple[Tenancy | None, bool]:
    """The tenancy to run with, and whether it was generated here (so must be shown)."""
    if not args.secure:
        if args.users is not None:
            raise TenancyError("--users applies only with --secure")
        return None, False
    if args.users is not None:
        return Tenancy.load(args.users), False
    return Tenancy.generate(parse_logins(args.clients)), True


def _start(base: Path, args: argparse.Namespace) -> int:
    try:
        tenancy, generated = _tenancy(args)
        broker = LocalActiveMQ(
            base,
            stomp_port=args.stomp_port,
            openwire_port=args.openwire_port,
            transport_profile=args.transport,
            tenancy=tenancy,
            command_queue=args.queue,
        )
    except (TenancyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    broker.start(timeout=args.timeout)

    def _terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if args.foreground:  # before "running" is printed: a supervisor may signal once it reads it
        signal.signal(signal.SIGTERM, _terminate)
    try:
        shown = tenancy.to_dict() if generated and tenancy is not None else None
        if shown is not None and not args.json:
            print("generated credentials (shown only now; save them as a --users file):")
            print(json.dumps(shown, indent=2), flush=True)
        _status(broker, as_json=args.json, users=shown)
        if not args.foreground:
            return 0
        code = broker.wait()
    except KeyboardInterrupt:
        if not args.foreground:
            raise
        broker.stop()
        return 0
    print(f"error: broker exited with code {code}; log: {broker.log_path}", file=sys.stderr)
    return 1


def _stop(base: Path) -> int:
    broker = LocalActiveMQ.from_state(base)
    was_running = broker.running
    broker.stop()
    print("stopped" if was_running else "not running")
    return 0


def _status(broker: LocalActiveMQ, *, as_json: bool, users: dict[str, object] | None = None) -> int:
    status = broker.status()
    if as_json:
        out = status.to_dict()
        if users is not None:
            out["users"] = users  # generated by --secure: shown this once
        print(json.dumps(out, indent=2))
    elif status.running:
        print(f"running (pid {status.pid}): {status.stomp_url} {status.openwire_url}")
        print(f"log: {status.log_path}")
    else:
        print(f"not running ({status.base_dir})")
    return 0 if status.running else 3
