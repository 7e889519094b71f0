"""Run the emulator on a broker until stopped: what ``cucmconn emulate`` does.

The command line (its options, exit codes, logging) belongs to :mod:`cucmconn.cli.emulate`;
this module is the part an embedding program or a test can call without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence

import msgspec

from ..transport.url import redact_url
from .directory import DEFAULT_EXTENSIONS
from .emulator import Emulator, EmulatorStats

__all__ = ["serve"]


async def serve(
    url: str,
    *,
    queue: str = "Connector1",
    extensions: str = DEFAULT_EXTENSIONS,
    licenses: int | None = None,
    event_format: str = "default",
    latency: float = 0.0,
    require_sender: bool = False,
    owners: Mapping[str, Sequence[str]] | None = None,
    inbound_rate: float = 0.0,
    stats_every: float = 0.0,
    metrics_port: int | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the command queue on ``url`` until ``stop`` is set, or SIGINT/SIGTERM arrives.

    What ``cucmconn emulate`` runs (its options are this function's arguments): it prints one
    line saying where it serves, starts inbound calls at ``inbound_rate`` per second, serves
    Prometheus metrics on ``metrics_port`` (the prometheus extra), and every ``stats_every``
    seconds prints the stats and the interval's commands and CPU as one JSON line on stderr.
    Raises what :class:`Emulator` raises when the broker cannot be reached.
    """
    stop = asyncio.Event() if stop is None else stop
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with Emulator(
        url,
        queue=queue,
        extensions=extensions,
        licenses=licenses,
        event_format=event_format,
        latency=latency,
        require_sender=require_sender,
        owners=owners,
    ) as emulator:
        checked = ", sender checked" if require_sender else ""
        print(
            f"emulator on {redact_url(url)} queue {queue}, extensions "
            f"{extensions}, format {event_format}{checked}; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        if inbound_rate > 0:
            emulator.start_inbound_traffic(inbound_rate)
        with contextlib.ExitStack() as metrics:
            if metrics_port is not None:
                metrics.enter_context(_metrics_server(metrics_port, emulator))
            window = _Window(emulator.stats().commands_executed)
            while not stop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), stats_every or None)
                if stats_every and not stop.is_set():
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
