"""A ``TransportListener`` for tests: it remembers what a transport told it, in order."""

from __future__ import annotations

__all__ = ["Recorder"]


class Recorder:
    """A TransportListener that remembers what it was told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, BaseException | None]] = []

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append(("lost", exc))

    def connection_restored(self) -> None:
        self.events.append(("restored", None))

    @property
    def kinds(self) -> list[str]:
        """``"lost"`` / ``"restored"``, in the order heard."""
        return [kind for kind, _ in self.events]
