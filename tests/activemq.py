"""Pytest plugin: real ActiveMQ brokers for integration tests and benchmarks.

Loaded from the root ``conftest.py`` with ``pytest_plugins = ["tests.activemq"]``.

Fixtures
    ``activemq``         session-wide broker on free ports (never the defaults, so a developer's
                         own broker on 61613/61616 does not collide).  With
                         ``CUCMCONN_TEST_STOMP_URL`` set, points at that broker instead (and
                         ``CUCMCONN_TEST_OPENWIRE_URL``, default ``tcp://<same host>:61616``);
                         ``kill``/``start``/``restart`` then skip the calling test.
    ``fresh_activemq``   a private broker per test, for destructive tests (kill, restart).
    ``secure_activemq``  session-wide broker with simple authentication and a ``stomp+ssl``
                         connector whose self-signed certificate ``keytool`` makes here.
    ``tenant_activemq``  session-wide broker as ``cucmconn broker start --secure`` runs it
                         (a ``TenantBrokerHandle``): logins ``connector`` (reads
                         ``Connector1``, writes every topic), ``crm1`` and ``crm2`` (write
                         ``Connector1``, read only their own topics ``<login>`` and
                         ``<login>.>``), per-destination ACLs and ``populateJMSXUserID``;
                         ``url(login)`` gives a STOMP URL with that login's credentials.
    ``default_activemq`` session-wide broker with ActiveMQ's *default* transport options (64 KB
                         socket buffers pinned, Nagle on), as users' brokers run; the others
                         run the tuned profile of ``cucmconn broker start``.
    ``throttled_activemq``  a private broker per test with producer flow control on the command
                         queue: ``memoryLimit`` 1 MB on ``Connector1`` (``THROTTLED_QUEUE``,
                         ``THROTTLE_LIMIT``).  With no consumer, the broker stops reading a
                         producer's socket once 1 MB is pending (issue 11, case 1).
    ``two_activemq``     two independent private brokers per test (a ``BrokerPair``: ``.a``,
                         ``.b``, each with ``kill``/``stop``/``start``/``restart`` on the same
                         ports; ``failover_url()`` builds ``failover:(a,b)?randomize=false&
                         priorityBackup=true``, options overridable), for failover tests.
    ``jms_classpath``    the Debian jars a Java JMS peer compiles and runs against.
    ``connector_peer_classpath``  that plus ``tests/java/ConnectorPeer`` compiled (a JMS peer
                         playing the connector over OpenWire; see its source for the protocol).

The private and non-default brokers are always started here: with ``CUCMCONN_TEST_STOMP_URL``
set they skip, since an external broker's options and process are not ours to choose.

Tests skip (with the reason) only when Java or ActiveMQ cannot be had; with ``CI`` set they
fail instead, because CI must run them.  Every test using these fixtures gets the ``activemq``
marker, so ``-m "not activemq"`` deselects them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit

import pytest

from cucmconn.broker import (
    ACTIVEMQ_DEFAULTS,
    ActiveMQUnavailable,
    LocalActiveMQ,
    ensure_installed,
    free_ports,
)
from cucmconn.broker.tenants import Account, Tenancy

__all__ = [
    "TENANTS",
    "THROTTLED_QUEUE",
    "THROTTLE_LIMIT",
    "BrokerHandle",
    "BrokerPair",
    "SecureBrokerHandle",
    "TenantBrokerHandle",
]

BROKER_FIXTURES = frozenset(
    {
        "activemq",
        "fresh_activemq",
        "secure_activemq",
        "default_activemq",
        "tenant_activemq",
        "throttled_activemq",
        "two_activemq",
        "jms_classpath",
        "connector_peer_classpath",
    }
)
THROTTLED_QUEUE = "Connector1"
THROTTLE_LIMIT = "1mb"
TENANTS = ("crm1", "crm2")
JMS_JARS = (
    "activemq-client.jar",
    "geronimo-jms_1.1_spec.jar",
    "geronimo-j2ee-management-1.1-spec.jar",
    "hawtbuf.jar",
    "slf4j-api.jar",
    "slf4j-nop.jar",
)
JAVA_DIR = Path("/usr/share/java")
PEER_SOURCE = Path(__file__).parent / "java" / "ConnectorPeer.java"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if BROKER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.activemq)


def _unavailable(reason: str) -> NoReturn:
    """Skip locally, fail on CI: a CI run that silently skips the broker tests proves nothing."""
    if os.environ.get("CI"):
        pytest.fail(f"ActiveMQ tests cannot run on CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _require_activemq() -> str:
    try:
        return ensure_installed()
    except ActiveMQUnavailable as exc:
        _unavailable(str(exc))


@dataclass
class BrokerHandle:
    """What a test gets: URLs, ports, and (for a broker we started) process control."""

    stomp_url: str
    openwire_url: str
    broker: LocalActiveMQ | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return urlsplit(self.stomp_url).hostname or "127.0.0.1"

    @property
    def stomp_port(self) -> int:
        return urlsplit(self.stomp_url).port or 61613

    @property
    def openwire_port(self) -> int:
        return urlsplit(self.openwire_url).port or 61616

    @property
    def aiostomp_url(self) -> str:
        return "aiostomp" + self.stomp_url.removeprefix("stomp")

    @property
    def controllable(self) -> bool:
        return self.broker is not None

    @property
    def pid(self) -> int | None:
        return self.broker.pid if self.broker else None

    @property
    def log_path(self) -> Path | None:
        return self.broker.log_path if self.broker else None

    def _control(self) -> LocalActiveMQ:
        if self.broker is None:
            pytest.skip("external broker (CUCMCONN_TEST_STOMP_URL): no start/stop/kill control")
        return self.broker

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would."""
        self._control().kill()

    def start(self, timeout: float = 60.0) -> None:
        self._control().start(timeout)

    def stop(self) -> None:
        self._control().stop()

    def restart(self, timeout: float = 60.0) -> None:
        self._control().restart(timeout)


