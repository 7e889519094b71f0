"""Who may be answered where: the emulator's check of a command's authenticated sender.

On a shared broker every tenant may write the command queue, and a command names the topic its
answers go to (``reply-to``, or the topic named at Hello/Login).  Per-destination ACLs stop a
tenant from *reading* another's topic, not from *naming* it: ``Logout#1001`` with
``reply-to:/topic/crm1`` sent by crm2 would log out crm1's agent.  A broker with
``populateJMSXUserID="true"`` and authentication stamps each message with its real sender
(``JMSXUserID``, overwriting a forged one); this policy says whether that sender owns the
destination the command would be answered on.

Ownership by default: a topic whose name is the user name or starts with ``<user>.`` (the
rule ``cucmconn broker start --secure`` gives the broker's ACLs).  An explicit mapping (user ->
ActiveMQ patterns, ``*`` one segment, ``>`` the rest) replaces the rule entirely: users it
does not name own nothing.  A pattern starting with ``/`` is a whole destination
(``/queue/crm1.replies``); otherwise it names topics.  Temporary destinations are never owned
unless a pattern names them: their names say nothing about who created them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["USER_HEADER", "SenderPolicy", "default_topics", "load_owners"]

USER_HEADER = "JMSXUserID"
"""The STOMP header ActiveMQ fills with the authenticated sender (``populateJMSXUserID``)."""
_MAX_CACHED = 10_000


def default_topics(user: str) -> tuple[str, ...]:
    """The default rule as ActiveMQ patterns: the topic named ``user`` and every ``user.*...``.

    ``cucmconn broker start --secure`` grants exactly these to each client, so the broker's
    read ACL and the emulator's sender check agree.
    """
    return (user, f"{user}.>")


_Pattern = tuple[str, tuple[str, ...]]


class SenderPolicy:
    """Decides whether a command's sender may be answered on a destination.

    ``owners`` maps a user to the patterns it owns; None applies :func:`default_topics` to any
    user.  Verdicts are cached (bounded: past ``_MAX_CACHED`` pairs the cache restarts)
    because a few (user, destination) pairs recur on every command.
    """

    def __init__(self, owners: Mapping[str, Sequence[str]] | None = None) -> None:
        self._owners: dict[str, tuple[_Pattern, ...]] | None = None
        if owners is not None:
            for user, patterns in owners.items():
                if not user or not all(isinstance(p, str) and p for p in patterns):
                    raise ValueError(f"owner {user!r}: empty user or pattern")
            self._owners = {
                user: tuple(_compile(p) for p in patterns) for user, patterns in owners.items()
            }
        self._cache: dict[tuple[str, str], bool] = {}

    def __repr__(self) -> str:
        rule = "default rule" if self._owners is None else f"{len(self._owners)} owner(s)"
        return f"SenderPolicy({rule})"

    def owns(self, user: str | None, destination: str) -> bool:
        """Does the authenticated ``user`` own ``destination`` (``/topic/x``)?  No user: no."""
        if not user:
            return False
        key = (user, destination)
        verdict = self._cache.get(key)
        if verdict is None:
            verdict = self._decide(user, destination)
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[key] = verdict
        return verdict

    def _decide(self, user: str, destination: str) -> bool:
        if self._owners is None:
            patterns = tuple(_compile(p) for p in default_topics(user))
        else:
            patterns = self._owners.get(user, ())
        kind, _, name = destination[1:].partition("/")
        segments = name.split(".")
        return any(k == kind and _matches(p, segments) for k, p in patterns)


def _compile(pattern: str) -> _Pattern:
    """``crm1.>`` -> (``topic``, (``crm1``, ``>``)); ``/queue/x`` -> (``queue``, (``x``,))."""
    kind, name = "topic", pattern
    if pattern.startswith("/"):
        kind, _, name = pattern[1:].partition("/")
    return kind, tuple(name.split("."))


def _matches(pattern: tuple[str, ...], segments: list[str]) -> bool:
    """ActiveMQ wildcards over ``.``-separated segments: ``*`` one, a final ``>`` the rest."""
    for index, part in enumerate(pattern):
        if part == ">" and index == len(pattern) - 1:
            return len(segments) > index
        if index >= len(segments) or (part != "*" and part != segments[index]):
            return False
    return len(segments) == len(pattern)


def load_owners(path: Path | str) -> dict[str, list[str]]:
    """Read an owners file: JSON ``{"user": ["pattern", ...]}``; raises ValueError saying why.

    The users file of ``cucmconn broker start --secure`` is accepted too (its ``topics`` key
    is the mapping; clients without one get the default rule), so one file can serve both.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("clients"), dict):
        topics = data.get("topics") or {}
        data = {u: topics.get(u, list(default_topics(u))) for u in data["clients"]}
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(p, str) and p for p in v) for v in data.values()
    ):
        raise ValueError(f'{path}: expected {{"user": ["topic pattern", ...]}}')
    return {str(k): list(v) for k, v in data.items()}
