"""A screen pop: when a customer's call rings an agent, look the caller up and publish who it is.

The service logs its agents in, reads the client's event stream, and for every ``InboundCall``
``ALERTING`` asks the CRM about the calling number and publishes a :class:`Pop` (to a web
socket, a message bus, ... here: any async callable).  A slow or failing CRM never holds up the
next call: each lookup runs in its own task, bounded by ``lookup_timeout``.

Its tests (``test_screen_pop.py``) use only the cucmconn pytest plugin's fixtures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from cucmconn import CallStatus, Client, ConnectorError, InboundCall

log = logging.getLogger("screen_pop")


@dataclass(frozen=True)
class Customer:
    """What the CRM knows about a caller."""

    name: str
    account: str


@dataclass(frozen=True)
class Pop:
    """One screen pop: which agent, which call, who is calling (None: not in the CRM)."""

    agent: str
    connection_id: str
    number: str
    customer: Customer | None


class Crm(Protocol):
    """The lookup the service needs from a CRM."""

    async def lookup(self, number: str) -> Customer | None:
        """The customer calling from ``number``, or None when the CRM does not know it."""
        ...


class DictCrm:
    """A CRM held in a dict (a stand-in for a real one in a demo or a test)."""

    def __init__(self, customers: Mapping[str, Customer]) -> None:
        self._customers = dict(customers)

    async def lookup(self, number: str) -> Customer | None:
        """The customer with this number, if any."""
        return self._customers.get(number)


Publish = Callable[[Pop], Awaitable[None]]


class ScreenPop:
    """Pops the caller's record on each agent's screen; run :meth:`run` as a task."""

    def __init__(
        self,
        client: Client,
        agents: Iterable[str],
        crm: Crm,
        publish: Publish,
        *,
        lookup_timeout: float = 2.0,
        max_lookups: int = 100,
    ) -> None:
        self.client = client
        self.agents = tuple(agents)
        self.crm = crm
        self.publish = publish
        self.lookup_timeout = lookup_timeout
        self.failed_logins: dict[str, str] = {}
        self._lookups = asyncio.Semaphore(max_lookups)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Log every agent in; an agent that cannot log in is recorded, not fatal."""
        for extension in self.agents:
            try:
                await self.client.agent(extension).login()
            except ConnectorError as exc:
                self.failed_logins[extension] = str(getattr(exc, "code", exc))
                log.warning("agent %s could not log in: %s", extension, exc)

    async def run(self) -> None:
        """Log in, then pop every call that rings one of our agents, until cancelled."""
        events = self.client.events()
        await self.start()
        try:
            async for event in events:
                if (
                    isinstance(event, InboundCall)
                    and event.state == CallStatus.ALERTING
                    and event.agent_id in self.agents
                    and event.connection_id is not None
                ):
                    self._spawn(event.agent_id, event.connection_id, event.other_party or "")
        finally:
            for task in self._tasks:
                task.cancel()

    def _spawn(self, agent: str, connection_id: str, number: str) -> None:
        task = asyncio.create_task(self._pop(agent, connection_id, number))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pop(self, agent: str, connection_id: str, number: str) -> None:
        customer: Customer | None = None
        async with self._lookups:
            try:
                async with asyncio.timeout(self.lookup_timeout):
                    customer = await self.crm.lookup(number)
            except Exception:  # a CRM outage must not stop the pops: show the number alone
                log.warning("CRM lookup of %s failed", number, exc_info=True)
        await self.publish(Pop(agent, connection_id, number, customer))
