"""Run a real ActiveMQ Classic broker from Debian's package, without systemd or root.

The SDK is tested against the broker the vendor deploys, not a mock; developers need the same
broker on their laptop.  Debian's ``activemq`` package only ships a system service, so this
module renders its own configuration into a writable directory (non-persistent, loopback-only,
JMX off) and runs ``activemq.jar`` from there.  A library could not serve: none manages an
ActiveMQ process, and a container would need Docker, which CI machines here do not have.

The API is synchronous on purpose: it manages a process (fork, wait, signal), is used from
pytest fixtures and a CLI, and must never run inside an event loop's thread of work.

State kept in ``<base_dir>``: ``conf/`` (rendered config), ``data/`` (log, temp store),
``activemq.pid`` and ``broker.json`` (ports and pid), so ``stop``/``status`` work from another
process than the one that started the broker.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from ..errors import ConnectorError
from .tenants import Tenancy

__all__ = [
    "ACTIVEMQ_DEFAULTS",
    "ACTIVEMQ_HOME",
    "ACTIVEMQ_JAR",
    "TRANSPORT_PROFILES",
    "TUNED",
    "ActiveMQUnavailable",
    "BrokerStatus",
    "LocalActiveMQ",
    "LocalBrokerError",
    "default_base_dir",
    "ensure_installed",
    "find_java",
    "free_port",
    "free_ports",
]

ACTIVEMQ_HOME = Path("/usr/share/activemq")
ACTIVEMQ_JAR = ACTIVEMQ_HOME / "bin" / "activemq.jar"
DEFAULT_JVM_OPTS = ("-Xms64m", "-Xmx512m")
TUNED = "tuned"
"""Transport profile of ``cucmconn broker start``: 1 MB socket buffers and TCP_NODELAY."""
ACTIVEMQ_DEFAULTS = "defaults"
"""Transport profile with ActiveMQ's own defaults, as most users' brokers run."""
TRANSPORT_PROFILES = (TUNED, ACTIVEMQ_DEFAULTS)

# ActiveMQ's TcpTransport pins SO_RCVBUF/SO_SNDBUF to 64 KB by default, which turns off the
# kernel's autotuning.  On loopback (64 KB segments) a burst of small frames then overflows the
# receive queue: segments are pruned and retransmitted with exponential back-off, and a
# connection pipelining ~1,000 commands stalled for 20 s and more (its mutex held by a blocked
# writer).  1 MB buffers removed the stalls in the round-trip benchmark.  Without TCP_NODELAY
# the broker's small writes wait for the peer's delayed ACK: one command after another then
# took 40 ms each (p50 40.6 ms), 1.5 ms with it (docs: protocol-notes, "Nagle").
_TUNED_OPTIONS = "transport.socketBufferSize=1048576&transport.tcpNoDelay=true"
_STOMP_TUNED_OPTIONS = f"transport.hbGracePeriodMultiplier=1.5&{_TUNED_OPTIONS}"
# Jars that let the broker render advisories as JSON for STOMP subscribers
# (``transformation:jms-advisory-json``); Debian's activemq package does not depend on them
# (``libxstream-java`` brings them).  Without them advisories to STOMP are silently not sent.
_ADVISORY_JARS = ("xstream.jar", "xpp3.jar", "jettison.jar")
_JAVA_DIR = Path("/usr/share/java")
_MEMORY_LIMIT = re.compile(r"\d{1,6}\s*(?:[kmg]b)?", re.IGNORECASE)
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")
_PROBE_INTERVAL = 0.1
_LOG_TAIL_LINES = 25


class LocalBrokerError(ConnectorError):
    """The local broker could not be started, stopped or inspected; the message says why."""


class ActiveMQUnavailable(LocalBrokerError):
    """Java or Debian's ActiveMQ is missing and could not be installed here."""


@dataclass(frozen=True)
class BrokerStatus:
    """What ``status`` reports; ``to_dict`` is the CLI's ``--json`` output."""

    running: bool
    pid: int | None
    base_dir: str
    stomp_url: str
    openwire_url: str
    stomp_ready: bool
    openwire_ready: bool
    log_path: str

    def to_dict(self) -> dict[str, Any]:
        """The status as plain JSON-ready values (``cucmconn broker status --json``)."""
        return asdict(self)