@dataclass
class SecureBrokerHandle(BrokerHandle):
    """A broker refusing anonymous clients, with a ``stomp+ssl`` connector."""

    stomp_ssl_url: str = ""
    login: str = ""
    passcode: str = field(default="", repr=False)
    cafile: Path = field(default=Path(), repr=False)

    def url(self, *, ssl: bool = True, credentials: bool = True) -> str:
        """A transport URL for this broker, with credentials and the CA file when asked."""
        base = self.stomp_ssl_url if ssl else self.stomp_url
        scheme, rest = base.split("://", 1)
        if credentials:
            rest = f"{quote(self.login, safe='')}:{quote(self.passcode, safe='')}@{rest}"
        query = f"?cafile={quote(str(self.cafile))}" if ssl else ""
        return f"{scheme}://{rest}{query}"


@dataclass
class TenantBrokerHandle(BrokerHandle):
    """A broker with per-tenant ACLs and ``populateJMSXUserID`` (``broker start --secure``)."""

    tenancy: Tenancy | None = field(default=None, repr=False)

    def account(self, login: str) -> Account:
        assert self.tenancy is not None
        (found,) = [a for a in self.tenancy.accounts if a.login == login]
        return found

    def url(self, login: str) -> str:
        """A STOMP URL for this broker logged in as ``login`` (``connector``, ``crm1``...)."""
        account = self.account(login)
        user, passcode = quote(account.login, safe=""), quote(account.passcode, safe="")
        return f"stomp://{user}:{passcode}@{self.host}:{self.stomp_port}"


@dataclass
class BrokerPair:
    """Two independent brokers (no network of brokers between them), as the vendor's HA runs."""

    a: BrokerHandle
    b: BrokerHandle

    def failover_url(self, *, scheme: str = "stomp", **options: str | int | bool) -> str:
        """``failover:(a,b)?randomize=false&priorityBackup=true``; ``options`` add or override.

        ``scheme="tcp"`` gives the OpenWire form, for a Java JMS peer on the same pair.
        """
        urls = [
            h.openwire_url if scheme == "tcp" else f"{scheme}://{h.host}:{h.stomp_port}"
            for h in (self.a, self.b)
        ]
        merged: dict[str, str | int | bool] = {"randomize": False, "priorityBackup": True}
        merged.update(options)
        query = "&".join(f"{key}={_option(value)}" for key, value in merged.items())
        return f"failover:({','.join(urls)})?{query}"

    def stop(self) -> None:
        """Stop both (whichever still runs)."""
        for handle in (self.a, self.b):
            if handle.broker is not None:
                handle.broker.stop()


def _option(value: str | int | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _start_local(base: Path, *, ssl: bool = False, **options: Any) -> LocalActiveMQ:
    _require_activemq()
    stomp, openwire, stomp_ssl = free_ports(3)
    broker = LocalActiveMQ(
        base,
        stomp_port=stomp,
        openwire_port=openwire,
        stomp_ssl_port=stomp_ssl if ssl else None,
        die_with_parent=True,
        **options,
    )
    broker.start()
    return broker


def _handle(broker: LocalActiveMQ) -> BrokerHandle:
    return BrokerHandle(broker.stomp_url, broker.openwire_url, broker)


def _external_handle() -> BrokerHandle | None:
    stomp_url = os.environ.get("CUCMCONN_TEST_STOMP_URL")
    if not stomp_url:
        return None
    host = urlsplit(stomp_url).hostname or "127.0.0.1"
    openwire = os.environ.get("CUCMCONN_TEST_OPENWIRE_URL", f"tcp://{host}:61616")
    return BrokerHandle(stomp_url, openwire)


@pytest.fixture(scope="session")
def activemq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    """The session's shared broker; tests must not kill it (use ``fresh_activemq``)."""
    external = _external_handle()
    if external is not None:
        yield external
        return
    broker = _start_local(tmp_path_factory.mktemp("activemq"))
    try:
        yield _handle(broker)
    finally:
        broker.stop()


@pytest.fixture
def fresh_activemq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    """A private broker for one test, which may kill or restart it at will."""
    _local_only("a destructive test's private broker")
    broker = _start_local(tmp_path_factory.mktemp("fresh-activemq"))
    try:
        yield _handle(broker)
    finally:
        broker.stop()


def _local_only(what: str) -> None:
    if os.environ.get("CUCMCONN_TEST_STOMP_URL"):
        pytest.skip(f"CUCMCONN_TEST_STOMP_URL set: {what} is started locally only")


@pytest.fixture(scope="session")
def tenant_activemq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TenantBrokerHandle]:
    """A broker as ``cucmconn broker start --secure`` runs it, with generated accounts."""
    _local_only("the multi-tenant broker")
    tenancy = Tenancy.generate(TENANTS)
    broker = _start_local(tmp_path_factory.mktemp("tenant-activemq"), tenancy=tenancy)
    try:
        yield TenantBrokerHandle(broker.stomp_url, broker.openwire_url, broker, tenancy=tenancy)
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def default_activemq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    """A session broker with ActiveMQ's default transport options (no socket or Nagle tuning)."""
    _local_only("the default-options broker")
    broker = _start_local(
        tmp_path_factory.mktemp("default-activemq"), transport_profile=ACTIVEMQ_DEFAULTS
    )
    try:
        yield _handle(broker)
    finally:
        broker.stop()


