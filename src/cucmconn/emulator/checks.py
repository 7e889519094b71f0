"""The checking half of a test's connector: wait for a command or an event, wait for a
condition, read the history.  Written once for the :class:`~cucmconn.emulator.Emulator` and the
test doubles :class:`~cucmconn.testing.Connector` (an emulator) and
:class:`~cucmconn.testing.TraceConnector` (a replayed trace), which differ only in what keeps
the history: a :class:`~cucmconn.emulator.Scenario`, or an Emulator (whose ``wait_for`` also
waits for the answers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .scenario import CommandRecord, EventRecord, Scenario

if TYPE_CHECKING:  # an Emulator is itself ScenarioChecks
    from .emulator import Emulator

__all__ = ["ScenarioChecks"]


class ScenarioChecks:
    """``wait_for``, ``wait_for_event``, ``until``, ``commands``, ``events`` and ``transcript``
    for a test's connector; each says where its history is kept (:meth:`_scenario_control`).
    """

    def _scenario_control(self) -> Scenario | Emulator:
        raise NotImplementedError

    async def wait_for(
        self,
        command: str | None = None,
        agent: str | None = None,
        *,
        args: Iterable[str] | None = None,
        within: float = 5.0,
    ) -> CommandRecord:
        """Wait until the application sent ``command`` (for ``agent``); its record.

        Each record is returned once, even if it arrived before the call.  On timeout, raises
        an AssertionError showing the recent commands and events.
        """
        __tracebackhide__ = True  # pytest: show the test's line, not ours
        control = self._scenario_control()
        return await control.wait_for(command, agent, args=args, within=within)

    async def wait_for_event(
        self,
        event: str | None = None,
        agent: str | None = None,
        *,
        state: str | None = None,
        within: float = 5.0,
    ) -> EventRecord:
        """Wait until the connector sent ``event`` (class name) for ``agent`` in ``state``."""
        __tracebackhide__ = True  # pytest: show the test's line, not ours
        control = self._scenario_control()
        return await control.wait_for_event(event, agent, state=state, within=within)

    async def until(
        self, check: Callable[[], bool], *, within: float = 5.0, what: str = "the condition"
    ) -> None:
        """Wait until ``check()`` holds (say, the application published a result); on timeout
        an AssertionError names ``what`` and shows the recent commands and events."""
        __tracebackhide__ = True  # pytest: show the test's line, not ours
        await self._scenario_control().until(check, within=within, what=what)

    @property
    def commands(self) -> tuple[CommandRecord, ...]:
        """The commands received, oldest first (bounded by the history)."""
        return self._scenario_control().commands

    @property
    def events(self) -> tuple[EventRecord, ...]:
        """The events sent, oldest first (bounded by the history)."""
        return self._scenario_control().events

    def transcript(self, limit: int = 20) -> str:
        """The last ``limit`` commands and events, one per line: what a failing test shows."""
        return self._scenario_control().transcript(limit)
