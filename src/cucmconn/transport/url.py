"""Parse transport URLs and keep credentials out of anything printable.

Accepted forms::

    memory://[name]
    stomp://[user:pass@]host[:61613][?heartbeat=10000&prefetch=1000]
    stomp+ssl://[user:pass@]host[:61614][?cafile=...&verify=false]
    failover:(stomp://a:61613,stomp://b:61613)?randomize=false&priorityBackup=true
    aiostomp://[user:pass@]host[:61613]
    stomppy://[user:pass@]host[:61613]

``stomppy+ssl://`` parses, so that its transport can refuse it saying why.

A ``failover:`` query takes ActiveMQ's own failover options with ActiveMQ's meaning (see
:class:`FailoverPolicy`) beside the transport's options; the list keeps the URL's order here,
and the transport applies ``randomize`` each time it picks a broker, as ActiveMQ does.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["Endpoint", "FailoverPolicy", "TransportURL", "parse_flag", "parse_url", "redact_url"]

DEFAULT_PORTS = {
    "stomp": 61613,
    "stomp+ssl": 61614,
    "aiostomp": 61613,
    "aiostomp+ssl": 61614,
    "stomppy": 61613,
    "stomppy+ssl": 61614,
}
SCHEMES = ("memory", "stomp", "stomp+ssl", "aiostomp", "aiostomp+ssl", "stomppy", "stomppy+ssl")


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    login: str | None = field(default=None, repr=False)
    passcode: str | None = field(default=None, repr=False)
    options: dict[str, str] = field(default_factory=dict)

    @property
    def ssl(self) -> bool:
        """True for a TLS endpoint (``stomp+ssl://``, ``aiostomp+ssl://``)."""
        return self.scheme.endswith("+ssl")

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True)
class TransportURL:
    """A parsed URL: one endpoint, or several for ``failover:``; options apply to all."""

    scheme: str
    endpoints: tuple[Endpoint, ...]
    options: dict[str, str]
    name: str = ""  # memory:// broker name
    failover_policy: FailoverPolicy | None = None  # set for a ``failover:`` URL

    @property
    def failover(self) -> bool:
        """True when the URL lists more than one broker (``failover:(a,b)``)."""
        return len(self.endpoints) > 1

    @property
    def policy(self) -> FailoverPolicy:
        """The URL's failover options; ActiveMQ's defaults for a URL that is not ``failover:``."""
        return self.failover_policy or FailoverPolicy()

    def display(self) -> str:
        """The URL as logs and reprs show it: schemes, hosts and ports, never a credential."""
        if self.scheme == "memory":
            return f"memory://{self.name}"
        inner = ",".join(str(e) for e in self.endpoints)
        return f"failover:({inner})" if self.failover else inner


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

# ActiveMQ's failover options that make no sense for a STOMP client of ours (JMS message
# tracking, OpenWire's broker-pushed URI updates, a pool of warm spare connections) or that we
# do not implement yet: refused by name, so nobody believes they took effect.
_UNSUPPORTED_FAILOVER = frozenset(
    {
        "backup",
        "backupPoolSize",
        "maxCacheSize",
        "nested",
        "priorityURIs",
        "rebalanceUpdateURIs",
        "reconnectSupported",
        "startupMaxReconnectAttempts",
        "timeout",
        "trackMessages",
        "trackTransactionProducers",
        "updateURIsSupported",
        "updateURIsURL",
        "warnAfterReconnectAttempts",
    }
)


