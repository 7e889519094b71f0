"""Session supervision: handshake, keep-alive, outages, broker failover and the resync after them.

The connector's own session rules (developer guide, "Connect"): Hello until IN_SERVICE, Beat
while in service, OUT_OF_SERVICE at any time, Hello again until it is back.  On top of them:

* **Status is confirmed, not taken on trust.**  An answer to one of our commands (matched by
  correlation id) sets the service state.  An unsolicited ``System#...`` that contradicts it
  only makes us ask: one Hello (at most one in flight, spaced by ``CONFIRM_SPACING``), whose
  answer decides.  The reply topic usually has no write ACL, so anyone can publish a forged
  ``System#OUT_OF_SERVICE`` there (issue 11, case 5); asked this way, it changes nothing.
* **A throttled link is not a dead connector.**  A Hello or Beat the broker would not take
  (producer flow control) or that went unanswered while the link was blocked says nothing
  about the connector: the state stays as it is.  Nor does one written but never taken: a
  probe is judged unanswered only when the broker confirmed it had it (``broker_took``: a
  receipt behind it, ``Transport.flush``), since a Beat can sit in the kernel's buffers, or a
  broker that stopped reading, without our buffer ever filling.
* **Connector-aware failover.**  When no connector answers Hello on the broker we reached, the
  transport is asked to move to the next broker of its failover list, with a growing pause
  between moves; at start and whenever the connector vanishes.
* **One resync at a time.**  After a reconnect, an outage or a detected connector restart every
  logged-in agent is re-read with GetState.  Requests coalesce into one pending pass; passes
  start at most once per ``resync_interval`` and send at most ``resync_rate`` GetState/s.

The supervisor owns the link and service state; it acts on the client only through the
callables it was given, so it never touches the client's internals and the client never
touches its.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal

from ..codec.events import Event, SystemStatus
from ..errors import CommandTimeout, ConnectionLost, ConnectorError, ServiceUnavailable
from .stats import StatsCounters

__all__ = ["CONFIRM_SPACING", "RESTART_BEAT", "Supervisor"]

log = logging.getLogger("cucmconn.client")

Probe = Callable[[str, float], Awaitable["asyncio.Future[Event]"]]
Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]
ProbeOutcome = Literal["answered", "unanswered", "throttled", "lost"]

CONFIRM_SPACING = 0.1
"""Seconds between two Hellos sent to confirm unsolicited status messages (a flood of forged
ones costs at most 10 Hellos a second)."""

RESTART_BEAT = 1.0
"""Beat period (seconds, when ``keepalive`` is longer) while no advisory announces connector
restarts: a Beat's answer comes from the new connector's broker connection, so a restart faster
than ``keepalive`` is still seen within about this long (issue 11: within 2 s)."""

MAX_SWITCH_PAUSE = 10.0
"""Longest pause between two moves to another broker while no connector answers anywhere."""


class Supervisor:
    """Keeps one client's session with the connector alive and its view of it current.

    ``probe(name, ttl)`` writes a Hello or Beat and returns the future its answer resolves
    (CommandTimeout if the link would not take it); ``broker_took(ttl)`` says whether the broker
    confirmed, within ``ttl``, that it has everything written so far; ``logged_in()`` lists the
    extensions believed logged in and ``refresh(ext)`` re-reads one; ``announce(reason)`` puts
    an ``EventsMayBeMissed`` notice in every stream; ``after_resync()`` runs the application's
    callback; ``service_changed(up, why)`` tells observers; ``flow_control_held()`` /
    ``write_blocked()`` say whether the broker throttles our link; ``switch_broker(reason)``
    moves the transport to its next broker (False when it has one); ``can_confirm()`` says
    whether an answer to our Hello can be recognised (else unsolicited statuses are trusted).
    """

    def __init__(
        self,
        *,
        probe: Probe,
        broker_took: Callable[[float], Awaitable[bool]],
        logged_in: Callable[[], list[str]],
        refresh: Callable[[str], Awaitable[object]],
        announce: Callable[[str], None],
        after_resync: Callable[[], Awaitable[None]],
        service_changed: Callable[[bool, str], None],
        flow_control_held: Callable[[], float],
        write_blocked: Callable[[], bool],
        switch_broker: Callable[[str], Awaitable[bool]],
        can_confirm: Callable[[], bool],
        spawn: Spawn,
        stats: StatsCounters,
        connect_timeout: float,
        keepalive: float,
        handshake_timeout: float,
        max_parallel: int,
        resync_interval: float,
        resync_rate: float,
        where: str,
    ) -> None:
        self._probe = probe
        self._broker_took = broker_took
        self._logged_in = logged_in
        self._refresh = refresh
        self._announce = announce
        self._after_resync = after_resync
        self._service_changed = service_changed
        self._flow_control_held = flow_control_held
        self._write_blocked = write_blocked
        self._switch_broker = switch_broker
        self._can_confirm = can_confirm
        self._spawn = spawn
        self._stats = stats
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.restart_beat: float | None = None
        """Beat at least this often (None: every ``keepalive``); set by the client while it
        has no advisories to announce connector restarts."""
        self.handshake_timeout = handshake_timeout
        self.max_parallel = max_parallel
        self.resync_interval = resync_interval
        self.resync_rate = resync_rate
        self.where = where
        self.in_service = False
        """The connector last said IN_SERVICE (and no Beat went unanswered since)."""
        self.link_up = False
        """The transport's link is up."""
        self.closed = False
        self.ever_in_service = False
        """The handshake succeeded once (signals seen before it only seed what is known)."""
        self._saw_out_of_service = False
        self._service_up = asyncio.Event()
        self._service_down = asyncio.Event()
        self._service_down.set()
        self._link_event = asyncio.Event()
        self._confirm_task: asyncio.Task[None] | None = None
        self._last_confirm = float("-inf")
        self._switches = 0
        self._resync_task: asyncio.Task[None] | None = None
        self._resync_wanted = False
        self._last_resync = float("-inf")

    @property
    def ready(self) -> bool:
        """Commands may be sent: the link is up and the connector IN_SERVICE."""
        return self.link_up and self.in_service

    @property
    def resync_pending(self) -> bool:
        """A resync is running or waiting to run."""
        return self._resync_task is not None

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

    # -- Hello and Beat -----------------------------------------------------------------------

    async def _ask(self, name: Literal["Hello", "Beat"], ttl: float) -> ProbeOutcome:
        """One Hello or Beat, awaited: answered (either status); unanswered (the broker took
        it, nobody answered); throttled (the broker did not take it in time, which says nothing
        about the connector); or lost with the link."""
        held_before = self._flow_control_held()
        try:
            answer = await self._probe(name, ttl)
        except CommandTimeout:
            return "throttled"  # the broker would not take it before its deadline
        except ConnectorError:
            return "lost"
        taken = asyncio.ensure_future(self._broker_took(ttl))
        try:
            await asyncio.shield(answer)
        except CommandTimeout:
            if self._write_blocked() or self._flow_control_held() > held_before:
                return "throttled"
            if not (taken.done() and taken.result()):
                return "throttled"  # written, but the broker never said it had it
            return "unanswered"
        except ConnectorError:
            return "lost"
        finally:
            taken.cancel()
        return "answered"

    async def _switch(self, reason: str) -> None:
        """No connector answers here: ask the transport for its next broker (with a pause
        that grows with each move that found no connector either)."""
        pause = min(MAX_SWITCH_PAUSE, 0.5 * (2**self._switches - 1))
        if pause:
            await asyncio.sleep(pause)
        if self.in_service or self.closed:
            return
        if await self._switch_broker(reason):
            self._switches += 1
            self._stats.broker_switches += 1
            log.warning("%s: %s; trying the next broker", self.where, reason)

    def link_opened(self) -> None:
        """The first subscription is in place: the handshake may start."""
        self.link_up = True
        self._link_event.set()

    async def handshake(self) -> None:
        """Hello every ``connect_timeout`` until IN_SERVICE, for ``handshake_timeout`` overall;
        when nobody answers, the next broker of a failover list is tried."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.handshake_timeout
        self._saw_out_of_service = False
        while not self.in_service:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            if not self.link_up:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._link_event.wait(), remaining)
                continue
            await self._hello_step(min(self.connect_timeout, remaining))
        if self.in_service:
            self.ever_in_service = True
            self._switches = 0
            return
        if self._saw_out_of_service:
            raise ServiceUnavailable(
                f"connector at {self.where} stayed OUT_OF_SERVICE for {self.handshake_timeout:g} s"
            )
        raise CommandTimeout(
            f"no answer to Hello from the connector at {self.where} within "
            f"{self.handshake_timeout:g} s (is it running and consuming that queue?)"
        )

    async def _hello_step(self, step: float) -> None:
        """One Hello period: send, wait for the answer or the period's end; move broker when
        nobody answered at all."""
        started = asyncio.get_running_loop().time()
        outcome = await self._ask("Hello", step)
        if self.in_service:
            return
        if outcome == "unanswered":
            await self._switch(f"no connector answered Hello within {step:g} s")
            return
        rest = started + step - asyncio.get_running_loop().time()
        if rest > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._service_up.wait(), rest)

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
                    self._switches = 0
                    await self._keepalive_step()
                else:
                    await self._hello_step(self.connect_timeout)
            except ConnectorError as exc:
                # A lost link is waited out above; anything else must not spin: pause a step.
                if self.link_up:
                    log.warning("keep-alive: %s", exc)
                    await asyncio.sleep(self.connect_timeout)

    async def _keepalive_step(self) -> None:
        period = self.keepalive
        if self.restart_beat is not None:
            period = min(period, self.restart_beat)
        try:
            await asyncio.wait_for(self._service_down.wait(), period)
            return  # went out of service: the caller switches to Hello
        except TimeoutError:
            pass
        outcome = await self._ask("Beat", self.connect_timeout)
        if outcome == "throttled":
            # The broker did not take our Beat in time: it throttles the link.  That says
            # nothing about the connector, so the service state stays as it is.
            log.info(
                "Beat not taken by the broker within %g s: link throttled, not an outage",
                self.connect_timeout,
            )
        elif outcome == "unanswered":
            log.warning(
                "no answer to Beat within %g s: treating the connector as out of service",
                self.connect_timeout,
            )
            self._set_service(False, "Beat unanswered")

    # -- what the connector and the transport report ------------------------------------------

    def on_status(self, event: SystemStatus, answered: bool) -> None:
        """``System#IN_SERVICE`` / ``OUT_OF_SERVICE`` arrived; ``answered``: it answered one of
        our commands (so it is the connector's), else it was unsolicited."""
        if answered or not self._can_confirm():
            if not event.in_service:
                self._saw_out_of_service = True
            self._set_service(event.in_service, f"System#{event.status}")
        elif event.in_service != self.in_service:
            self.confirm(f"an unsolicited System#{event.status}")

    def confirm(self, reason: str) -> None:
        """Something suggests the service state changed: ask the connector (one Hello)."""
        if self._confirm_task is not None or self.closed or not self.link_up:
            return
        task = self._confirm_task = self._spawn(self._confirm(reason), "confirm")
        task.add_done_callback(self._confirm_done)

    def _confirm_done(self, task: asyncio.Task[None]) -> None:
        if self._confirm_task is task:
            self._confirm_task = None

    async def _confirm(self, reason: str) -> None:
        loop = asyncio.get_running_loop()
        wait = self._last_confirm + CONFIRM_SPACING - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_confirm = loop.time()
        if await self._ask("Hello", self.connect_timeout) == "unanswered":
            self._set_service(False, f"no answer to Hello after {reason}")

    def _set_service(self, up: bool, why: str) -> None:
        if up == self.in_service:
            return
        self.in_service = up
        if up:
            self._service_down.clear()
            self._service_up.set()
            log.info("connector IN_SERVICE (%s)", self.where)
            if self.link_up and self._logged_in():
                # Back after an outage on a link that never dropped: the connector (or CUCM
                # behind it) may have restarted and forgotten agents, so re-read them too.
                self.request_resync("connector back IN_SERVICE")
        else:
            self._service_up.clear()
            self._service_down.set()
            log.warning("connector out of service at %s: %s", self.where, why)
        self._service_changed(up, why)

    def connector_restarted(self, reason: str) -> None:
        """A restart of the connector was detected: it forgot its agents; re-read them all."""
        self._stats.connector_restarts += 1
        log.warning("connector at %s restarted (%s): re-reading its agents", self.where, reason)
        self.request_resync(f"connector restarted ({reason})")

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
        self.request_resync(reason)

    # -- resync -------------------------------------------------------------------------------

    def request_resync(self, reason: str) -> None:
        """Re-read every logged-in agent once ready; requests made meanwhile coalesce.

        Streams get one ``EventsMayBeMissed`` per pass that will run, not one per request.
        """
        if self.closed:
            return
        if not self._resync_wanted:
            self._announce(reason)
            self._resync_wanted = True
        if self._resync_task is None:
            task = self._resync_task = self._spawn(self._resync_loop(), "resync")
            task.add_done_callback(self._resync_done)

    def _resync_done(self, task: asyncio.Task[None]) -> None:
        if self._resync_task is task:
            self._resync_task = None

    async def _resync_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self._resync_wanted and not self.closed:
            try:
                await self.wait_in_service()
            except ConnectionLost:
                return  # closed
            wait = self._last_resync + self.resync_interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue  # in service again after the pause?  checked at the loop's top
            self._resync_wanted = False
            self._last_resync = loop.time()
            await self._resync_pass()

    async def _resync_pass(self) -> None:
        loop = asyncio.get_running_loop()
        self._stats.resyncs += 1
        agents = self._logged_in()
        pending = iter(enumerate(agents))
        started = loop.time()
        failed = 0

        async def worker() -> None:
            nonlocal failed
            for index, extension in pending:
                due = started + index / self.resync_rate
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                try:
                    await self._refresh(extension)
                except ConnectorError as exc:
                    failed += 1
                    log.debug("resync GetState#%s failed: %s", extension, exc)

        workers = min(len(agents), self.max_parallel)
        await asyncio.gather(*(worker() for _ in range(workers)))
        if failed:
            log.warning("resync: %d of %d GetState failed", failed, len(agents))
        log.info("resynced %d agent(s)", len(agents))
        await self._after_resync()
