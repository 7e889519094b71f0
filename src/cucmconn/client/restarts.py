"""Telling that the connector restarted, from what the broker shows us.

A connector that restarts forgets every agent (they are LOGOUT on its side), and one that
restarts faster than a Beat never looks out of service (issue 11, case 3).  Two broker-level
signals reveal it, both read here:

* **The connection behind its messages.**  ActiveMQ's ``message-id`` is
  ``ID:<host>-<port>-<start>-<n>:<connection>:<session>:<producer>:<seq>``: the part before the
  last three fields names the JMS connection that produced the message, and a restarted process
  has a new one.  Only answers matched to our own commands by correlation id are looked at, so
  another tenant publishing on our topic cannot fake the signal.
* **Consumer advisories.**  ActiveMQ publishes on
  ``/topic/ActiveMQ.Advisory.Consumer.Queue.<queue>`` when a consumer of the command queue
  starts (``ConsumerInfo``, with its ``connectionId``) or stops (``RemoveInfo``, and the
  ``consumerCount`` header).  ActiveMQ 5.17 sends the body as JSON to STOMP subscribers
  (``transformation: jms-advisory-json``); it needs XStream on the broker's classpath, which
  Apache's distribution ships.  When advisories are not readable (ACLs), only the other
  signals remain.

Connection ids seen before the first IN_SERVICE only seed what is known; later, an id never
seen before means a new connector instance.  A small bounded memory keeps two connector
instances answering alternately (the vendor's HA pair) from counting as restarts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import msgspec

__all__ = ["ADVISORY_PREFIX", "Advisory", "ConnectorIdentity", "connection_of", "parse_advisory"]

ADVISORY_PREFIX = "/topic/ActiveMQ.Advisory.Consumer.Queue."
"""Consumer advisories of a queue: ``ADVISORY_PREFIX + <queue name>``."""

MAX_ADVISORY_BODY = 65_536


class _Id(msgspec.Struct, gc=False):
    connectionId: str = ""


class _Consumer(msgspec.Struct, gc=False):
    consumerId: _Id | None = None


class _Remove(msgspec.Struct, gc=False):
    objectId: _Id | None = None


class _Body(msgspec.Struct, gc=False):
    ConsumerInfo: _Consumer | None = None
    RemoveInfo: _Remove | None = None


_DECODER = msgspec.json.Decoder(_Body)


class Advisory(msgspec.Struct, frozen=True, gc=False):
    """One consumer advisory: a consumer started (``started``) or stopped, and how many the
    queue has now (None when the header was missing)."""

    started: bool
    connection_id: str
    consumer_count: int | None


def parse_advisory(body: bytes, headers: Mapping[str, str] | None = None) -> Advisory | None:
    """The advisory in one message, or None for anything else (never raises)."""
    if len(body) > MAX_ADVISORY_BODY:
        return None
    try:
        decoded = _DECODER.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    count: int | None = None
    raw = (headers or {}).get("consumerCount")
    if raw is not None and raw.isdigit():
        count = int(raw)
    if decoded.ConsumerInfo is not None and decoded.ConsumerInfo.consumerId is not None:
        return Advisory(True, decoded.ConsumerInfo.consumerId.connectionId, count)
    if decoded.RemoveInfo is not None and decoded.RemoveInfo.objectId is not None:
        return Advisory(False, decoded.RemoveInfo.objectId.connectionId, count)
    return None


def connection_of(message_id: str | None) -> str | None:
    """The producing JMS connection in an ActiveMQ ``message-id``, or None if not one."""
    if not message_id or not message_id.startswith("ID:"):
        return None
    parts = message_id.rsplit(":", 3)
    return parts[0] if len(parts) == 4 else None


class ConnectorIdentity:
    """The connector connections seen; says when a new one appears (a restart)."""

    __slots__ = ("_known", "_last", "memory")

    def __init__(self, memory: int = 8) -> None:
        self.memory = memory
        self._known: deque[str] = deque(maxlen=memory)
        self._last = "\0"  # prefix of the last connection seen, ":"-terminated (fast path)

    def __contains__(self, connection_id: str) -> bool:
        return connection_id in self._known

    def answered_by(self, message_id: str | None, *, seed: bool) -> bool:
        """An answer to one of our commands carried ``message_id``: True if it came from a
        connection never seen before (and ``seed`` is False)."""
        if message_id is None or message_id.startswith(self._last):
            return False
        connection = connection_of(message_id)
        if connection is None:
            return False
        self._last = connection + ":"
        return self.seen(connection, seed=seed)

    def seen(self, connection_id: str, *, seed: bool) -> bool:
        """Record a connector connection; True if it is new and not ``seed``."""
        if not connection_id or connection_id in self._known:
            return False
        known_before = bool(self._known)
        self._known.append(connection_id)
        return known_before and not seed