@pytest.fixture
def throttled_activemq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    """A private broker whose command queue has producer flow control at 1 MB (issue 11 case 1).

    Private because a test that fills the queue leaves it full for whoever comes next.
    """
    _local_only("the throttled broker")
    broker = _start_local(
        tmp_path_factory.mktemp("throttled-activemq"),
        queue_memory_limits={THROTTLED_QUEUE: THROTTLE_LIMIT},
    )
    try:
        yield _handle(broker)
    finally:
        broker.stop()


@pytest.fixture
def two_activemq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerPair]:
    """Two independent private brokers, each killable and restartable on its own ports."""
    _local_only("the broker pair")
    base = tmp_path_factory.mktemp("two-activemq")
    first = _start_local(base / "a", broker_name="cucmconn-a")
    try:
        second = _start_local(base / "b", broker_name="cucmconn-b")
    except BaseException:
        first.stop()
        raise
    pair = BrokerPair(_handle(first), _handle(second))
    try:
        yield pair
    finally:
        pair.stop()


def _make_keystore(directory: Path) -> tuple[Path, str, Path]:
    """A self-signed PKCS12 keystore for 127.0.0.1 and its certificate as PEM (the client's CA)."""
    keytool = shutil.which("keytool")
    if keytool is None:
        _unavailable("keytool (from the JDK) is needed to make the test certificate")
    keystore, cafile = directory / "broker.p12", directory / "broker-ca.pem"
    password = secrets.token_urlsafe(16)
    common = ["-keystore", str(keystore), "-storetype", "PKCS12", "-storepass", password]
    subprocess.run(
        [keytool, "-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048",
         "-validity", "2", "-dname", "CN=127.0.0.1", "-ext", "SAN=ip:127.0.0.1,dns:localhost",
         *common],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [keytool, "-exportcert", "-rfc", "-alias", "broker", "-file", str(cafile), *common],
        check=True, capture_output=True,
    )  # fmt: skip
    return keystore, password, cafile


@pytest.fixture(scope="session")
def secure_activemq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBrokerHandle]:
    """A broker with user/password authentication and ``stomp+ssl`` (self-signed, 127.0.0.1)."""
    _local_only("the secure broker")
    _require_activemq()
    base = tmp_path_factory.mktemp("secure-activemq")
    keystore, store_password, cafile = _make_keystore(base)
    login, passcode = "cucmconn", secrets.token_urlsafe(12)
    broker = _start_local(
        base / "broker",
        ssl=True,
        users={login: passcode},
        ssl_keystore=keystore,
        ssl_keystore_password=store_password,
    )
    try:
        yield SecureBrokerHandle(
            broker.stomp_url,
            broker.openwire_url,
            broker,
            stomp_ssl_url=broker.stomp_ssl_url or "",
            login=login,
            passcode=passcode,
            cafile=cafile,
        )
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def jms_classpath() -> str:
    """Classpath of Debian's JMS client jars, for compiling and running a Java peer."""
    if shutil.which("javac") is None:
        _unavailable("javac (a JDK) is needed to build the Java JMS peer")
    missing = [jar for jar in JMS_JARS if not (JAVA_DIR / jar).is_file()]
    if missing:
        _require_activemq()
        missing = [jar for jar in JMS_JARS if not (JAVA_DIR / jar).is_file()]
    if missing:
        _unavailable(f"missing jars in {JAVA_DIR}: {', '.join(missing)}")
    return os.pathsep.join(str(JAVA_DIR / jar) for jar in JMS_JARS)


@pytest.fixture(scope="session")
def connector_peer_classpath(jms_classpath: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Compile the Java connector peer once per session; run it with ``java -cp <this>``."""
    out = tmp_path_factory.mktemp("connector-peer")
    javac = shutil.which("javac") or "javac"
    done = subprocess.run(
        [javac, "-encoding", "UTF-8", "-d", str(out), "-cp", jms_classpath, str(PEER_SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"javac failed:\n{done.stderr}"
    return f"{out}{os.pathsep}{jms_classpath}"
