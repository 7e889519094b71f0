"""The load driver: ``cucmconn load`` and ``demo``, ``scripts/soak.py`` and the reliability tests.

One driver, three scenarios, all counted in one :class:`~cucmconn.cli.tally.Tally`:

- ``probe`` (the soak's): every agent sends GetState, one command in flight per agent as
  Finesse does; with ``calls`` each even-indexed agent calls its odd partner every fourth turn
  (MakeCall + ReleaseCall).  The partner never calls back, so no two agents call each other at
  once (that would be a legitimate INVALID_PARTY).
- ``outbound`` (any connector): agents work in pairs (A, B); A calls B, B answers, A holds,
  retrieves and releases.
- ``inbound`` (needs the emulator): a customer calls A; A answers, holds, retrieves, then
  releases, blind-transfers to B, or consults B and transfers or conferences.

Pairs keep two workers from ever fighting over one phone, so every error the run reports is
the connector's, not a race the generator made.  One :class:`Pacer` holds the total rate; a
worker that falls behind skips ahead instead of bursting, so a stall never turns into a
thundering herd afterwards.

When a call fails because the link dropped or the connector went out of service, the worker
waits for the client to be back in service, re-reads the pair's agents (GetState reports each
call they still have) and releases those calls: a call left up at the connector would make every
later MakeCall of the pair fail with INVALID_PARTY.

Why not a generic load tool (locust, k6): docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from ..errors import ConnectionLost, ConnectorError, ServiceUnavailable, TransportError
from .tally import Tally, counted

__all__ = [
    "DEFAULT_MIX",
    "ENDINGS",
    "LoadDriver",
    "Pacer",
    "Pair",
    "Scenario",
    "call_ids",
    "connection_id",
    "make_pairs",
]

T = TypeVar("T")

Scenario = Literal["probe", "outbound", "inbound"]
ENDINGS = ("release", "blind", "transfer", "conference")
"""How an inbound call ends, in the order of the default mix (weights 4:1:2:1)."""
DEFAULT_MIX: Mapping[str, int] = {"release": 4, "blind": 1, "transfer": 2, "conference": 1}
_RING_POLL = 0.005
_OUTAGE_PAUSE = 0.25
"""After an outage error a worker pauses at least this long: such commands fail without
awaiting anything, so without a pause a worker would starve the loop."""
_SETTLE = 0.2
"""After a GetState resolves, the DialogStates that follow it (one per call) arrive in the
next messages; a worker re-reading a pair waits this long for them before releasing."""


class Agent(Protocol):
    """The part of the client's agent session the scenarios use."""

    @property
    def extension(self) -> str: ...
    @property
    def calls(self) -> Mapping[str, Any]: ...
    @property
    def logged_in(self) -> bool: ...

    async def login(self) -> Any: ...
    async def logout(self) -> Any: ...
    async def get_state(self) -> Any: ...
    async def make_call(self, other: str) -> Any: ...
    async def answer(self, connection_id: str) -> Any: ...
    async def release(self, connection_id: str) -> Any: ...
    async def hold(self, connection_id: str) -> Any: ...
    async def retrieve(self, connection_id: str) -> Any: ...
    async def blind_transfer(self, connection_id: str, *, other: str) -> Any: ...
    async def consult(self, connection_id: str, *, other: str) -> Any: ...
    async def transfer(self, connection_id: str, *, other: str | None = None) -> Any: ...
    async def conference(self, connection_id: str, *, other: str | None = None) -> Any: ...


class Connection(Protocol):
    """The part of :class:`~cucmconn.Client` the driver uses."""

    @property
    def in_service(self) -> bool: ...

    def agent(self, extension: str) -> Any: ...
    async def wait_in_service(self) -> None: ...


PlaceCall = Callable[[str, str], Awaitable[str]]


def connection_id(result: object) -> str:
    """The connection id in a command's answer, whatever the client returned (event or id)."""
    if isinstance(result, str):
        return result
    cid = getattr(result, "connection_id", None)
    if not cid:
        raise ConnectorError(f"answer carries no connection id: {type(result).__name__}")
    return str(cid)


