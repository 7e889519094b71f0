"""Parse transport URLs and keep credentials out of anything printable.

Accepted forms::

    memory://[name]
    stomp://[user:pass@]host[:61613][?heartbeat=10000&prefetch=1000]
    stomp+ssl://[user:pass@]host[:61614][?cafile=...&verify=false]
    failover:(stomp://a:61613,stomp://b:61613)?randomize=false
    aiostomp://[user:pass@]host[:61613]
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["Endpoint", "TransportURL", "parse_url", "redact_url"]

DEFAULT_PORTS = {"stomp": 61613, "stomp+ssl": 61614, "aiostomp": 61613, "aiostomp+ssl": 61614}
SCHEMES = ("memory", "stomp", "stomp+ssl", "aiostomp", "aiostomp+ssl")


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

    @property
    def failover(self) -> bool:
        return len(self.endpoints) > 1

    def display(self) -> str:
        if self.scheme == "memory":
            return f"memory://{self.name}"
        inner = ",".join(str(e) for e in self.endpoints)
        return f"failover:({inner})" if self.failover else inner


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
        if options.get("randomize", "false").lower() == "true":
            random.shuffle(endpoints)
        return TransportURL(endpoints[0].scheme, tuple(endpoints), options)
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
