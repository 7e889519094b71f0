"""Tenants of a shared broker: who may log in, and which destinations each may use.

``cucmconn broker start --secure`` runs ActiveMQ the way a multi-tenant deployment should:
authentication, per-destination authorization (ActiveMQ's ``authorizationPlugin``) and
``populateJMSXUserID="true"``, so every command reaches the connector stamped with its real
sender.  The rules:

- a client (a CRM server, one desktop) may write the command queue and read only its own
  topics: by default the topic named after its user, or starting with ``<user>.``
  (``topics`` replaces that with explicit ActiveMQ patterns per user);
- the connector user reads the command queue and writes every topic;
- every user may create advisory topics (the broker makes them on the user's behalf when it
  creates a destination or consumer) and read the temp-destination advisories (OpenWire JMS
  clients subscribe to them on connect); clients may read the consumer advisories of the
  command queue, which tell them when a connector starts or stops.  No other advisory is
  readable: they name other tenants' topics and connections.

The file given to ``--users`` is JSON::

    {"connector": {"login": "connector", "passcode": "..."},
     "clients": {"crm1": "passcode1", "crm2": "passcode2"},
     "topics": {"crm1": ["crm1", "crm1.>"]}}

``topics`` is optional.  Passcodes are kept out of reprs; the rendered broker configuration
that holds them is written with mode 0600 (see :class:`~cucmconn.broker.LocalActiveMQ`).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

from ..emulator.senders import default_topics

__all__ = ["Account", "Tenancy", "TenancyError", "parse_logins"]

_USER = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""Login names: no ``.`` ``*`` ``>`` (ActiveMQ's wildcards) and no ``,`` (its group lists)."""
_PATTERN = re.compile(r"(?:[A-Za-z0-9_-]+|\*)(?:\.(?:[A-Za-z0-9_-]+|\*))*(?:\.>)?|>")
CONNECTOR_GROUP = "connectors"
CLIENT_GROUP = "clients"
_TENANT_GROUP = "tenant_"


class TenancyError(ValueError):
    """A users file or a tenancy that cannot be used; the message says what and where."""


@dataclass(frozen=True)
class Account:
    """A broker login; the passcode never appears in ``repr``."""

    login: str
    passcode: str = field(repr=False)

    def __post_init__(self) -> None:
        if _USER.fullmatch(self.login) is None:
            raise TenancyError(
                f"login {self.login!r} must be 1-64 letters, digits, '_' or '-' "
                "(ActiveMQ's wildcards and separators would widen its rights)"
            )
        if not self.passcode:
            raise TenancyError(f"login {self.login!r} has an empty passcode")