def call_ids(agent: object) -> list[str]:
    """Connection ids of the calls the client believes the agent has (for clean-up)."""
    calls = getattr(agent, "calls", None)
    if not calls:
        return []
    if isinstance(calls, Mapping):
        return [str(k) for k in calls]
    ids = (getattr(c, "connection_id", c) for c in calls)
    return [str(i) for i in ids if i]


@dataclass(frozen=True, slots=True)
class Pair:
    """Two agents that work together: A calls (or is called), B is the other party."""

    a: Agent
    b: Agent


def make_pairs(agents: Sequence[Agent]) -> list[Pair]:
    """Neighbours form pairs; an odd agent out stays logged in but idle."""
    return [Pair(agents[i], agents[i + 1]) for i in range(0, len(agents) - 1, 2)]


class Pacer:
    """A global commands-per-second limit shared by every worker (none when rate is 0).

    Slots are handed out one interval apart; a slot is never earlier than now, so after a stall
    the pace resumes instead of bursting to catch up.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    async def wait(self, stop: asyncio.Event | None = None) -> None:
        """Wait for the next slot (returns early when ``stop`` is set)."""
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot <= now:
            return
        if stop is None:
            await asyncio.sleep(slot - now)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), slot - now)


class LoadDriver:
    """Drives a scenario over logged-in agents at a total ``rate`` (0: as fast as answers come).

    ``login_all()``, then ``start()`` ... ``stop()`` (or ``run(duration)``), then
    ``logout_all()``.  Every traffic command lands in ``tally``; log-ins and log-outs get a tally
    of their own, so throughput and latency describe the traffic alone.
    """

    def __init__(
        self,
        client: Connection,
        extensions: Sequence[str],
        rate: float = 0.0,
        *,
        scenario: Scenario = "probe",
        calls: bool = False,
        tally: Tally | None = None,
        think: tuple[float, float] = (0.0, 0.0),
        mix: Mapping[str, int] = DEFAULT_MIX,
        place_call: PlaceCall | None = None,
        ring_timeout: float = 5.0,
        seed: int | None = None,
    ) -> None:
        if not extensions:
            raise ValueError("need at least one agent")
        if rate < 0 or (scenario == "probe" and rate <= 0):
            raise ValueError("need a positive rate (the probe scenario never waits otherwise)")
        if scenario == "inbound" and place_call is None:
            raise ValueError("the inbound scenario needs place_call (the emulator's)")
        unknown = set(mix) - set(ENDINGS)
        if unknown:
            raise ValueError(f"unknown call endings {sorted(unknown)}; known: {ENDINGS}")
        self.client = client
        self.extensions = list(extensions)
        self.rate = rate
        self.scenario = scenario
        self.calls = calls
        self.tally = tally or Tally()
        self.pacer = Pacer(rate)
        self.think = think
        self.ring_timeout = ring_timeout
        self.in_progress = 0
        """Calls in progress (the outbound and inbound scenarios)."""
        self._place_call = place_call
        self._endings = [e for e in ENDINGS if mix.get(e, 0) > 0]
        self._weights = [mix[e] for e in self._endings]
        self._rng = random.Random(seed)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def agents(self) -> list[Agent]:
        """The client's session for each extension, in order."""
        sessions: list[Agent] = [self.client.agent(e) for e in self.extensions]
        return sessions

    # -- sessions ---------------------------------------------------------------------------------

    async def login_all(self, concurrency: int = 256, *, tally: Tally | None = None) -> Tally:
        """Log every agent in, ``concurrency`` at a time; returns the log-ins' own tally."""
        return await self._each(self.agents, "login", concurrency, tally or Tally())

    async def logout_all(self, concurrency: int = 256, *, tally: Tally | None = None) -> Tally:
        """Log out every agent that is logged in; returns the log-outs' own tally."""
        agents = [a for a in self.agents if a.logged_in]
        return await self._each(agents, "logout", concurrency, tally or Tally())

    async def _each(
        self, agents: Iterable[Agent], command: str, concurrency: int, tally: Tally
    ) -> Tally:
        # ``concurrency`` workers draw from one iterator: no task and no semaphore waiter per
        # agent, so 10,000 log-ins cost 256 coroutines, and no release scans a queue of
        # thousands of waiters (asyncio.Semaphore wakes the first waiter not yet done).
        queue = iter(agents)

        async def worker() -> None:
            for agent in queue:
                await counted(tally, getattr(agent, command)())

        tally.start_clock()
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
        tally.stop_clock()
        return tally

    # -- running ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start a worker per agent (probe) or per pair of logged-in agents (calls)."""
        self._stop.clear()
        loop = asyncio.get_running_loop()
        self.tally.start_clock()
        if self.scenario == "probe":
            agents = self.agents
            for index, agent in enumerate(agents):
                partner = agents[index + 1] if index % 2 == 0 and index + 1 < len(agents) else None
                self._tasks.append(loop.create_task(self._probe_worker(agent, partner)))
            return
        cycle = self._outbound if self.scenario == "outbound" else self._inbound_cycle
        for pair in make_pairs([a for a in self.agents if a.logged_in]):
            self._tasks.append(loop.create_task(self._pair_worker(pair, cycle)))

    async def stop(self, grace: float = 30.0) -> None:
        """Stop issuing; wait up to ``grace`` s for the cycles in progress to end (by TTL)."""
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        done, pending = await asyncio.wait(tasks, timeout=grace) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        self.tally.stop_clock()
        if pending:
            await asyncio.wait(pending)
            raise RuntimeError(f"{len(pending)} load worker(s) still busy after {grace:g} s")
        for task in done:
            task.result()

    async def run(
        self, duration: float, *, stop: asyncio.Event | None = None, grace: float = 30.0
    ) -> None:
        """``start()``, run ``duration`` seconds (or until ``stop``), then ``stop(grace)``.

        A cycle in progress at the deadline completes, so the measured phase may run a little
        longer than ``duration``; ``tally.seconds`` is its true length.
        """
        self.start()
        waiters = [asyncio.ensure_future(self._stop.wait())]
        if stop is not None:
            waiters.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waiters, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await self.stop(grace)

    @property
    def stopping(self) -> bool:
        """True once the run was told to stop (no new cycle starts)."""
        return self._stop.is_set()

    async def _cmd(self, command: Awaitable[T]) -> T:
        await self.pacer.wait()  # paced even while the last cycles finish: the rate holds
        return await self.tally.record(command)

    async def pause(self) -> None:
        """The think time between two steps of a call (none when ``think`` is (0, 0))."""
        low, high = self.think
        if high > 0:
            await asyncio.sleep(self._rng.uniform(low, high))

    # -- probe ------------------------------------------------------------------------------------

    async def _probe_worker(self, agent: Agent, partner: Agent | None) -> None:
        turn = 0
        while not self._stop.is_set():
            turn += 1
            if self.calls and partner is not None and turn % 4 == 0:
                dialog = await self._counted(agent.make_call(partner.extension))
                cid = getattr(dialog, "connection_id", None)
                if cid:
                    await self._counted(agent.release(cid))
            else:
                await self._counted(agent.get_state())

    async def _counted(self, command: Awaitable[T]) -> T | None:
        await self.pacer.wait(self._stop)
        if self._stop.is_set():
            close = getattr(command, "close", None)
            if close is not None:  # a coroutine never awaited: close it, send nothing
                close()
            return None
        return await counted(self.tally, command)

    # -- calls ------------------------------------------------------------------------------------

    async def _pair_worker(self, pair: Pair, cycle: Callable[[Pair], Awaitable[None]]) -> None:
        while not self._stop.is_set():
            await cycle(pair)

    async def _call(self, body: Callable[[], Awaitable[None]], *agents: Agent) -> None:
        """One call's bookkeeping: a failure ends the call early and releases what is left."""
        self.tally.calls_started += 1
        self.in_progress += 1
        try:
            await body()
        except ConnectorError as exc:
            self.tally.calls_failed += 1
            if isinstance(exc, ServiceUnavailable | ConnectionLost | TransportError):
                await self._recover(agents)
            else:
                await self._clean_up(agents)
        else:
            self.tally.calls_completed += 1
        finally:
            self.in_progress -= 1

    async def _recover(self, agents: Iterable[Agent]) -> None:
        """After an outage: wait for the service (or the stop), re-read the pair, release."""
        await asyncio.sleep(_OUTAGE_PAUSE)
        if not self.client.in_service:
            service = asyncio.ensure_future(self.client.wait_in_service())
            stop = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait({service, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (service, stop):
                    waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectorError):
                    await service
            if not self.client.in_service:
                return  # stopping: the log-out ends whatever calls are left
        for agent in agents:
            with contextlib.suppress(ConnectorError):
                await self.tally.record(agent.get_state())
        await asyncio.sleep(_SETTLE)
        await self._clean_up(agents)

    async def _clean_up(self, agents: Iterable[Agent]) -> None:
        """Release each call the pair still has, once: a call A and B share ends with A's
        release, and B's own release of it would race B's DROPPED event and be refused."""
        released: set[str] = set()
        for agent in agents:
            for cid in call_ids(agent):
                if cid in released:
                    continue
                released.add(cid)
                with contextlib.suppress(ConnectorError):
                    await self.tally.record(agent.release(cid))

    async def _outbound(self, pair: Pair) -> None:
        """A calls B; B answers; A holds, retrieves and releases (five commands)."""

        async def body() -> None:
            a, b = pair.a, pair.b
            cid = connection_id(await self._cmd(a.make_call(b.extension)))
            await self._cmd(b.answer(cid))
            await self._cmd(a.hold(cid))
            await self._cmd(a.retrieve(cid))
            await self._cmd(a.release(cid))

        await self._call(body, pair.a, pair.b)

    async def _inbound_cycle(self, pair: Pair) -> None:
        ending = self._rng.choices(self._endings, self._weights)[0]
        customer = f"555{self._rng.randrange(10_000):04d}"
        await self._call(lambda: self._inbound(pair, customer, ending), pair.a, pair.b)
        await self.pause()

    async def _inbound(self, pair: Pair, customer: str, ending: str) -> None:
        assert self._place_call is not None  # checked in __init__
        a, b = pair.a, pair.b
        cid = await self._place_call(customer, a.extension)
        await self._ringing(a, cid)
        await self._cmd(a.answer(cid))
        await self.pause()
        await self._cmd(a.hold(cid))
        await self.pause()
        await self._cmd(a.retrieve(cid))
        await self.pause()
        if ending == "release":
            await self._cmd(a.release(cid))
        elif ending == "blind":
            await self._cmd(a.blind_transfer(cid, other=b.extension))
            await self._answer_and_release(b)
        else:
            consult_cid = connection_id(await self._cmd(a.consult(cid, other=b.extension)))
            await self._ringing(b, consult_cid)
            await self._cmd(b.answer(consult_cid))
            await self.pause()
            if ending == "transfer":
                await self._cmd(a.transfer(cid, other=b.extension))
            else:
                await self._cmd(a.conference(cid, other=b.extension))
                await self.pause()
                await self._release_all(a)
            await self.pause()
            await self._release_all(b)

    async def _answer_and_release(self, agent: Agent) -> None:
        cid = await self._wait_for_call(agent)
        await self._cmd(agent.answer(cid))
        await self.pause()
        await self._cmd(agent.release(cid))

    async def _release_all(self, agent: Agent) -> None:
        for cid in call_ids(agent):
            await self._cmd(agent.release(cid))

    async def _ringing(self, agent: Agent, cid: str) -> None:
        """Wait until the client has seen the call at the agent (it rings before it is answered)."""
        deadline = time.monotonic() + self.ring_timeout
        while cid not in call_ids(agent):
            if time.monotonic() > deadline:
                return  # answer anyway: the connector, not the generator, decides if it rang
            await asyncio.sleep(_RING_POLL)

    async def _wait_for_call(self, agent: Agent) -> str:
        deadline = time.monotonic() + self.ring_timeout
        while True:
            ids = call_ids(agent)
            if ids:
                return ids[0]
            if time.monotonic() > deadline:
                raise ConnectorError(f"no call reached {agent.extension} after a transfer")
            await asyncio.sleep(_RING_POLL)
