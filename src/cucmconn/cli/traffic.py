"""The contact-centre traffic scenario that ``demo`` and ``load`` both drive.

Agents work in pairs (A, B) so that no two workers ever fight over one phone: a pair is what a
consult, transfer or conference needs, and pairing keeps the scenario deterministic enough that
every error it reports is the connector's, not a race the generator made.  Two call cycles:

- inbound (needs the emulator): a customer calls A; A answers, holds, retrieves, then either
  releases, blind-transfers to B, or consults B and transfers or conferences;
- outbound (any connector): A calls B, B answers, A holds, retrieves and releases.

Hand-written rather than a generic load tool (locust, k6) because those speak HTTP, not
JMS-over-STOMP with correlated events, and a command's outcome here is a typed event.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ..errors import ConnectionLost, ConnectorError, ServiceUnavailable
from .report import Tally

__all__ = [
    "ENDINGS",
    "Pacer",
    "Pair",
    "Traffic",
    "call_ids",
    "connection_id",
    "parse_extensions",
]

T = TypeVar("T")

ENDINGS = ("release", "blind", "transfer", "conference")
"""How an inbound call ends, in the order of the default mix (weights 4:1:2:1)."""
DEFAULT_MIX: Mapping[str, int] = {"release": 4, "blind": 1, "transfer": 2, "conference": 1}
_RING_POLL = 0.005
_OUTAGE_PAUSE = 0.25


class Agent(Protocol):
    """The part of the client's agent session the scenario uses."""

    @property
    def extension(self) -> str: ...

    async def login(self) -> Any: ...
    async def logout(self) -> Any: ...
    async def make_call(self, ext: str) -> Any: ...
    async def answer(self, cid: str) -> Any: ...
    async def release(self, cid: str) -> Any: ...
    async def hold(self, cid: str) -> Any: ...
    async def retrieve(self, cid: str) -> Any: ...
    async def blind_transfer(self, connection_id: str, *, other: str) -> Any: ...
    async def consult(self, connection_id: str, *, other: str) -> Any: ...
    async def transfer(self, connection_id: str, *, other: str | None = None) -> Any: ...
    async def conference(self, connection_id: str, *, other: str | None = None) -> Any: ...


PlaceCall = Callable[[str, str], Awaitable[str]]


def parse_extensions(spec: str) -> list[str]:
    """``"1000-1999"`` or ``"1001,1002,2000-2009"`` -> extensions, in order, no duplicates."""
    out: dict[str, None] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        low, sep, high = part.partition("-")
        if not sep:
            if not part.isdigit():
                raise ValueError(f"extension {part!r} is not a number")
            out[part] = None
            continue
        if not (low.strip().isdigit() and high.strip().isdigit()):
            raise ValueError(f"extension range {part!r} must look like 1000-1999")
        first, last = int(low), int(high)
        if last < first:
            raise ValueError(f"extension range {part!r} is empty (end before start)")
        width = len(low.strip())
        out.update((str(n).zfill(width), None) for n in range(first, last + 1))
    if not out:
        raise ValueError(f"no extensions in {spec!r}")
    return list(out)


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
    a: Agent
    b: Agent