@dataclass(frozen=True)
class Tenancy:
    """The connector's account, the clients' accounts, and each client's topic patterns."""

    connector: Account
    clients: tuple[Account, ...]
    topics: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per client login, the ActiveMQ topic patterns it may read; absent: ``default_topics``."""

    def __post_init__(self) -> None:
        logins = [self.connector.login, *(a.login for a in self.clients)]
        if len(set(logins)) != len(logins):
            raise TenancyError("each login must be unique (the connector's included)")
        if not self.clients:
            raise TenancyError("a secure broker needs at least one client login")
        unknown = set(self.topics) - {a.login for a in self.clients}
        if unknown:
            raise TenancyError(f"topics given for unknown client(s): {', '.join(sorted(unknown))}")
        for login, patterns in self.topics.items():
            for pattern in patterns:
                if _PATTERN.fullmatch(pattern) is None or pattern == ">":
                    raise TenancyError(f"topic pattern {pattern!r} of {login!r} is not usable")

    def __repr__(self) -> str:
        names = ", ".join(a.login for a in self.clients)
        return f"Tenancy(connector={self.connector.login!r}, clients=[{names}])"

    @property
    def accounts(self) -> tuple[Account, ...]:
        return (self.connector, *self.clients)

    def owners(self) -> dict[str, tuple[str, ...]]:
        """Client login -> topic patterns it owns: what the emulator's sender check is given."""
        return {a.login: self.topics.get(a.login, default_topics(a.login)) for a in self.clients}

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def generate(
        cls, clients: Iterable[str] = ("crm1", "crm2"), connector: str = "connector"
    ) -> Tenancy:
        """Fresh random passcodes (24 URL-safe characters) for ``connector`` and ``clients``."""
        return cls(
            Account(connector, secrets.token_urlsafe(18)),
            tuple(Account(login, secrets.token_urlsafe(18)) for login in clients),
        )

    @classmethod
    def from_dict(cls, data: object, *, source: str = "users") -> Tenancy:
        """Read the JSON shape described in the module docstring; errors name ``source``."""
        if not isinstance(data, Mapping):
            raise TenancyError(f"{source}: expected a JSON object")
        extra = set(data) - {"connector", "clients", "topics"}
        if extra:
            raise TenancyError(f"{source}: unknown key(s) {', '.join(sorted(extra))}")
        connector = data.get("connector")
        if not isinstance(connector, Mapping) or not all(
            isinstance(connector.get(k), str) for k in ("login", "passcode")
        ):
            raise TenancyError(f'{source}: "connector" must be {{"login": ..., "passcode": ...}}')
        clients = data.get("clients")
        if not isinstance(clients, Mapping) or not all(
            isinstance(v, str) for v in clients.values()
        ):
            raise TenancyError(f'{source}: "clients" must map each login to its passcode')
        topics = data.get("topics", {})
        if not isinstance(topics, Mapping) or not all(
            isinstance(v, list) and all(isinstance(p, str) for p in v) for v in topics.values()
        ):
            raise TenancyError(f'{source}: "topics" must map a login to a list of patterns')
        try:
            return cls(
                Account(str(connector["login"]), str(connector["passcode"])),
                tuple(Account(str(k), str(v)) for k, v in clients.items()),
                {str(k): tuple(v) for k, v in topics.items()},
            )
        except TenancyError as exc:
            raise TenancyError(f"{source}: {exc}") from None

    @classmethod
    def load(cls, path: Path | str) -> Tenancy:
        """Read a users file (JSON); a clear error names the file, never a passcode."""
        source = str(path)
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise TenancyError(f"{source}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise TenancyError(f"{source}: not valid JSON ({exc})") from None
        return cls.from_dict(data, source=source)

    def to_dict(self) -> dict[str, object]:
        """The users-file shape, passcodes included: for the one time they are shown."""
        out: dict[str, object] = {
            "connector": {"login": self.connector.login, "passcode": self.connector.passcode},
            "clients": {a.login: a.passcode for a in self.clients},
        }
        if self.topics:
            out["topics"] = {k: list(v) for k, v in self.topics.items()}
        return out

    # -- the broker's configuration ------------------------------------------------------------

    def plugins_xml(self, queue: str, indent: str = "        ") -> str:
        """``<plugins>`` with authentication and authorization for this tenancy on ``queue``."""
        users = "\n".join(
            f"{indent}            <authenticationUser username={quoteattr(a.login)} "
            f"password={quoteattr(a.passcode)} groups={quoteattr(self._groups(a.login))}/>"
            for a in self.accounts
        )
        entries = "\n".join(f"{indent}                    {e}" for e in self._entries(queue))
        everyone = f"{CLIENT_GROUP},{CONNECTOR_GROUP}"
        return (
            f"\n{indent}<plugins>\n"
            f'{indent}    <simpleAuthenticationPlugin anonymousAccessAllowed="false">\n'
            f"{indent}        <users>\n{users}\n{indent}        </users>\n"
            f"{indent}    </simpleAuthenticationPlugin>\n"
            f"{indent}    <authorizationPlugin>\n"
            f"{indent}        <map>\n"
            f"{indent}            <authorizationMap>\n"
            f"{indent}                <authorizationEntries>\n{entries}\n"
            f"{indent}                </authorizationEntries>\n"
            f"{indent}                <tempDestinationAuthorizationEntry>\n"
            f'{indent}                    <tempDestinationAuthorizationEntry read="{everyone}" '
            f'write="{everyone}" admin="{everyone}"/>\n'
            f"{indent}                </tempDestinationAuthorizationEntry>\n"
            f"{indent}            </authorizationMap>\n"
            f"{indent}        </map>\n"
            f"{indent}    </authorizationPlugin>\n"
            f"{indent}</plugins>\n"
        )

    def _groups(self, login: str) -> str:
        if login == self.connector.login:
            return CONNECTOR_GROUP
        return f"{CLIENT_GROUP},{_TENANT_GROUP}{login}"

    def _entries(self, queue: str) -> list[str]:
        everyone = f"{CLIENT_GROUP},{CONNECTOR_GROUP}"
        rows: list[tuple[str, str, str, str, str]] = [
            # kind, name, read, write, admin ("" = nobody).  ActiveMQ unions the entries
            # matching a destination, so each row only ever adds rights.
            ("queue", queue, CONNECTOR_GROUP, CLIENT_GROUP, everyone),
            ("topic", ">", "", CONNECTOR_GROUP, CONNECTOR_GROUP),
            ("topic", "ActiveMQ.Advisory.>", "", "", everyone),
            ("topic", f"ActiveMQ.Advisory.Consumer.Queue.{queue}", everyone, "", everyone),
            ("topic", "ActiveMQ.Advisory.TempQueue", everyone, "", everyone),
            ("topic", "ActiveMQ.Advisory.TempTopic", everyone, "", everyone),
        ]
        for login, patterns in self.owners().items():
            group = f"{_TENANT_GROUP}{login}"
            rows.extend(("topic", p, group, CONNECTOR_GROUP, f"{group},{CONNECTOR_GROUP}")
                        for p in patterns)  # fmt: skip
        return [_entry(*row) for row in rows]


def _entry(kind: str, name: str, read: str, write: str, admin: str) -> str:
    rights = " ".join(
        f"{right}={quoteattr(groups)}"
        for right, groups in (("read", read), ("write", write), ("admin", admin))
        if groups
    )
    return f"<authorizationEntry {kind}={quoteattr(name)} {rights}/>"


def parse_logins(text: str) -> Sequence[str]:
    """``"crm1,crm2"`` -> ``["crm1", "crm2"]`` (for ``--clients``); each login is checked."""
    logins = [part.strip() for part in text.split(",") if part.strip()]
    for login in logins:
        if _USER.fullmatch(login) is None:
            raise TenancyError(f"login {login!r} must be 1-64 letters, digits, '_' or '-'")
    if not logins:
        raise TenancyError("no client login given")
    return logins
