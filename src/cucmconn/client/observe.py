"""The client's observer interface: a place for metrics, tracing and recording to attach.

``client.add_observer(obs)`` registers an object with the callbacks of :class:`ClientObserver`
(subclass it and override what you need; every callback is a no-op by default).  The client
calls them synchronously on the event loop, at the moment the thing happens:

* ``command_issued``: an application command (or a Hello/Beat probe) was accepted by ``send``;
* ``command_finished``: it ended, once, with a :class:`CommandFinished` saying how;
* ``event_received``: an event arrived on the client's topic and what became of it
  (:data:`EventFate`; ``event`` is None when the body could not be decoded);
* ``connection_lost`` / ``reconnected``: the transport's link dropped / came back;
* ``service_changed``: the connector went IN_SERVICE or out of service (and why).

Callbacks must be quick and must not block (they run inside the client's delivery path); one
that raises is logged and skipped, never allowed to break the client.  With no observer attached
the client pays one falsy check per call site.  OpenTelemetry metrics or spans, or a trace
recorder, are built on these callbacks without touching the client's internals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal, TypeAlias

import msgspec

from ..codec.events import Event

__all__ = ["ClientObserver", "CommandFinished", "EventFate", "Observers", "Outcome"]

log = logging.getLogger("cucmconn.client")

Outcome: TypeAlias = Literal[
    "answered", "error", "timeout", "unavailable", "connection_lost", "cancelled"
]
"""How a command ended: its first correlated event came (``answered``); the connector answered
``#Error#`` (``error``, code in ``error_code``); no answer within its TTL (``timeout``); the
connector was out of service (``unavailable``); the link dropped or the client closed with the
outcome unknown (``connection_lost``); the caller stopped waiting (``cancelled``)."""

EventFate: TypeAlias = Literal[
    "resolved", "update", "late", "unmatched", "unknown_agent", "malformed"
]
"""What became of a received event: it answered a command (``resolved``); an unsolicited or
follow-up update routed to agents and streams (``update``); the answer to a command that had
already ended, dropped (``late``); a correlation id this client never issued (``unmatched``);
for an agent this client has no session for (``unknown_agent``); undecodable or over the input
limits, dropped (``malformed``)."""


class CommandFinished(msgspec.Struct, frozen=True, gc=False):
    """One finished command, as ``command_finished`` reports it."""

    command: str
    """Canonical command name (``GetState``, ``Hello``, ...)."""
    target: str
    """The agent's extension, or the client destination for Hello/Beat."""
    correlation_id: str | None
    """None when the command failed before it was given an id (e.g. connector out of service)."""
    outcome: Outcome
    duration: float
    """Seconds from the command being issued to its end."""
    error_code: str | None = None
    """The connector's error code when ``outcome == "error"``."""


class ClientObserver:
    """Base class for observers: override the callbacks you need; the others do nothing."""

    def command_issued(self, command: str, target: str, correlation_id: str) -> None:
        """A command got its correlation id and is about to be written."""

    def command_finished(self, finished: CommandFinished) -> None:
        """A command ended (exactly once per issued command, plus commands refused early)."""

    def event_received(self, event: Event | None, fate: EventFate) -> None:
        """An event arrived on the client's topic; ``event`` is None when it was malformed."""

    def connection_lost(self, reason: str) -> None:
        """The transport's link dropped; commands in flight failed with ConnectionLost."""

    def reconnected(self, url: str) -> None:
        """The transport reconnected (``url`` has no credentials); a resync follows."""

    def service_changed(self, in_service: bool, reason: str) -> None:
        """The connector went IN_SERVICE (True) or out of service (False)."""


class Observers:
    """The observers of one client; calls each callback on all of them, isolating failures.

    Falsy while empty.  Hot paths test :attr:`active` instead, a plain attribute, so a call
    site costs one attribute read when nobody observes (a truth test would call ``__bool__``).
    """

    __slots__ = ("_items", "active")

    def __init__(self) -> None:
        self._items: tuple[ClientObserver, ...] = ()
        self.active = False
        """True while at least one observer is attached."""

    def __bool__(self) -> bool:
        return self.active

    def __len__(self) -> int:
        return len(self._items)

    def add(self, observer: ClientObserver) -> None:
        """Attach ``observer`` (attaching the same object twice has no effect)."""
        if observer not in self._items:
            self._items = (*self._items, observer)
            self.active = True

    def remove(self, observer: ClientObserver) -> None:
        """Detach ``observer``; ValueError if it was not attached."""
        if observer not in self._items:
            raise ValueError(f"{observer!r} is not attached")
        self._items = tuple(item for item in self._items if item is not observer)
        self.active = bool(self._items)

    def _each(self, call: Callable[[ClientObserver], None]) -> None:
        for observer in self._items:
            try:
                call(observer)
            except Exception:
                log.exception("observer %r failed; skipped", observer)

    def command_issued(self, command: str, target: str, correlation_id: str) -> None:
        """Fan out :meth:`ClientObserver.command_issued`."""
        self._each(lambda o: o.command_issued(command, target, correlation_id))

    def command_finished(self, finished: CommandFinished) -> None:
        """Fan out :meth:`ClientObserver.command_finished`."""
        self._each(lambda o: o.command_finished(finished))

    def event_received(self, event: Event | None, fate: EventFate) -> None:
        """Fan out :meth:`ClientObserver.event_received`."""
        self._each(lambda o: o.event_received(event, fate))

    def connection_lost(self, reason: str) -> None:
        """Fan out :meth:`ClientObserver.connection_lost`."""
        self._each(lambda o: o.connection_lost(reason))

    def reconnected(self, url: str) -> None:
        """Fan out :meth:`ClientObserver.reconnected`."""
        self._each(lambda o: o.reconnected(url))

    def service_changed(self, in_service: bool, reason: str) -> None:
        """Fan out :meth:`ClientObserver.service_changed`."""
        self._each(lambda o: o.service_changed(in_service, reason))