def default_base_dir() -> Path:
    """``$CUCMCONN_BROKER_DIR``, else ``~/.cache/cucmconn/activemq``."""
    env = os.environ.get("CUCMCONN_BROKER_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cucmconn" / "activemq"


def find_java() -> str | None:
    """The ``java`` to run: ``$JAVA_HOME/bin/java`` when set, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def ensure_installed(*, install: bool = True) -> str:
    """Return the java executable, installing Debian's ``activemq`` first when it is missing.

    Installs only as root with apt-get available (a CI image or a dev container); anyone else
    gets an error naming the package, because silently needing sudo helps nobody.
    """
    java = find_java()
    if java and ACTIVEMQ_JAR.is_file():
        return java
    if install and _can_apt_install():
        _apt_install("activemq")
        java = find_java()
        if java and ACTIVEMQ_JAR.is_file():
            return java
    missing = [] if java else ["a Java runtime (java)"]
    if not ACTIVEMQ_JAR.is_file():
        missing.append(f"ActiveMQ ({ACTIVEMQ_JAR})")
    raise ActiveMQUnavailable(
        f"missing {' and '.join(missing)}; install Debian's package: "
        "sudo apt-get install -y activemq (it brings a JRE)"
    )


def _can_apt_install() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get") is not None


def _apt_install(package: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", package]
    if subprocess.run(cmd, env=env, capture_output=True, check=False).returncode == 0:
        return
    subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ActiveMQUnavailable(f"apt-get install {package} failed: {done.stderr[-500:]}")


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free now (another process may still take it before we bind)."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports: all sockets stay bound until every port is chosen."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _port_bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead, but only once every thread is: a JVM's main thread can turn "Z" while
    # its other threads still shut down, and the process cannot be reaped until they are gone.
    proc = Path(f"/proc/{pid}")
    with contextlib.suppress(OSError, IndexError):
        if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            return True
        return len(list((proc / "task").iterdir())) > 1
    return True


def _parent_death_signal() -> None:
    """In the child before exec: SIGTERM it when the parent dies (Linux PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 == PR_SET_PDEATHSIG


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class LocalActiveMQ:
    """One ActiveMQ process serving from ``base_dir`` on loopback ports.

    ``users`` turns on the simple authentication plugin (anonymous access refused);
    ``stomp_ssl_port`` with ``ssl_keystore``/``ssl_keystore_password`` adds a ``stomp+ssl``
    connector.  Passwords go only into ``conf/activemq.xml`` (mode 0600), never into reprs,
    logs or exceptions.  ``die_with_parent`` (Linux) has the kernel stop the broker when this
    process dies, so a killed test run leaves no 512 MB JVM behind; the CLI leaves it off.

    ``tenancy`` (a :class:`~cucmconn.broker.tenants.Tenancy`, exclusive with ``users``) turns
    on authentication *and* per-destination authorization on ``command_queue``, with
    ``populateJMSXUserID``: each message then carries its authenticated sender as
    ``JMSXUserID`` (a forged one is overwritten), which the emulator's sender check reads.

    ``transport_profile`` is :data:`TUNED` (1 MB socket buffers, TCP_NODELAY: what ``cucmconn
    broker start`` runs) or :data:`ACTIVEMQ_DEFAULTS` (no transport option at all, like a user's
    broker), so the SDK can be tested on both.  ``queue_memory_limits`` maps a queue name to a
    ``memoryLimit`` (``"1mb"``) with producer flow control: once that much is pending, the
    broker stops reading the producer's socket, as a throttled production broker does.
    """

    def __init__(
        self,
        base_dir: Path | str,
        *,
        stomp_port: int = 61613,
        openwire_port: int = 61616,
        stomp_ssl_port: int | None = None,
        users: Mapping[str, str] | None = None,
        ssl_keystore: Path | str | None = None,
        ssl_keystore_password: str | None = None,
        host: str = "127.0.0.1",
        memory_limit: str = "256 mb",
        jvm_opts: tuple[str, ...] = DEFAULT_JVM_OPTS,
        broker_name: str = "cucmconn",
        die_with_parent: bool = False,
        transport_profile: str = TUNED,
        queue_memory_limits: Mapping[str, str] | None = None,
        tenancy: Tenancy | None = None,
        command_queue: str = "Connector1",
    ) -> None:
        if users and tenancy is not None:
            raise ValueError("give users or tenancy, not both")
        if _QUEUE_NAME.fullmatch(command_queue) is None:
            raise ValueError(f"queue name {command_queue!r} must be letters, digits, '_', '.', '-'")
        if stomp_ssl_port is not None and (ssl_keystore is None or ssl_keystore_password is None):
            raise ValueError("stomp_ssl_port needs ssl_keystore and ssl_keystore_password")
        if transport_profile not in TRANSPORT_PROFILES:
            raise ValueError(
                f"transport_profile must be one of {', '.join(TRANSPORT_PROFILES)}, "
                f"not {transport_profile!r}"
            )
        limits = dict(queue_memory_limits or {})
        for name, limit in limits.items():
            if _QUEUE_NAME.fullmatch(name) is None:
                raise ValueError(f"queue name {name!r} must be letters, digits, '_', '.', '-'")
            if _MEMORY_LIMIT.fullmatch(limit) is None:
                raise ValueError(f"memory limit {limit!r} must look like 1mb, 512kb or 1048576")
        self.base_dir = Path(base_dir).expanduser().resolve()
        self.host = host
        self.stomp_port = stomp_port
        self.openwire_port = openwire_port
        self.stomp_ssl_port = stomp_ssl_port
        self._users = dict(users) if users else None
        self._ssl_keystore = Path(ssl_keystore).resolve() if ssl_keystore else None
        self._ssl_keystore_password = ssl_keystore_password
        self.memory_limit = memory_limit
        self.jvm_opts = jvm_opts
        self.broker_name = broker_name
        self.die_with_parent = die_with_parent
        self.transport_profile = transport_profile
        self.tenancy = tenancy
        self.command_queue = command_queue
        self.queue_memory_limits: Mapping[str, str] = limits
        self._process: subprocess.Popen[bytes] | None = None

    # -- paths and URLs -------------------------------------------------------------------

    @property
    def conf_dir(self) -> Path:
        """The broker's configuration (activemq.xml and friends), written under ``base_dir``."""
        return self.base_dir / "conf"

    @property
    def data_dir(self) -> Path:
        """The broker's data directory under ``base_dir`` (its log among it); writable."""
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        """The broker's log file (where to look when it will not start)."""
        return self.data_dir / "activemq.log"

    @property
    def console_path(self) -> Path:
        """The JVM's stdout/stderr: where a crash before log4j starts ends up."""
        return self.data_dir / "console.log"

    @property
    def pid_path(self) -> Path:
        """Where the broker's pid is kept, so that another process can stop it."""
        return self.base_dir / "activemq.pid"

    @property
    def state_path(self) -> Path:
        """The ports and options of the running broker (JSON), read back by ``from_state``."""
        return self.base_dir / "broker.json"

    @property
    def stomp_url(self) -> str:
        """The STOMP connector's URL, as cucmconn's clients take it."""
        return f"stomp://{self.host}:{self.stomp_port}"

    @property
    def stomp_ssl_url(self) -> str | None:
        """The STOMP+TLS connector's URL, or None when the broker has none."""
        return (
            None
            if self.stomp_ssl_port is None
            else f"stomp+ssl://{self.host}:{self.stomp_ssl_port}"
        )

    @property
    def openwire_url(self) -> str:
        """The OpenWire connector's URL (for Java JMS peers such as the real connector)."""
        return f"tcp://{self.host}:{self.openwire_port}"

    def __repr__(self) -> str:
        auth = ", tenants" if self.tenancy else ", auth" if self._users else ""
        return f"LocalActiveMQ({str(self.base_dir)!r}, {self.stomp_url}, {self.openwire_url}{auth})"

    # -- process state --------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The broker's pid if one is alive (ours, or one recorded in the pid file)."""
        if self._process is not None:
            return self._process.pid if self._process.poll() is None else None
        pid = self._read_pid()
        return pid if pid is not None and self._is_our_broker(pid) else None

    @property
    def running(self) -> bool:
        """True while a broker process of this directory is alive."""
        return self.pid is not None

    def status(self) -> BrokerStatus:
        """Is it running, and do its ports accept connections (``cucmconn broker status``)."""
        return BrokerStatus(
            running=self.running,
            pid=self.pid,
            base_dir=str(self.base_dir),
            stomp_url=self.stomp_url,
            openwire_url=self.openwire_url,
            stomp_ready=_port_accepts(self.host, self.stomp_port),
            openwire_ready=_port_accepts(self.host, self.openwire_port),
            log_path=str(self.log_path),
        )

    @classmethod
    def from_state(cls, base_dir: Path | str) -> LocalActiveMQ:
        """The broker recorded in ``base_dir/broker.json`` (ports as it was started with)."""
        base = Path(base_dir).expanduser().resolve()
        try:
            state = json.loads((base / "broker.json").read_text())
        except (OSError, ValueError):
            return cls(base)
        return cls(
            base,
            stomp_port=int(state.get("stomp_port", 61613)),
            openwire_port=int(state.get("openwire_port", 61616)),
            stomp_ssl_port=None,
            host=str(state.get("host", "127.0.0.1")),
        )

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _is_our_broker(self, pid: int) -> bool:
        """Guard against a recycled pid: the process must be java running our base dir."""
        if not _pid_alive(pid):
            return False
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return True  # no /proc: trust the pid file
        return f"-Dactivemq.base={self.base_dir}".encode() in cmdline

    # -- configuration --------------------------------------------------------------------

    def write_config(self) -> None:
        """Render ``conf/activemq.xml`` and ``conf/log4j.properties`` into ``base_dir``."""
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        package = resources.files("cucmconn.broker") / "resources"
        (self.conf_dir / "log4j.properties").write_text(
            (package / "log4j.properties").read_text(encoding="utf-8"), encoding="utf-8"
        )
        xml = _render(
            (package / "activemq.xml").read_text(encoding="utf-8"),
            BROKER_NAME=self.broker_name,
            POPULATE_USER_ID="true" if self._users or self.tenancy else "false",
            MEMORY_LIMIT=self.memory_limit,
            QUEUE_POLICIES=self._queue_policies_xml(),
            PLUGINS=self._plugins_xml(),
            SSL_CONTEXT=self._ssl_xml(),
            CONNECTORS=self._connectors_xml(),
        )
        target = self.conf_dir / "activemq.xml"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(xml)

    def _connectors_xml(self) -> str:
        tuned = self.transport_profile == TUNED
        plain, stomp = (_TUNED_OPTIONS, _STOMP_TUNED_OPTIONS) if tuned else ("", "")
        rows = [
            ("openwire", _uri(f"tcp://{self.host}:{self.openwire_port}", plain)),
            ("stomp", _uri(f"stomp://{self.host}:{self.stomp_port}", stomp)),
        ]
        if self.stomp_ssl_port is not None:
            rows.append(
                ("stomp+ssl", _uri(f"stomp+ssl://{self.host}:{self.stomp_ssl_port}", stomp))
            )
        return "\n".join(
            f"            <transportConnector name={quoteattr(name)} uri={quoteattr(uri)}/>"
            for name, uri in rows
        )

    def _queue_policies_xml(self) -> str:
        """One policy entry per throttled queue, ahead of the catch-all ``queue=">"`` entry."""
        return "".join(
            f"                    <policyEntry queue={quoteattr(name)} "
            f'producerFlowControl="true" memoryLimit={quoteattr(limit)}/>\n'
            for name, limit in self.queue_memory_limits.items()
        )

    def _plugins_xml(self) -> str:
        if self.tenancy is not None:
            return self.tenancy.plugins_xml(self.command_queue)
        if not self._users:
            return ""
        users = "\n".join(
            f"                    <authenticationUser username={quoteattr(name)} "
            f'password={quoteattr(password)} groups="users"/>'
            for name, password in self._users.items()
        )
        return (
            "\n        <plugins>\n"
            '            <simpleAuthenticationPlugin anonymousAccessAllowed="false">\n'
            f"                <users>\n{users}\n                </users>\n"
            "            </simpleAuthenticationPlugin>\n"
            "        </plugins>\n"
        )

    def _ssl_xml(self) -> str:
        if self.stomp_ssl_port is None or self._ssl_keystore is None:
            return ""
        return (
            "\n        <sslContext>\n"
            f"            <sslContext keyStore={quoteattr(str(self._ssl_keystore))} "
            f"keyStorePassword={quoteattr(self._ssl_keystore_password or '')}/>\n"
            "        </sslContext>\n"
        )

    def command(self, java: str = "java") -> list[str]:
        """The JVM command line: Debian's launcher jar, pointed at our writable directory."""
        base = self.base_dir
        return [
            java,
            *self.jvm_opts,
            f"-Dactivemq.base={base}",
            f"-Dactivemq.conf={self.conf_dir}",
            f"-Dactivemq.data={self.data_dir}",
            f"-Dactivemq.home={ACTIVEMQ_HOME}",
            f"-Dactivemq.classpath={os.pathsep.join(self._classpath())}",
            "-jar",
            str(ACTIVEMQ_JAR),
            "start",
            f"xbean:file:{self.conf_dir / 'activemq.xml'}",
        ]

    def _classpath(self) -> list[str]:
        """``conf`` (as Debian's launcher has it) plus the advisory-JSON jars that exist here."""
        jars = (_JAVA_DIR / jar for jar in _ADVISORY_JARS)
        return [str(self.conf_dir), *(str(jar) for jar in jars if jar.is_file())]

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start the broker and return once both the STOMP and OpenWire ports accept.

        Refuses to start when a port is taken: a probe would otherwise succeed against
        someone else's broker.  A failed start raises with the tail of the broker's log.
        """
        if self.running:
            raise LocalBrokerError(f"broker already running in {self.base_dir} (pid {self.pid})")
        java = ensure_installed()
        self._check_ports_free()
        self.write_config()
        self._spawn(java)
        self._write_state()
        self._wait_ready(timeout)

    def _check_ports_free(self) -> None:
        ports = [self.stomp_port, self.openwire_port]
        if self.stomp_ssl_port is not None:
            ports.append(self.stomp_ssl_port)
        taken = [p for p in ports if not _port_bindable(self.host, p)]
        if taken:
            raise LocalBrokerError(
                f"port(s) {', '.join(map(str, taken))} on {self.host} already in use; "
                "stop the other broker or choose other ports"
            )

    def _spawn(self, java: str) -> None:
        self.console_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.console_path, "ab") as console:
            self._process = subprocess.Popen(
                self.command(java),
                cwd=self.base_dir,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survive the CLI that started it; no terminal signals
                preexec_fn=_parent_death_signal if self.die_with_parent else None,
            )
        self.pid_path.write_text(f"{self._process.pid}\n")

    def _write_state(self) -> None:
        state = {
            "pid": self._process.pid if self._process else None,
            "host": self.host,
            "stomp_port": self.stomp_port,
            "openwire_port": self.openwire_port,
            "stomp_ssl_port": self.stomp_ssl_port,
            "transport_profile": self.transport_profile,
            "secure": self.tenancy is not None,  # never the accounts: this file is 0644
        }
        self.state_path.write_text(json.dumps(state) + "\n")

    def _wait_ready(self, timeout: float) -> None:
        """Probe each port until it has accepted once (each probe costs a broker log line)."""
        waiting = {self.openwire_port, self.stomp_port}
        if self.stomp_ssl_port is not None:
            waiting.add(self.stomp_ssl_port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                self._forget()
                raise LocalBrokerError(f"ActiveMQ exited during start-up:\n{self._log_tail()}")
            waiting = {p for p in waiting if not _port_accepts(self.host, p)}
            if not waiting:
                return
            time.sleep(_PROBE_INTERVAL)
        self.kill()
        raise LocalBrokerError(f"ActiveMQ not ready within {timeout:g}s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        parts = [_tail(self.log_path), _tail(self.console_path)]
        return "\n".join(p for p in parts if p) or "(no log output)"

    def stop(self, timeout: float = 30.0) -> None:
        """Stop gracefully (SIGTERM runs ActiveMQ's shutdown hook); SIGKILL after ``timeout``."""
        pid = self.pid
        if pid is None:
            self._forget()
            return
        self._signal(pid, signal.SIGTERM)
        if not self._wait_exit(pid, timeout):
            self._signal(pid, signal.SIGKILL)
            self._wait_exit(pid, 10.0)
        self._forget()

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would: for fault-injection tests."""
        pid = self.pid
        if pid is not None:
            self._signal(pid, signal.SIGKILL)
            self._wait_exit(pid, 10.0)
        self._forget()

    def restart(self, timeout: float = 60.0) -> None:
        """Stop (if running) and start again on the same ports."""
        self.stop()
        self._wait_ports_released(10.0)
        self.start(timeout)

    def wait(self) -> int | None:
        """Block until a broker we spawned exits; its return code (for ``--foreground``)."""
        return None if self._process is None else self._process.wait()

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._process is not None and self._process.pid == pid:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return True
            time.sleep(_PROBE_INTERVAL)
        return False

    def _wait_ports_released(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _port_bindable(self.host, self.stomp_port) and _port_bindable(
                self.host, self.openwire_port
            ):
                return
            time.sleep(_PROBE_INTERVAL)

    def _forget(self) -> None:
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(0)
            self._process = None
        with contextlib.suppress(OSError):
            self.pid_path.unlink()

    def __enter__(self) -> LocalActiveMQ:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _uri(base: str, options: str) -> str:
    return f"{base}?{options}" if options else base


def _render(template: str, **values: str) -> str:
    """Replace ``@@NAME@@`` tokens; ``${...}`` belongs to ActiveMQ and is left alone."""
    for name, value in values.items():
        template = template.replace(f"@@{name}@@", value)
    if "@@" in template:
        raise LocalBrokerError("broker template has an unreplaced @@token@@")
    return template
