"""Session supervision: the handshake, the keep-alive, outages and the resync after them.

The connector's own session rules (developer guide, "Connect"): Hello until IN_SERVICE, Beat
while in service, OUT_OF_SERVICE at any time, Hello again until it is back.  After the link
dropped and came back, or after the connector came back IN_SERVICE from an outage (it may have
restarted and forgotten agents), every logged-in agent is re-read with GetState and the
application is told (``EventsMayBeMissed`` first, ``on_resync`` last).

The supervisor owns the link and service state; it acts on the client only through the
callables it was given (send a probe, list and re-read logged-in agents, announce a notice), so
it never touches the client's internals and the client never touches its.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ..codec.events import Event, SystemStatus
from ..errors import CommandTimeout, ConnectionLost, ConnectorError, ServiceUnavailable

__all__ = ["Supervisor"]

log = logging.getLogger("cucmconn.client")

Probe = Callable[[str, float], Awaitable["asyncio.Future[Event]"]]
Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]


class Supervisor:
    """Keeps one client's session with the connector alive and its view of it current.

    ``probe(name, ttl)`` writes a Hello or Beat and returns the future its answer resolves;
    ``logged_in()`` lists the extensions believed logged in and ``refresh(ext)`` re-reads one;
    ``announce(reason)`` puts an ``EventsMayBeMissed`` notice in every stream; ``after_resync()``
    runs the application's callback; ``service_changed(up, why)`` tells observers.
    """

    def __init__(
        self,
        *,
        probe: Probe,
        logged_in: Callable[[], list[str]],
        refresh: Callable[[str], Awaitable[object]],
        announce: Callable[[str], None],
        after_resync: Callable[[], Awaitable[None]],
        service_changed: Callable[[bool, str], None],
        spawn: Spawn,
        connect_timeout: float,
        keepalive: float,
        handshake_timeout: float,
        max_parallel: int,
        where: str,
    ) -> None:
        self._probe = probe
        self._logged_in = logged_in
        self._refresh = refresh
        self._announce = announce
        self._after_resync = after_resync
        self._service_changed = service_changed
        self._spawn = spawn
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.handshake_timeout = handshake_timeout
        self.max_parallel = max_parallel
        self.where = where
        self.in_service = False
        """The connector last said IN_SERVICE (and no Beat went unanswered since)."""
        self.link_up = False
        """The transport's link is up."""
        self.closed = False
        self._saw_out_of_service = False
        self._service_up = asyncio.Event()
        self._service_down = asyncio.Event()
        self._service_down.set()
        self._link_event = asyncio.Event()
        self._resync_task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """Commands may be sent: the link is up and the connector IN_SERVICE."""
        return self.link_up and self.in_service

    async def wait_in_service(self) -> None:
        """Return once ready; ConnectionLost if the supervisor is closed meanwhile."""
        while not self.ready:
            if self.closed:
                raise ConnectionLost("client is closed")
            await self._service_up.wait()
            if not self.link_up and not self.closed:
                await self._link_event.wait()

    def close(self) -> None:
        """Stop: every waiter wakes, sees ``closed`` and gives up."""
        self.closed = True
        self.link_up = False
        self.in_service = False
        self._service_up.set()
        self._link_event.set()

    # -- handshake and keep-alive -------------------------------------------------------------

    def link_opened(self) -> None:
        """The first subscription is in place: the handshake may start."""
        self.link_up = True
        self._link_event.set()

    async def handshake(self) -> None:
        """Hello every ``connect_timeout`` until IN_SERVICE, for ``handshake_timeout`` overall."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.handshake_timeout
        self._saw_out_of_service = False
        while not self.in_service:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            step = min(self.connect_timeout, remaining)
            await self._probe("Hello", step)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._service_up.wait(), step)
        if self.in_service:
            return
        if self._saw_out_of_service:
            raise ServiceUnavailable(
                f"connector at {self.where} stayed OUT_OF_SERVICE for {self.handshake_timeout:g} s"
            )
        raise CommandTimeout(
            f"no answer to Hello from the connector at {self.where} within "
            f"{self.handshake_timeout:g} s (is it running and consuming that queue?)"
        )

    async def run(self) -> None:
        """Beat every ``keepalive`` while in service; Hello every ``connect_timeout`` when not."""
        while not self.closed:
            if not self.link_up:
                # close() sets the event with the link down: a set event never suspends, so
                # without the closed check above this loop would spin and never see its cancel.
                await self._link_event.wait()
                continue
            try:
                if self.in_service:
                    await self._keepalive_step()
                else:
                    await self._probe("Hello", self.connect_timeout)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._service_up.wait(), self.connect_timeout)
            except ConnectorError as exc:
                # A lost link is waited out above; anything else must not spin: pause a step.
                if self.link_up:
                    log.warning("keep-alive: %s", exc)
                    await asyncio.sleep(self.connect_timeout)

    async def _keepalive_step(self) -> None:
        try:
            await asyncio.wait_for(self._service_down.wait(), self.keepalive)
            return  # went out of service: the caller switches to Hello
        except TimeoutError:
            pass
        answer = await self._probe("Beat", self.connect_timeout)
        try:
            await asyncio.shield(answer)
        except CommandTimeout:
            log.warning(
                "no answer to Beat within %g s: treating the connector as out of service",
                self.connect_timeout,
            )
            self._set_service(False, "Beat unanswered")
        except ConnectionLost:
            pass

    # -- what the connector and the transport report ------------------------------------------

    def on_status(self, event: SystemStatus) -> None:
        """``System#IN_SERVICE`` / ``OUT_OF_SERVICE`` arrived (an answer or unsolicited)."""
        if not event.in_service:
            self._saw_out_of_service = True
        self._set_service(event.in_service, f"System#{event.status}")

    def _set_service(self, up: bool, why: str) -> None:
        if up == self.in_service:
            return
        self.in_service = up
        if up:
            self._service_down.clear()
            self._service_up.set()
            log.info("connector IN_SERVICE (%s)", self.where)
            if self.link_up and self._resync_task is None and self._logged_in():
                # Back after an outage on a link that never dropped: the connector (or CUCM
                # behind it) may have restarted and forgotten agents, so re-read them too.
                self.start_resync("connector back IN_SERVICE")
        else:
            self._service_up.clear()
            self._service_down.set()
            log.warning("connector out of service at %s: %s", self.where, why)
        self._service_changed(up, why)

    def link_lost(self) -> None:
        """The transport's link dropped: out of service until Hello is answered again."""
        self.link_up = False
        self._link_event.clear()
        self._set_service(False, "link lost; Hello again once it is back")

    def link_restored(self, reason: str) -> None:
        """The transport reconnected: Hello (the keep-alive loop), then resync."""
        if self.closed:
            return
        self.link_up = True
        self._link_event.set()
        self.start_resync(reason)

    # -- resync -------------------------------------------------------------------------------

    def start_resync(self, reason: str) -> None:
        """Tell every stream events may be missed, then re-read logged-in agents once ready."""
        self._announce(reason)
        if self._resync_task is not None:
            self._resync_task.cancel()  # a newer restore supersedes a resync still waiting
        task = self._resync_task = self._spawn(self._resync(), "resync")
        task.add_done_callback(self._resync_done)

    def _resync_done(self, task: asyncio.Task[None]) -> None:
        if self._resync_task is task:
            self._resync_task = None

    async def _resync(self) -> None:
        await self._service_up.wait()
        agents = self._logged_in()
        pending = iter(agents)

        async def worker() -> None:
            for extension in pending:
                try:
                    await self._refresh(extension)
                except ConnectorError as exc:
                    log.warning("resync GetState#%s failed: %s", extension, exc)

        workers = min(len(agents), self.max_parallel)
        await asyncio.gather(*(worker() for _ in range(workers)))
        log.info("resynced %d agent(s)", len(agents))
        await self._after_resync()