class Pacer:
    """A global commands-per-second limit shared by every worker (none when rate is 0)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class Traffic:
    """Runs call cycles on agent pairs until a deadline or a stop request; counts everything."""

    def __init__(
        self,
        tally: Tally,
        *,
        pacer: Pacer | None = None,
        think: tuple[float, float] = (0.0, 0.0),
        mix: Mapping[str, int] = DEFAULT_MIX,
        ring_timeout: float = 5.0,
        seed: int | None = None,
    ) -> None:
        unknown = set(mix) - set(ENDINGS)
        if unknown:
            raise ValueError(f"unknown call endings {sorted(unknown)}; known: {ENDINGS}")
        self.tally = tally
        self.pacer = pacer or Pacer(0)
        self.think = think
        self.ring_timeout = ring_timeout
        self._endings = [e for e in ENDINGS if mix.get(e, 0) > 0]
        self._weights = [mix[e] for e in self._endings]
        self._rng = random.Random(seed)
        self.in_progress = 0

    async def cmd(self, awaitable: Awaitable[T]) -> T:
        await self.pacer.wait()
        return await self.tally.timed(awaitable)

    async def pause(self) -> None:
        low, high = self.think
        if high > 0:
            await asyncio.sleep(self._rng.uniform(low, high))

    # -- sessions -----------------------------------------------------------------------------

    async def login_all(self, agents: Sequence[Agent], concurrency: int = 256) -> int:
        """Log agents in, ``concurrency`` at a time; returns how many made it."""
        gate = asyncio.Semaphore(concurrency)

        async def one(agent: Agent) -> bool:
            async with gate:
                try:
                    await self.tally.timed(agent.login())
                except ConnectorError:
                    return False
                return True

        results = await asyncio.gather(*(one(a) for a in agents))
        return sum(results)

    async def logout_all(self, agents: Iterable[Agent], concurrency: int = 256) -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one(agent: Agent) -> None:
            async with gate:
                with contextlib.suppress(ConnectorError):
                    await self.tally.timed(agent.logout())

        await asyncio.gather(*(one(a) for a in agents))

    # -- the run loop ---------------------------------------------------------------------------

    async def run(
        self,
        pairs: Sequence[Pair],
        cycle: Callable[[Pair], Awaitable[None]],
        *,
        duration: float,
        stop: asyncio.Event,
    ) -> None:
        """Each pair runs cycles back to back; a cycle in progress at the deadline completes."""
        deadline = time.monotonic() + duration

        async def worker(pair: Pair) -> None:
            while not stop.is_set() and time.monotonic() < deadline:
                await cycle(pair)

        self.tally.start_phase()
        try:
            await asyncio.gather(*(worker(p) for p in pairs))
        finally:
            self.tally.end_phase()

    async def _call(self, body: Callable[[], Awaitable[None]], *agents: Agent) -> None:
        """One call's bookkeeping: a failure ends the call early and releases what is left."""
        self.tally.calls_started += 1
        self.in_progress += 1
        try:
            await body()
        except ConnectorError as exc:
            self.tally.calls_failed += 1
            if isinstance(exc, ServiceUnavailable | ConnectionLost):
                # Nothing can work until the connector or the link is back; such commands fail
                # without awaiting anything, so without a pause this loop would starve the loop.
                await asyncio.sleep(_OUTAGE_PAUSE)
                return
            await self._clean_up(agents)
        else:
            self.tally.calls_completed += 1
        finally:
            self.in_progress -= 1

    async def _clean_up(self, agents: Iterable[Agent]) -> None:
        for agent in agents:
            for cid in call_ids(agent):
                with contextlib.suppress(ConnectorError):
                    await self.tally.timed(agent.release(cid))

    # -- outbound: works against any connector ---------------------------------------------------

    async def outbound_cycle(self, pair: Pair) -> None:
        """A calls B; B answers; A holds, retrieves and releases (five commands)."""

        async def body() -> None:
            a, b = pair.a, pair.b
            cid = connection_id(await self.cmd(a.make_call(b.extension)))
            await self.cmd(b.answer(cid))
            await self.cmd(a.hold(cid))
            await self.cmd(a.retrieve(cid))
            await self.cmd(a.release(cid))

        await self._call(body, pair.a, pair.b)

    # -- inbound: a customer calls in through the emulator --------------------------------------

    def inbound_cycle(self, place_call: PlaceCall) -> Callable[[Pair], Awaitable[None]]:
        async def cycle(pair: Pair) -> None:
            ending = self._rng.choices(self._endings, self._weights)[0]
            customer = f"555{self._rng.randrange(10_000):04d}"
            await self._call(
                lambda: self._inbound(pair, customer, ending, place_call), *pair_of(pair)
            )
            await self.pause()

        return cycle

    async def _inbound(self, pair: Pair, customer: str, ending: str, place: PlaceCall) -> None:
        a, b = pair.a, pair.b
        cid = await place(customer, a.extension)
        await self._ringing(a, cid)
        await self.cmd(a.answer(cid))
        await self.pause()
        await self.cmd(a.hold(cid))
        await self.pause()
        await self.cmd(a.retrieve(cid))
        await self.pause()
        if ending == "release":
            await self.cmd(a.release(cid))
        elif ending == "blind":
            await self.cmd(a.blind_transfer(cid, other=b.extension))
            await self._answer_and_release(b)
        else:
            consult_cid = connection_id(await self.cmd(a.consult(cid, other=b.extension)))
            await self._ringing(b, consult_cid)
            await self.cmd(b.answer(consult_cid))
            await self.pause()
            if ending == "transfer":
                await self.cmd(a.transfer(cid, other=b.extension))
            else:
                await self.cmd(a.conference(cid, other=b.extension))
                await self.pause()
                await self._release_all(a)
            await self.pause()
            await self._release_all(b)

    async def _answer_and_release(self, agent: Agent) -> None:
        cid = await self._wait_for_call(agent)
        await self.cmd(agent.answer(cid))
        await self.pause()
        await self.cmd(agent.release(cid))

    async def _release_all(self, agent: Agent) -> None:
        for cid in call_ids(agent):
            await self.cmd(agent.release(cid))

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


def pair_of(pair: Pair) -> tuple[Agent, Agent]:
    return pair.a, pair.b


def make_pairs(agents: Sequence[Agent]) -> list[Pair]:
    """Neighbours form pairs; an odd agent out stays logged in but idle."""
    return [Pair(agents[i], agents[i + 1]) for i in range(0, len(agents) - 1, 2)]
