"""Capped exponential back-off with jitter, as a pure object (no clock, no sleeping).

Jitter matters here: when a broker restarts, every desktop and server client of a contact
centre reconnects at once; without it they would all retry in lock-step and hammer the broker
on each round.  Small enough that a library (``backoff``, ``tenacity``) would cost more than it
saves, and neither fits a reconnect loop that must also walk a failover list.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Delays ``initial * factor**n`` capped at ``maximum``, each scaled down by up to ``jitter``.

    ``jitter=0.5`` gives "equal jitter": a delay lies in ``[d/2, d]``, so retries never come
    sooner than half the nominal delay yet still spread out.
    """

    __slots__ = ("_attempt", "_random", "factor", "initial", "jitter", "maximum")

    def __init__(
        self,
        initial: float = 0.1,
        maximum: float = 30.0,
        *,
        factor: float = 2.0,
        jitter: float = 0.5,
        random_fn: Callable[[], float] = random.random,
    ) -> None:
        if initial <= 0 or maximum < initial or factor < 1 or not 0 <= jitter <= 1:
            raise ValueError("backoff needs 0 < initial <= maximum, factor >= 1, 0 <= jitter <= 1")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self._random = random_fn
        self._attempt = 0

    @property
    def attempt(self) -> int:
        return self._attempt

    def next(self) -> float:
        """The delay before the next attempt (and count the attempt)."""
        # min() before the power would overflow for a long outage: cap the exponent instead.
        exponent = min(self._attempt, 64)
        nominal = min(self.maximum, self.initial * self.factor**exponent)
        self._attempt += 1
        return nominal * (1.0 - self.jitter * self._random())

    def reset(self) -> None:
        self._attempt = 0
