"""A supervisor wallboard: live counts of agent states and calls, from the client's stream.

The service logs its team in and reads ``client.events()``.  Each event has already updated
the agent's session (``state``, ``calls``) when it reaches the stream, so after every event the
board recounts from the sessions and, when the counts changed, publishes a :class:`Board`.
While CUCM is out of service, and after an ``EventsMayBeMissed`` notice (a reconnect, the end
of an outage) until the client's resync has re-read every agent's state, the board says it may
be stale.

Its tests (``test_wallboard.py``) use only the cucmconn pytest plugin's fixtures.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from cucmconn import (
    AgentState,
    AgentStatus,
    CallStatus,
    Client,
    ConnectorError,
    EventsMayBeMissed,
)

log = logging.getLogger("wallboard")


@dataclass(frozen=True)
class Board:
    """What the wall shows: agents per state, calls up and ringing, whether it may be stale."""

    agents: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    ringing: int = 0
    stale: bool = False


Publish = Callable[[Board], Awaitable[None]]


class Wallboard:
    """Keeps :attr:`board` current for ``team``; run :meth:`run` as a task."""

    def __init__(self, client: Client, team: Iterable[str], publish: Publish) -> None:
        self.client = client
        self.team = tuple(team)
        self.publish = publish
        self.board = Board()
        self._unconfirmed: set[str] = set()

    async def run(self) -> None:
        """Log the team in, then recount after every event, until cancelled."""
        events = self.client.events()
        for extension in self.team:
            try:
                await self.client.agent(extension).login()
            except ConnectorError as exc:  # shown as LOGOUT on the board, not fatal
                log.warning("agent %s could not log in: %s", extension, exc)
        await self._update()
        async for item in events:
            if isinstance(item, EventsMayBeMissed):
                # Stale until the client's resync has re-read each logged-in agent's state.
                self._unconfirmed = {e for e in self.team if self.client.agent(e).logged_in}
            elif isinstance(item, AgentState):
                self._unconfirmed.discard(item.agent_id)
            await self._update()

    def count(self) -> Board:
        """The board as the sessions say now."""
        states: Counter[str] = Counter()
        up: set[str] = set()
        ringing: set[str] = set()
        for extension in self.team:
            session = self.client.agent(extension)
            state = session.state if session.logged_in else AgentStatus.LOGOUT
            states[str(state or AgentStatus.LOGOUT)] += 1
            for connection_id, call in session.calls.items():
                (ringing if call.state == CallStatus.ALERTING else up).add(connection_id)
        return Board(dict(sorted(states.items())), len(up), len(ringing - up))

    async def _update(self) -> None:
        counted = self.count()
        stale = bool(self._unconfirmed) or not self.client.in_service
        board = Board(counted.agents, counted.calls, counted.ringing, stale)
        if board != self.board:
            self.board = board
            await self.publish(board)
