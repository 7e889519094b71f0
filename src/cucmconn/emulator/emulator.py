"""``cucmconn.Emulator``: a virtual CUCM behind the connector's real wire protocol.

No public CUCM or connector emulator exists, so teams building on the connector have nothing
to test against without a Cisco lab.  This class wires the protocol front (``front.py``) to the
call model (``model.py``) on any transport URL, and adds what a test or a load run drives from
outside: customers calling in, CUCM going down and up, a connector restart, counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import msgspec

from ..errors import CommandError
from ..transport import Transport, open_transport, split_by_default
from ..transport import queue as queue_destination
from .checks import ScenarioChecks
from .directory import DEFAULT_EXTENSIONS, Directory
from .front import Faults, Front
from .model import CucmModel
from .scenario import CommandRecord, Fault, Scenario, Tap
from .senders import SenderPolicy

__all__ = ["Emulator", "EmulatorStats"]

ABANDON_SWEEP_SECONDS = 0.5


class EmulatorStats(msgspec.Struct, frozen=True, gc=False):
    """A snapshot of what the emulator did and holds."""

    in_service: bool
    commands_received: int
    commands_executed: int
    commands_expired: int
    commands_malformed: int
    refused_out_of_service: int
    commands_lost_in_restart: int
    errors_sent: int
    events_sent: int
    events_dropped: int
    events_duplicated: int
    events_reordered: int
    unroutable: int
    unauthorised: int
    send_failures: int
    internal_errors: int
    backlog: int
    shed: int
    shed_unanswered: int
    restarts: int
    agents_logged_in: int
    calls_in_progress: int
    known_clients: int
    inbound_placed: int
    inbound_no_agent: int
    inbound_abandoned: int
    refused_sender: int = 0
    """Commands refused: their sender did not own the reply destination (``require_sender``)."""
    links_lost: int = 0
    """Times the link to the broker dropped."""
    reconnects: int = 0
    """Times it was re-established (on a failover URL, possibly on another broker)."""
    commands_by_name: dict[str, int] = msgspec.field(default_factory=dict)
    """``commands_executed`` by canonical command name."""
    errors_by_code: dict[str, int] = msgspec.field(default_factory=dict)
    """``errors_sent`` by the ``#Error#`` code sent."""
    licenses: int | None = None
    """The licence count that caps concurrent log-ins (None: no cap); ``agents_logged_in`` of
    them are in use."""


