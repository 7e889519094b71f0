"""Bounded event streams with a stated overflow policy.

The producer is the transport's delivery callback, which must never block (why not an
``asyncio.Queue``: docs/architecture.md).  A stream keeps at most
``maxlen`` events and, when full, either drops the oldest (default, counted) or drops the new
event and raises :class:`~cucmconn.errors.SlowConsumer` to the reader on its next read.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections import deque
from typing import Literal, TypeAlias

import msgspec

from ..codec.events import Event
from ..errors import SlowConsumer
from .stats import StatsCounters

__all__ = ["EventStream", "EventsMayBeMissed", "Overflow", "StreamItem", "StreamSet"]

Overflow: TypeAlias = Literal["drop_oldest", "raise"]


class EventsMayBeMissed(msgspec.Struct, frozen=True, gc=False):
    """A notice in a stream: the link dropped and came back, or the connector was out of
    service and is back (it may have restarted), so events may have been lost.

    The client sends GetState for every logged-in agent after it (and Hello after a reconnect),
    so the state events that follow the notice are the truth again.
    """

    reason: str


StreamItem: TypeAlias = Event | EventsMayBeMissed


class EventStream:
    """One reader's bounded buffer; iterate it with ``async for``.

    ``maxlen`` is its bound; ``dropped`` counts the events it dropped when full (overflow
    ``"drop_oldest"``).  Iteration ends when the client (or the agent's session) closes.
    """

    __slots__ = (
        "__weakref__",
        "_buffer",
        "_closed",
        "_counters",
        "_overflow",
        "_overflowed",
        "_waiter",
        "dropped",
        "maxlen",
    )

    def __init__(self, maxlen: int, overflow: Overflow, counters: StatsCounters) -> None:
        if maxlen < 1:
            raise ValueError(f"stream buffer size must be >= 1, not {maxlen}")
        if overflow not in ("drop_oldest", "raise"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'raise', not {overflow!r}")
        self.maxlen = maxlen
        self.dropped = 0
        self._buffer: deque[StreamItem] = deque()
        self._overflow = overflow
        self._overflowed = 0
        self._counters = counters
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._buffer)

    def __repr__(self) -> str:
        return f"EventStream(buffered={len(self._buffer)}, dropped={self.dropped})"

    def push(self, item: StreamItem) -> None:
        """Called from the delivery callback: never blocks, never grows past ``maxlen``."""
        if self._closed:
            return
        buffer = self._buffer
        if len(buffer) >= self.maxlen:
            self.dropped += 1
            self._counters.dropped_events += 1
            if self._overflow == "raise":
                self._overflowed += 1
                self._wake()
                return
            buffer.popleft()
        buffer.append(item)
        self._wake()

    def close(self) -> None:
        """No more events: a waiting or later reader ends once the buffer is drained."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> StreamItem | None:
        """The next buffered item, or None (raises SlowConsumer as ``__anext__`` does)."""
        self._raise_overflow()
        return self._buffer.popleft() if self._buffer else None

    def _raise_overflow(self) -> None:
        if self._overflowed:
            lost, self._overflowed = self._overflowed, 0
            raise SlowConsumer(
                f"event stream full ({self.maxlen}): {lost} newer event(s) dropped; "
                "the buffered older events are still readable"
            )

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> StreamItem:
        while True:
            self._raise_overflow()
            if self._buffer:
                return self._buffer.popleft()
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


class StreamSet(dict[int, "weakref.ReferenceType[EventStream]"]):
    """The open streams of a client or of one agent, held weakly: a stream its reader dropped
    leaves the set by itself.

    A dict (stream id -> weak reference) rather than a ``weakref.WeakSet``: the hot path asks
    "any streams?" once per event, and a dict's truth test stays in C where ``WeakSet``'s
    ``__len__`` is a Python call.
    """

    __slots__ = ()

    def add(self, stream: EventStream) -> None:
        """Hold ``stream`` until it is closed and dropped by its reader."""
        key = id(stream)
        self[key] = weakref.ref(stream, functools.partial(self._gone, key))

    def _gone(self, key: int, ref: weakref.ReferenceType[EventStream]) -> None:
        if self.get(key) is ref:
            del self[key]

    def streams(self) -> list[EventStream]:
        """The streams still alive, in the order they were opened."""
        return [stream for ref in list(self.values()) if (stream := ref()) is not None]

    def push(self, item: StreamItem) -> None:
        """Give ``item`` to every stream (each applies its own overflow rule)."""
        for stream in self.streams():
            stream.push(item)