def parse_flag(name: str, raw: str, *, kind: str = "URL option") -> bool:
    """A URL's true/false option (``1 true yes on`` / ``0 false no off``); ValueError naming
    the option for anything else."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{kind} {name} must be true or false, not {raw[:32]!r}")


def _number(name: str, raw: str, *, minimum: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"failover option {name} must be a number, not {raw[:32]!r}") from None
    if not value >= minimum:  # also refuses NaN
        raise ValueError(f"failover option {name} must be >= {minimum:g}, not {raw[:32]!r}")
    return value


@dataclass(frozen=True)
class FailoverPolicy:
    """ActiveMQ's failover options, with ActiveMQ's names and meaning (5.x reference).

    - ``randomize`` (default **true**, as in ActiveMQ): pick brokers in a random order on each
      (re)connect instead of the URL's order; the broker just lost is tried last.
    - ``priorityBackup`` (default false): the first broker of the list is the priority one.
      While connected to another, the transport keeps probing it in the background and moves
      back as soon as it accepts a STOMP connection (the vendor's HA setup).
    - ``initialReconnectDelay`` / ``maxReconnectDelay`` (ms): the delay after a round of failed
      attempts, and its cap.  Defaults here: 100 ms (ActiveMQ: 10 ms; ours is jittered and
      spares a restarting broker) and 30,000 ms (as ActiveMQ).
    - ``useExponentialBackOff`` (true) and ``backOffMultiplier`` (2.0; ActiveMQ's older name
      ``reconnectDelayExponent`` is accepted too): how the delay grows between rounds.
    - ``maxReconnectAttempts`` (-1): rounds over the list before giving up after a link was
      lost; -1 retries forever, 0 does not reconnect at all.

    Option names are case-sensitive, as in ActiveMQ.  Others of ActiveMQ's options
    (``backup``, ``timeout``, ``trackMessages``, ...) are refused with a clear error rather
    than silently ignored.
    """

    randomize: bool = True
    priority_backup: bool = False
    initial_reconnect_delay: float | None = None  # seconds; None: the transport's default
    max_reconnect_delay: float | None = None
    use_exponential_backoff: bool = True
    backoff_multiplier: float = 2.0
    max_reconnect_attempts: int = -1

    NAMES = (
        "randomize",
        "priorityBackup",
        "initialReconnectDelay",
        "maxReconnectDelay",
        "useExponentialBackOff",
        "backOffMultiplier",
        "reconnectDelayExponent",
        "maxReconnectAttempts",
    )

    @classmethod
    def extract(cls, options: Mapping[str, str]) -> tuple[FailoverPolicy, dict[str, str]]:
        """The policy named in a ``failover:`` query, and the options left for the transport.

        ValueError for an ActiveMQ option we do not support, or a bad value.
        """
        rest: dict[str, str] = {}
        given: dict[str, object] = {}
        for name, raw in options.items():
            if name in _UNSUPPORTED_FAILOVER or name.startswith("nested."):
                raise ValueError(
                    f"ActiveMQ failover option {name!r} is not supported "
                    f"(supported: {', '.join(cls.NAMES)})"
                )
            if name == "randomize":
                given["randomize"] = parse_flag(name, raw, kind="failover option")
            elif name == "priorityBackup":
                given["priority_backup"] = parse_flag(name, raw, kind="failover option")
            elif name == "initialReconnectDelay":
                given["initial_reconnect_delay"] = _number(name, raw, minimum=1) / 1000
            elif name == "maxReconnectDelay":
                given["max_reconnect_delay"] = _number(name, raw, minimum=1) / 1000
            elif name == "useExponentialBackOff":
                given["use_exponential_backoff"] = parse_flag(name, raw, kind="failover option")
            elif name in ("backOffMultiplier", "reconnectDelayExponent"):
                given["backoff_multiplier"] = _number(name, raw, minimum=1)
            elif name == "maxReconnectAttempts":
                value = _number(name, raw, minimum=-1)
                if value != int(value):
                    raise ValueError(f"failover option {name} must be an integer, not {raw!r}")
                given["max_reconnect_attempts"] = int(value)
            else:
                rest[name] = raw
        policy = cls(**given)  # type: ignore[arg-type]
        low, high = policy.initial_reconnect_delay, policy.max_reconnect_delay
        if low is not None and high is not None and high < low:
            raise ValueError("failover option maxReconnectDelay is below initialReconnectDelay")
        return policy, rest

    @classmethod
    def suggest(cls, name: str) -> str:
        """The hint " (did you mean X?)" for a near miss of a failover option name, else ""."""
        close = difflib.get_close_matches(name, cls.NAMES, n=1, cutoff=0.7)
        if not close and name.lower() in {n.lower() for n in cls.NAMES}:
            close = [n for n in cls.NAMES if n.lower() == name.lower()]
        return f" (did you mean {close[0]!r}?)" if close else ""


def _parse_one(url: str, extra: dict[str, str]) -> Endpoint:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"unsupported transport scheme {scheme!r} in {redact_url(url)}")
    if not parts.hostname:
        raise ValueError(f"missing host in {redact_url(url)}")
    options = dict(extra)
    options.update(parse_qsl(parts.query))
    return Endpoint(
        scheme=scheme,
        host=parts.hostname,
        port=parts.port or DEFAULT_PORTS[scheme],
        login=unquote(parts.username) if parts.username else options.pop("login", None),
        passcode=unquote(parts.password) if parts.password else options.pop("passcode", None),
        options=options,
    )


_FAILOVER = re.compile(r"^failover:\((?P<inner>[^)]*)\)(?:\?(?P<query>.*))?$", re.IGNORECASE)


def parse_url(url: str) -> TransportURL:
    """Parse any accepted URL; raise ValueError (without credentials) when it is not one."""
    url = url.strip()
    match = _FAILOVER.match(url)
    if match:
        options = dict(parse_qsl(match.group("query") or ""))
        members = [m.strip() for m in match.group("inner").split(",") if m.strip()]
        if not members:
            raise ValueError("failover: URL lists no broker")
        endpoints = [_parse_one(m, {}) for m in members]
        if len({e.scheme for e in endpoints}) != 1:
            raise ValueError("failover: URL mixes transport schemes")
        policy, rest = FailoverPolicy.extract(options)
        return TransportURL(endpoints[0].scheme, tuple(endpoints), rest, failover_policy=policy)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        name = (parts.netloc + parts.path).strip("/") or "default"
        return TransportURL("memory", (), dict(parse_qsl(parts.query)), name=name)
    endpoint = _parse_one(url, {})
    return TransportURL(scheme, (endpoint,), dict(endpoint.options))


_USERINFO = re.compile(r"(?P<scheme>[a-z+]+://)[^/@\s]*@", re.IGNORECASE)
_SECRET_PARAMS = re.compile(r"(?P<key>passcode|password|login|user)=[^&)\s]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """Remove user info and credential parameters so a URL can be logged."""
    url = _USERINFO.sub(lambda m: m.group("scheme") + "***@", url)
    return _SECRET_PARAMS.sub(lambda m: m.group("key") + "=***", url)
