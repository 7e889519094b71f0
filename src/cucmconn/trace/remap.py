"""Consistent renaming between a trace and a live run: connection ids, destinations, times.

A trace names the calls, client topics and clock of the run that made it.  Played again, the
same words must name the live run's: every connection id gets one live id (the same each time
it appears), every client destination the live one learned from the matching command, and every
event time moves by one shift (the live start minus the recorded start), so durations between
events stay as recorded.  Substitution is textual, on whole tokens, so a body keeps its exact
format (``#`` or JSON, the guide's attribute spellings) apart from the renamed values.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable

from .plan import TIMESTAMP

__all__ = ["Remap"]

_STAMP = "%Y-%m-%d %H:%M:%S"


class Remap:
    """Trace-side value -> live value, for tokens in message bodies and for destinations."""

    def __init__(self, tokens: Iterable[str] = (), *, shift_seconds: int = 0) -> None:
        self._live: dict[str, str] = {}
        self._tokens: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.shift_seconds = shift_seconds
        self.add_tokens(tokens)

    def add_tokens(self, tokens: Iterable[str]) -> None:
        """Values worth renaming in bodies (connection ids, destinations)."""
        new = {t for t in tokens if t} - self._tokens
        if not new:
            return
        self._tokens |= new
        alternatives = "|".join(re.escape(t) for t in sorted(self._tokens, key=len, reverse=True))
        self._pattern = re.compile(rf"(?<![\w.-])(?:{alternatives})(?![\w.-])")

    def learn(self, recorded: str, live: str) -> None:
        """``recorded`` is called ``live`` from now on (the first answer wins)."""
        if recorded and live and recorded not in self._live:
            self._live[recorded] = live
            self.add_tokens((recorded,))

    def live(self, recorded: str) -> str:
        return self._live.get(recorded, recorded)

    def known(self, recorded: str) -> bool:
        return recorded in self._live

    def body(self, text: str) -> str:
        """``text`` with every known token renamed and every event time shifted."""
        if self._pattern is not None and self._live:
            text = self._pattern.sub(lambda m: self._live.get(m.group(), m.group()), text)
        if self.shift_seconds:
            text = TIMESTAMP.sub(self._shift, text)
        return text

    def _shift(self, match: re.Match[str]) -> str:
        year, month, day, sep, hour, minute, second = match.groups()
        try:
            stamp = datetime.datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second)
            )
        except ValueError:
            return match.group()
        moved = stamp + datetime.timedelta(seconds=self.shift_seconds)
        return moved.strftime(_STAMP).replace(" ", sep)
