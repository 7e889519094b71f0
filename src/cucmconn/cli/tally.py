"""Where every command a load run issues lands, by how it ended: the one tally of the project.

``cucmconn load``/``demo``, ``scripts/soak.py`` and the reliability tests all count with this
class, so each word has one meaning everywhere:

- ``answered``: the connector answered with the command's event;
- ``errors``: it answered ``<target>#Error#<code>`` (by code in ``errors_by_code``);
- ``unavailable``: refused at once because the connector reported OUT_OF_SERVICE;
- ``timeouts``: no answer within the command's TTL;
- ``lost``: the link to the broker dropped, so the outcome is unknown (``lost_in_flight`` of
  them were on the wire; the rest were refused because the link was already down);
- ``unexpected``: anything else (a bug: the client documents no other failure).

``unanswered`` (timeouts + lost) is what a run must not have.  ``sent`` equals the sum of the
columns once every command has ended (``balanced``).  Latency is recorded for commands the
connector answered (events and error events) in the client's own histogram
(:class:`~cucmconn.client.stats.LatencyHistogram`), so a run reports one figure, measured once.

No dependency beyond the SDK itself (no rich): the soak script and the tests import it.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections import Counter
from collections.abc import Awaitable
from typing import Any, TypeVar

from ..client.stats import LatencyHistogram
from ..errors import (
    CommandError,
    CommandTimeout,
    ConnectionLost,
    ServiceUnavailable,
    TransportError,
)

__all__ = ["Tally", "classify", "counted"]

T = TypeVar("T")


def classify(exc: BaseException) -> str:
    """The tally column for a command's exception (ConnectionLost is a TransportError)."""
    if isinstance(exc, CommandError):
        return "errors"
    if isinstance(exc, CommandTimeout):
        return "timeouts"
    if isinstance(exc, ServiceUnavailable):
        return "unavailable"
    if isinstance(exc, ConnectionLost | TransportError):
        return "lost"
    return "unexpected"


class Tally:
    """Outcome of every command a run awaited, latency of the answered ones, and call counts."""

    def __init__(self) -> None:
        self.sent = 0
        self.answered = 0
        self.errors = 0
        self.errors_by_code: Counter[str] = Counter()
        self.timeouts = 0
        self.lost = 0
        self.lost_in_flight = 0
        """Of ``lost``: commands on the wire when the link dropped."""
        self.unavailable = 0
        self.unexpected = 0
        self.unexpected_kinds: dict[str, int] = {}
        self.latency = LatencyHistogram()
        """Milliseconds from send to the answering event (or error event)."""
        self.calls_started = 0
        self.calls_completed = 0
        self.calls_failed = 0
        self.started: float | None = None
        self.ended: float | None = None

    # -- the columns ----------------------------------------------------------------------------

    @property
    def unanswered(self) -> int:
        """Commands that got no answer at all: timed out, or lost with the link."""
        return self.timeouts + self.lost

    @property
    def accounted(self) -> int:
        """The sum of the outcome columns; equals ``sent`` once every command has ended."""
        return (
            self.answered
            + self.errors
            + self.timeouts
            + self.lost
            + self.unavailable
            + self.unexpected
        )

    @property
    def balanced(self) -> bool:
        """Every command sent has exactly one outcome."""
        return self.sent == self.accounted

    def line(self) -> str:
        """The tally in one line, for logs and failure messages."""
        in_flight = f" ({self.lost_in_flight:,} in flight)" if self.lost else ""
        unexpected = (
            f" + {self.unexpected:,} UNEXPECTED {self.unexpected_kinds}" if self.unexpected else ""
        )
        return (
            f"{self.sent:,} sent = {self.answered:,} answered + {self.errors:,} errors + "
            f"{self.timeouts:,} timeouts + {self.lost:,} lost{in_flight} + "
            f"{self.unavailable:,} unavailable{unexpected}"
        )

    def copy(self) -> Tally:
        """A snapshot that later commands do not change."""
        return copy.deepcopy(self)

    # -- counting -------------------------------------------------------------------------------

    async def record(self, command: Awaitable[T]) -> T:
        """Await one command and file its outcome; a failure is re-raised for the caller."""
        self.sent += 1
        started = time.perf_counter()
        try:
            result = await command
        except asyncio.CancelledError:
            self._unexpected("CancelledError")
            raise
        except Exception as exc:
            self.file(exc, started)
            raise
        self.answered += 1
        self.latency.record((time.perf_counter() - started) * 1000.0)
        return result

    def file(self, exc: BaseException, started: float | None = None) -> str:
        """Count a failed command under its column (see :func:`classify`); returns the column."""
        column = classify(exc)
        if isinstance(exc, CommandError):
            self.errors += 1
            self.errors_by_code[exc.code] += 1
            if started is not None:  # the connector did answer: its latency counts
                self.latency.record((time.perf_counter() - started) * 1000.0)
        elif column == "lost":
            self.lost += 1
            if "in flight" in str(exc):
                self.lost_in_flight += 1
        elif column == "unexpected":
            self._unexpected(type(exc).__name__)
        else:
            setattr(self, column, getattr(self, column) + 1)
        return column

    def _unexpected(self, kind: str) -> None:
        self.unexpected += 1
        self.unexpected_kinds[kind] = self.unexpected_kinds.get(kind, 0) + 1

    # -- the clock of a measured phase ------------------------------------------------------------

    def start_clock(self) -> None:
        """Mark the start of the measured phase (throughput is over this clock)."""
        self.started = time.monotonic()
        self.ended = None

    def stop_clock(self) -> None:
        """Mark its end."""
        self.ended = time.monotonic()

    @property
    def seconds(self) -> float:
        """Length of the measured phase so far (0 before it started)."""
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    @property
    def throughput(self) -> float:
        """Commands sent per second of the measured phase."""
        seconds = self.seconds
        return self.sent / seconds if seconds > 0 else 0.0

    def latency_ms(self) -> dict[str, float]:
        """The run's one latency figure: p50, p99 and max in milliseconds."""
        hist = self.latency
        return {
            "p50": round(hist.percentile(0.50), 3),
            "p99": round(hist.percentile(0.99), 3),
            "max": round(hist.max_ms, 3),
        }

    def as_dict(self) -> dict[str, Any]:
        """The columns as plain data (what ``--json`` reports)."""
        return {
            "commands": self.sent,
            "answered": self.answered,
            "errors": self.errors,
            "errors_by_code": dict(self.errors_by_code.most_common()),
            "unavailable": self.unavailable,
            "timeouts": self.timeouts,
            "lost": self.lost,
            "lost_in_flight": self.lost_in_flight,
            "unanswered": self.unanswered,
            "unexpected": self.unexpected,
            "unexpected_kinds": dict(self.unexpected_kinds),
        }


async def counted(tally: Tally, command: Awaitable[T]) -> T | None:
    """Await one command, file its outcome in ``tally``; its event, or None when it failed."""
    try:
        return await tally.record(command)
    except Exception:
        return None
