"""The progress display of a running demo or load: a rich Live panel on a terminal, lines otherwise.

On a terminal the panel redraws four times a second; when stderr is a file or a pipe (CI logs)
animation would only fill the log with escape codes, so a plain line is printed every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table

from .tally import Tally

__all__ = ["LiveView"]

_PLAIN_EVERY = 5.0


class LiveView:
    """Shows what a run is doing while it runs; ``extra()`` adds rows (events, agents, ...).

    Every figure comes from the run's tallies, the same objects the summary is built from, and
    the time shown is the traffic tally's clock: when the run ends, the panel's last latency
    and duration are the summary's.
    """

    def __init__(
        self,
        console: Console,
        *,
        title: str,
        duration: float,
        extra: Callable[[], dict[str, str]] | None = None,
        enabled: bool = True,
    ) -> None:
        self.console = console
        self.title = title
        self.duration = duration
        self.extra = extra or dict
        self.enabled = enabled
        self.phase = "connecting"
        self.tally = Tally()
        """What the rows show now: the log-ins' tally, then the traffic's."""
        self.traffic: Tally | None = None
        self._last = (time.monotonic(), 0)
        self._rate = 0.0
        self._task: asyncio.Task[None] | None = None
        self._live: Live | None = None

    async def __aenter__(self) -> LiveView:
        if not self.enabled:
            return self
        if self.console.is_terminal:
            self._live = Live(self.render(), console=self.console, refresh_per_second=4)
            self._live.start()
            self._task = asyncio.create_task(self._refresh(0.25))
        else:
            self._task = asyncio.create_task(self._refresh(_PLAIN_EVERY))
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._live is not None:
            self._live.update(self.render())
            self._live.stop()

    def show(self, phase: str, tally: Tally | None = None) -> None:
        """Enter ``phase``; with ``tally``, the rows follow it from now on."""
        self.phase = phase
        if tally is not None:
            self.tally = tally
            self._last = (time.monotonic(), tally.sent)

    def start_traffic(self, tally: Tally) -> None:
        """The traffic phase starts: its tally's clock drives the time row."""
        self.traffic = tally
        self.show("traffic", tally)

    async def _refresh(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self._sample()
            if self._live is not None:
                self._live.update(self.render())
            else:
                self.console.print(self.line())

    def _sample(self) -> None:
        now = time.monotonic()
        then, sent = self._last
        if now > then:
            self._rate = (self.tally.sent - sent) / (now - then)
        self._last = (now, self.tally.sent)

    def _time(self) -> tuple[float, str]:
        traffic = self.traffic
        if traffic is None or traffic.started is None:
            return 0.0, f"{self.phase}"
        elapsed = traffic.seconds
        if traffic.ended is not None:
            return min(elapsed, self.duration), f"traffic ran {elapsed:.1f} s"
        if elapsed > self.duration:
            return self.duration, (
                f"{self.duration:g} / {self.duration:g} s, finishing the calls in progress"
            )
        return elapsed, f"{elapsed:4.1f} / {self.duration:g} s"

    def _fields(self) -> dict[str, str]:
        t = self.tally
        lat = t.latency_ms()
        errors = ", ".join(f"{c} {n}" for c, n in t.errors_by_code.most_common(3)) or "none"
        fields = {
            "phase": self.phase,
            "calls": f"{t.calls_completed:,} done, {t.calls_failed:,} failed",
            "commands": f"{t.sent:,}  ({self._rate:,.0f}/s now)",
            "latency": f"p50 {lat['p50']:.2f} ms  p99 {lat['p99']:.2f} ms  max {lat['max']:.2f} ms",
            "errors": f"{t.errors:,}  ({errors}), unavailable {t.unavailable:,}",
            "unanswered": f"{t.unanswered:,}  (timeouts {t.timeouts:,}, lost {t.lost:,})",
        }
        fields.update(self.extra())
        return fields

    def render(self) -> Panel:
        """The panel as it stands now."""
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        done, text = self._time()
        bar = ProgressBar(total=self.duration, completed=done, width=40)
        table.add_row("time", _Row(bar, f" {text}"))
        for name, value in self._fields().items():
            table.add_row(name, value)
        return Panel(table, title=self.title, expand=False)

    def line(self) -> str:
        """One plain line (for logs, when stderr is not a terminal)."""
        f = self._fields()
        return (
            f"[{f['phase']}] {self._time()[1]} | commands {f['commands']} | {f['latency']} | "
            f"errors {f['errors']} | unanswered {f['unanswered']}"
        )


class _Row:
    """A progress bar followed by text, on one line."""

    def __init__(self, bar: ProgressBar, text: str) -> None:
        self.bar = bar
        self.text = text

    def __rich__(self) -> Any:
        grid = Table.grid()
        grid.add_row(self.bar, self.text)
        return grid