class Emulator(ScenarioChecks):
    """A connector emulator consuming ``queue`` on ``url``; use with ``async with``.

    ``extensions`` is the CUCM directory (``"1000-1999"``, ``"1000-1099,2000"``); ``licenses``
    caps concurrent logins (None: unlimited).  ``event_format`` is ``"default"`` (``#``) or
    ``"json"``.  ``latency``, ``drop_rate``, ``duplicate_rate``, ``reorder_rate`` and ``seed``
    inject faults.  ``clock`` (epoch seconds) fixes the model's event times for reproducible
    tests; TTLs and latency always use the wall clock.  ``transport`` replaces ``url`` with a
    transport built by the caller (it is closed on stop); ``transport_options`` go to
    ``open_transport``.  ``max_backlog`` bounds commands waiting to run; past it they are
    answered PLEASE_RETRY.  ``require_sender`` refuses commands whose authenticated sender
    (``JMSXUserID``) does not own the destination they would be answered on; ``owners`` (user
    -> ActiveMQ topic patterns) replaces the default ownership rule (see ``senders.py``).

    ``history`` > 0 turns on the scenario-control API for tests (``commands``, ``events``,
    ``wait_for``, ``fail_next`` and the other one-shot faults): the last ``history`` commands
    and events are kept.  Off (0) by default, so a load run pays nothing for it.  ``aliases``
    shows correlation ids and client destinations in that history as ``c1``, ``client-1`` ...
    (first appearance order), for snapshot-style assertions.  ``dial_out`` lets agents call
    numbers outside the directory (customers): the call rings until ``answer`` or ``hangup``.
    """

    def __init__(
        self,
        url: str = "memory://",
        *,
        queue: str = "Connector1",
        extensions: str = DEFAULT_EXTENSIONS,
        licenses: int | None = None,
        event_format: str = "default",
        latency: float = 0.0,
        drop_rate: float = 0.0,
        duplicate_rate: float = 0.0,
        reorder_rate: float = 0.0,
        seed: int | None = None,
        clock: Callable[[], float] | None = None,
        max_backlog: int = 10_000,
        transport: Transport | None = None,
        history: int = 0,
        aliases: bool = False,
        dial_out: bool = False,
        require_sender: bool = False,
        owners: Mapping[str, Sequence[str]] | None = None,
        **transport_options: Any,
    ) -> None:
        if history < 0:
            raise ValueError(f"history must be >= 0, not {history!r}")
        if owners is not None and not require_sender:
            raise ValueError("owners only applies with require_sender=True")
        self._directory = Directory(extensions or DEFAULT_EXTENSIONS, licenses)
        self._clock = clock or time.time
        self._url = url
        self._transport = transport
        self._transport_options = transport_options
        self._faults = Faults(latency, drop_rate, duplicate_rate, reorder_rate, seed)
        self._front_options: dict[str, Any] = {
            "queue_name": queue,
            "event_format": event_format,
            "max_backlog": max_backlog,
            "senders": SenderPolicy(owners) if require_sender else None,
        }
        if event_format not in ("default", "json"):
            raise ValueError(f"event_format must be 'default' or 'json', not {event_format!r}")
        self._dial_out = dial_out
        self._model = CucmModel(self._directory, now=self._clock, dial_out=dial_out)
        self._queue = queue_destination(queue)
        self._scenario = (
            Scenario(history=history, event_format=event_format, clock=self._clock, aliases=aliases)
            if history
            else None
        )
        self._front: Front | None = None
        self._traffic: asyncio.Task[None] | None = None
        self._inbound = {"placed": 0, "no_agent": 0, "abandoned": 0}

    def __repr__(self) -> str:
        where = self._front.transport.display_url if self._front else "not started"
        return f"Emulator({where!r}, directory={self._directory!r}, model={self._model!r})"

    @property
    def transport(self) -> Transport | None:
        """The transport it serves on (None before ``start``): on native STOMP a
        :class:`~cucmconn.transport.split.SplitTransport` unless ``split_links`` was refused."""
        return self._front.transport if self._front is not None else None

    @property
    def model(self) -> CucmModel:
        """The call model (read it in tests; drive it through commands)."""
        return self._model

    @property
    def directory(self) -> Directory:
        """The emulated CUCM's extensions and licence count."""
        return self._directory

    @property
    def in_service(self) -> bool:
        """True unless CUCM was taken down with :meth:`set_in_service`."""
        return self._model.in_service

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect and start consuming the command queue."""
        if self._front is not None:
            return
        transport = self._transport or open_transport(
            self._url, **split_by_default(self._url, self._transport_options)
        )
        if self._scenario is not None:
            transport = Tap(transport, self._scenario, self._queue)
        # The front keeps wall-clock time: TTLs are absolute epoch ms set by real clients.
        front = Front(transport, self._model, faults=self._faults, **self._front_options)
        await front.start()
        self._front = front

    async def stop(self) -> None:
        """Stop the traffic generator, stop consuming and disconnect (idempotent)."""
        await self.stop_inbound_traffic()
        front, self._front = self._front, None
        if front is not None:
            await front.stop()

    def _started(self) -> Front:
        if self._front is None:
            raise RuntimeError("the emulator is not started (use 'async with Emulator(...)')")
        return self._front

    # -- driving it from outside -------------------------------------------------------------

    async def place_call(self, caller: str, callee: str) -> str:
        """A customer (or an extension) calls agent ``callee``; returns the connection id.

        Returns once the ringing events are on the wire.  Raises CommandError when the call
        cannot ring (INVALID_PARTY: not logged in or busy; WRONG_EXTENSION; OUT_OF_SERVICE).
        """
        front = self._started()
        cid, outputs = self._model.place_call(caller, callee)
        await front.submit(outputs)
        return cid

    async def answer(self, connection_id: str) -> None:
        """The party ``connection_id`` rings picks up: an agent at its phone (no command
        involved), or the outside number an agent dialled (``dial_out``).

        Clients see the same events as after AnswerCall, uncorrelated.  Raises CommandError
        CF_INVALID_OBJECT_STATE when the call is gone or no longer ringing.
        """
        front = self._started()
        await front.submit(self._model.answer(connection_id))

    async def hangup(self, connection_id: str, party: str | None = None) -> None:
        """``party`` (default: the customer) hangs up ``connection_id``; no-op if it is gone."""
        await self._started().submit(self._model.hangup(connection_id, party))

    def set_in_service(self, up: bool) -> asyncio.Future[None]:
        """CUCM goes down (False) or comes back (True); await the result to know it was sent."""
        return self._started().submit(self._model.set_in_service(bool(up)))

    def restart(self) -> None:
        """The connector restarts: agents, calls and known clients are forgotten.

        Commands received but not executed are lost (counted); connection ids keep counting
        up so a stale id from before the restart never names a new call.
        """
        first = self._model.next_connection_id()
        self._model = CucmModel(
            self._directory, now=self._clock, first_connection_id=first, dial_out=self._dial_out
        )
        if self._front is not None:
            self._front.restart(self._model)

    async def drain(self) -> None:
        """Wait until every command received so far has been answered."""
        await self._started().drain()

    # -- scenario control (history > 0) -----------------------------------------------------

    def _scenario_control(self) -> Scenario:
        if self._scenario is None:
            raise RuntimeError("scenario control is off: make the Emulator with history > 0")
        return self._scenario

    async def wait_for(
        self,
        command: str | None = None,
        agent: str | None = None,
        *,
        args: Iterable[str] | None = None,
        within: float = 5.0,
    ) -> CommandRecord:
        """Wait for a command (any spelling of its name) and return its record.

        Returns the first match not returned by an earlier ``wait_for``, even one that arrived
        before this call, once the emulator has answered everything received so far.  Raises
        ScenarioTimeout (an AssertionError) showing the recent commands and events.
        """
        __tracebackhide__ = True  # pytest: show the test's line, not ours
        control = self._scenario_control()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        record = await control.wait_for(command, agent, args=args, within=within)
        try:
            async with asyncio.timeout_at(deadline):
                await self.drain()
        except TimeoutError:
            pass  # seen but still queued (a delay fault, a slow broker): the record stands
        return record

    def fail_next(
        self,
        command: str | None = None,
        agent: str | None = None,
        *,
        code: str = "CF_INVALID_OBJECT_STATE",
        times: int = 1,
    ) -> Fault:
        """The next matching command is refused ``<agent>#Error#<code>`` without running."""
        return self._scenario_control().arm(Fault("fail", command, agent, code=code, times=times))

    def delay_next(
        self,
        command: str | None = None,
        agent: str | None = None,
        *,
        seconds: float,
        times: int = 1,
    ) -> Fault:
        """The next matching command reaches the connector ``seconds`` late (TTL applies)."""
        return self._scenario_control().arm(
            Fault("delay", command, agent, seconds=seconds, times=times)
        )

    def drop_next_answer(
        self, command: str | None = None, agent: str | None = None, *, times: int = 1
    ) -> Fault:
        """The next matching command runs, but its correlated events are never sent."""
        return self._scenario_control().arm(Fault("drop", command, agent, times=times))

    def answer_next_twice(
        self, command: str | None = None, agent: str | None = None, *, times: int = 1
    ) -> Fault:
        """The next matching command runs and each correlated event is sent twice."""
        return self._scenario_control().arm(Fault("twice", command, agent, times=times))

    @property
    def faults(self) -> tuple[Fault, ...]:
        """Faults armed and not yet spent."""
        return self._scenario_control().faults

    def clear_faults(self) -> None:
        """Disarm every fault not yet fired."""
        self._scenario_control().disarm()

    def clients(self) -> Mapping[str, int]:
        """Commands received per client destination (most recent clients only)."""
        return self._front.clients if self._front else {}

    def stats(self) -> EmulatorStats:
        """A snapshot of what the emulator received, executed, sent and holds."""
        front = self._front
        counters = front.counters if front else None
        model = self._model

        def count(name: str) -> int:
            return int(getattr(counters, name)) if counters is not None else 0

        return EmulatorStats(
            in_service=model.in_service,
            commands_received=count("received"),
            commands_executed=count("executed"),
            commands_expired=count("expired"),
            commands_malformed=count("malformed"),
            refused_out_of_service=count("refused_out_of_service"),
            commands_lost_in_restart=count("lost_in_restart"),
            errors_sent=count("errors_sent"),
            events_sent=count("events_sent"),
            events_dropped=count("events_dropped"),
            events_duplicated=count("events_duplicated"),
            events_reordered=count("events_reordered"),
            unroutable=count("unroutable"),
            unauthorised=count("unauthorised"),
            send_failures=count("send_failures"),
            internal_errors=count("internal_errors"),
            backlog=front.backlog if front else 0,
            shed=count("shed"),
            shed_unanswered=count("shed_unanswered"),
            restarts=count("restarts"),
            agents_logged_in=len(model.agents),
            calls_in_progress=len(model.calls),
            known_clients=len(model.known_clients),
            inbound_placed=self._inbound["placed"],
            inbound_no_agent=self._inbound["no_agent"],
            inbound_abandoned=self._inbound["abandoned"],
            refused_sender=count("refused_sender"),
            links_lost=count("links_lost"),
            reconnects=count("reconnects"),
            commands_by_name=dict(counters.executed_by_command) if counters is not None else {},
            errors_by_code=dict(counters.errors_by_code) if counters is not None else {},
            licenses=self._directory.licenses,
        )

    # -- inbound traffic ---------------------------------------------------------------------

    def start_inbound_traffic(
        self,
        rate_per_s: float,
        *,
        ring_timeout: float = 30.0,
        caller_prefix: str = "555",
        seed: int | None = None,
    ) -> None:
        """Customers call free READY agents at ``rate_per_s``; unanswered calls are abandoned
        after ``ring_timeout`` seconds.  With no free agent, the attempt is counted and skipped.
        """
        if not rate_per_s > 0:
            raise ValueError(f"rate_per_s must be > 0, not {rate_per_s!r}")
        if not caller_prefix.isdigit():
            raise ValueError("caller_prefix must be digits")
        self._started()
        if self._traffic is not None:
            self._traffic.cancel()
        self._traffic = asyncio.get_running_loop().create_task(
            self._generate(rate_per_s, ring_timeout, caller_prefix, random.Random(seed)),
            name="cucmconn-emulator-inbound",
        )

    async def stop_inbound_traffic(self) -> None:
        """Stop the customers started by :meth:`start_inbound_traffic` (calls up stay up)."""
        task, self._traffic = self._traffic, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _generate(
        self, rate: float, ring_timeout: float, prefix: str, rng: random.Random
    ) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / rate
        next_at = loop.time()
        next_sweep = next_at + ABANDON_SWEEP_SECONDS
        while True:
            next_at += interval
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:  # fell far behind (a stalled loop): do not burst to catch up
                next_at = loop.time()
            if loop.time() >= next_sweep:
                next_sweep = loop.time() + ABANDON_SWEEP_SECONDS
                await self._abandon(ring_timeout)
            await self._one_inbound(prefix, rng)

    async def _abandon(self, ring_timeout: float) -> None:
        abandoned, outputs = self._model.abandon_ringing(ring_timeout)
        self._inbound["abandoned"] += abandoned
        await self._started().submit(outputs)

    async def _one_inbound(self, prefix: str, rng: random.Random) -> None:
        if not self._model.in_service:
            return
        agent = self._model.pick_free_agent(rng)
        if agent is None:
            self._inbound["no_agent"] += 1
            return
        caller = f"{prefix}{rng.randrange(10_000_000):07d}"
        try:
            _, outputs = self._model.place_call(caller, agent)
        except CommandError:  # the free pool said otherwise; count it rather than stop
            self._inbound["no_agent"] += 1
            return
        self._inbound["placed"] += 1
        self._started().submit(outputs)
