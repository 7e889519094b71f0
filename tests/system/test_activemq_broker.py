"""The local ActiveMQ manager: rendered config, lifecycle, CLI, and the secure variant.

Lifecycle tests run the real broker (``fresh_activemq``); STOMP is spoken over a raw socket here
so these tests depend on nothing but the broker itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from cucmconn.broker import ACTIVEMQ_DEFAULTS, LocalActiveMQ, LocalBrokerError, free_ports, main
from cucmconn.broker.tenants import Tenancy, TenancyError
from tests.activemq import (
    BrokerHandle,
    BrokerPair,
    SecureBrokerHandle,
    _external_handle,
    _require_activemq,
    _unavailable,
)

AMQ = "{http://activemq.apache.org/schema/core}"


def _stomp_connect(sock: socket.socket, headers: dict[str, str] | None = None) -> str:
    """Send CONNECT, return the command of the broker's first frame (CONNECTED or ERROR)."""
    lines = ["CONNECT", "accept-version:1.2", "host:localhost"]
    lines += [f"{k}:{v}" for k, v in (headers or {}).items()]
    sock.sendall(("\n".join(lines) + "\n\n\0").encode())
    data = b""
    while b"\0" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0].decode()


def _stomp_command_at(host: str, port: int, headers: dict[str, str] | None = None) -> str:
    with socket.create_connection((host, port), timeout=10) as sock:
        return _stomp_connect(sock, headers)


def _connectors(config: Path) -> dict[str, str]:
    root = ET.parse(config).getroot()
    return {c.get("name", ""): c.get("uri", "") for c in root.iter(f"{AMQ}transportConnector")}


# -- configuration (no broker process) ----------------------------------------------------


def test_config_is_loopback_non_persistent_and_jmx_free(tmp_path: Path) -> None:
    broker = LocalActiveMQ(tmp_path, stomp_port=40001, openwire_port=40002)
    broker.write_config()
    root = ET.parse(broker.conf_dir / "activemq.xml").getroot()
    (node,) = root.iter(f"{AMQ}broker")
    assert node.get("persistent") == "false"
    assert node.get("useJmx") == "false"
    assert node.get("schedulerSupport") == "false"
    assert _connectors(broker.conf_dir / "activemq.xml") == {
        # 1 MB socket buffers: ActiveMQ's pinned 64 KB stalls pipelined links on loopback;
        # TCP_NODELAY: the broker's small writes otherwise wait 40 ms for a delayed ACK
        "openwire": "tcp://127.0.0.1:40002?transport.socketBufferSize=1048576"
        "&transport.tcpNoDelay=true",
        "stomp": "stomp://127.0.0.1:40001?transport.hbGracePeriodMultiplier=1.5"
        "&transport.socketBufferSize=1048576&transport.tcpNoDelay=true",
    }
    assert not list(root.iter(f"{AMQ}simpleAuthenticationPlugin"))
    assert (broker.conf_dir / "log4j.properties").is_file()
    assert broker.stomp_url == "stomp://127.0.0.1:40001"
    assert broker.openwire_url == "tcp://127.0.0.1:40002"


def test_default_profile_renders_no_transport_option(tmp_path: Path) -> None:
    broker = LocalActiveMQ(
        tmp_path, stomp_port=40001, openwire_port=40002, transport_profile=ACTIVEMQ_DEFAULTS
    )
    broker.write_config()
    assert _connectors(broker.conf_dir / "activemq.xml") == {
        "openwire": "tcp://127.0.0.1:40002",
        "stomp": "stomp://127.0.0.1:40001",
    }


def test_queue_memory_limit_renders_a_flow_control_policy_first(tmp_path: Path) -> None:
    broker = LocalActiveMQ(tmp_path, queue_memory_limits={"Connector1": "1mb"})
    broker.write_config()
    root = ET.parse(broker.conf_dir / "activemq.xml").getroot()
    entries = [(e.get("queue"), e.get("memoryLimit")) for e in root.iter(f"{AMQ}policyEntry")]
    assert entries[0] == ("Connector1", "1mb")
    assert (None, "32mb") in entries and (">", "64mb") in entries
    (first,) = [e for e in root.iter(f"{AMQ}policyEntry") if e.get("queue") == "Connector1"]
    assert first.get("producerFlowControl") == "true"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"transport_profile": "fast"}, "transport_profile"),
        ({"queue_memory_limits": {"Connector1": "1mb; rm"}}, "memory limit"),
        ({"queue_memory_limits": {'a"b': "1mb"}}, "queue name"),
    ],
)
def test_bad_profile_or_limit_is_refused(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LocalActiveMQ(tmp_path, **options)


def test_advisory_json_jars_are_on_the_broker_classpath_when_installed(tmp_path: Path) -> None:
    broker = LocalActiveMQ(tmp_path)
    (classpath,) = [a for a in broker.command() if a.startswith("-Dactivemq.classpath=")]
    entries = classpath.split("=", 1)[1].split(os.pathsep)
    assert entries[0] == str(broker.conf_dir)
    expected = [f"/usr/share/java/{jar}" for jar in ("xstream.jar", "xpp3.jar", "jettison.jar")]
    assert entries[1:] == [jar for jar in expected if Path(jar).is_file()]


def test_users_are_escaped_into_the_auth_plugin_and_kept_out_of_repr(tmp_path: Path) -> None:
    secret = "p\"<&>'w"
    broker = LocalActiveMQ(tmp_path, users={"agent&1": secret})
    broker.write_config()
    config = broker.conf_dir / "activemq.xml"
    root = ET.parse(config).getroot()
    (plugin,) = root.iter(f"{AMQ}simpleAuthenticationPlugin")
    assert plugin.get("anonymousAccessAllowed") == "false"
    (user,) = plugin.iter(f"{AMQ}authenticationUser")
    assert (user.get("username"), user.get("password")) == ("agent&1", secret)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert secret not in repr(broker)


def test_ssl_connector_needs_a_keystore(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keystore"):
        LocalActiveMQ(tmp_path, stomp_ssl_port=40003)
    broker = LocalActiveMQ(
        tmp_path, stomp_ssl_port=40003, ssl_keystore=tmp_path / "k.p12", ssl_keystore_password="x"
    )
    broker.write_config()
    uri = _connectors(broker.conf_dir / "activemq.xml")["stomp+ssl"]
    assert uri.startswith("stomp+ssl://127.0.0.1:40003?")
    assert broker.stomp_ssl_url == "stomp+ssl://127.0.0.1:40003"


def test_stopped_broker_reports_not_running(tmp_path: Path) -> None:
    broker = LocalActiveMQ(tmp_path, stomp_port=free_ports(1)[0])
    status = broker.status()
    assert not status.running and status.pid is None and not status.stomp_ready
    broker.stop()  # idempotent when nothing runs
    assert not broker.running


def test_stale_pid_file_is_not_trusted(tmp_path: Path) -> None:
    broker = LocalActiveMQ(tmp_path)
    broker.pid_path.write_text(f"{os.getpid()}\n")  # alive, but not a broker of this dir
    assert broker.pid is None


# -- lifecycle against the real broker ----------------------------------------------------


def test_start_refuses_a_port_already_taken(tmp_path: Path) -> None:
    _require_activemq()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        broker = LocalActiveMQ(tmp_path, stomp_port=taken, openwire_port=free_ports(1)[0])
        with pytest.raises(LocalBrokerError, match=f"{taken}.*in use"):
            broker.start()
    assert not broker.running


def test_failed_start_says_why(tmp_path: Path) -> None:
    _require_activemq()
    stomp, openwire = free_ports(2)
    broker = LocalActiveMQ(tmp_path, stomp_port=stomp, openwire_port=openwire, jvm_opts=("-Xmx1k",))
    with pytest.raises(LocalBrokerError, match="exited during start-up") as info:
        broker.start(timeout=30)
    assert "heap" in str(info.value).lower()
    assert not broker.running and not broker.pid_path.exists()


def test_session_broker_speaks_stomp(activemq: BrokerHandle) -> None:
    assert _stomp_command_at(activemq.host, activemq.stomp_port) == "CONNECTED"
    if activemq.controllable:  # never the defaults: a developer's own broker must not collide
        assert {activemq.stomp_port, activemq.openwire_port}.isdisjoint({61613, 61616})


def _fill_until_blocked(host: str, port: int, seconds: float) -> int | None:
    """Send 1 KB commands to Connector1 with no consumer; bytes sent once the socket blocks."""
    frame = (
        b"SEND\ndestination:/queue/Connector1\ntype:Beat#t\npersistent:false\n\n"
        + b"x" * 1000
        + b"\0"
    )
    with socket.create_connection((host, port), timeout=10) as sock:
        assert _stomp_connect(sock) == "CONNECTED"
        sock.settimeout(2.0)
        sent, deadline = 0, time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                sock.sendall(frame)
                sent += len(frame)
        except TimeoutError:
            return sent
    return None


def test_throttled_broker_stops_reading_a_producer(throttled_activemq: BrokerHandle) -> None:
    """The broker blocks the producer once ~1 MB is pending (plus what the sockets buffer)."""
    blocked_at = _fill_until_blocked(throttled_activemq.host, throttled_activemq.stomp_port, 20)
    assert blocked_at is not None, "the producer was never throttled"
    assert blocked_at < 8_000_000
    log = throttled_activemq.log_path
    assert log is not None
    assert "Usage Manager Memory Limit (1048576) reached on queue://Connector1" in log.read_text()


def test_default_broker_has_no_transport_options(default_activemq: BrokerHandle) -> None:
    assert _stomp_command_at(default_activemq.host, default_activemq.stomp_port) == "CONNECTED"
    assert default_activemq.broker is not None
    connectors = _connectors(default_activemq.broker.conf_dir / "activemq.xml")
    assert all("?" not in uri for uri in connectors.values())


def test_two_brokers_are_independent_and_each_restartable(two_activemq: BrokerPair) -> None:
    a, b = two_activemq.a, two_activemq.b
    assert {a.stomp_port, a.openwire_port}.isdisjoint({b.stomp_port, b.openwire_port})
    url = two_activemq.failover_url()
    assert url == (
        f"failover:(stomp://127.0.0.1:{a.stomp_port},stomp://127.0.0.1:{b.stomp_port})"
        "?randomize=false&priorityBackup=true"
    )
    assert two_activemq.failover_url(scheme="tcp", maxReconnectAttempts=3).endswith(
        f"{b.openwire_url})?randomize=false&priorityBackup=true&maxReconnectAttempts=3"
    )
    a.kill()
    assert not _port_open(a.host, a.stomp_port)
    assert _stomp_command_at(b.host, b.stomp_port) == "CONNECTED"
    a.start()
    assert _stomp_command_at(a.host, a.stomp_port) == "CONNECTED"
    b.restart()
    assert _stomp_command_at(b.host, b.stomp_port) == "CONNECTED"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _read_frame(sock: socket.socket) -> bytes:
    data = b""
    while b"\0" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_consumer_advisories_reach_stomp_as_json(activemq: BrokerHandle) -> None:
    """A Connector1 consumer starting shows up as a JSON ConsumerInfo (needs XStream jars)."""
    if activemq.broker is None:
        pytest.skip("external broker: its classpath is not ours")
    if not Path("/usr/share/java/xstream.jar").is_file():
        _unavailable("libxstream-java is needed for JSON advisories over STOMP")
    queue_name = f"AdvisoryProbe{os.getpid()}"
    with (
        socket.create_connection((activemq.host, activemq.stomp_port), timeout=10) as watcher,
        socket.create_connection((activemq.host, activemq.stomp_port), timeout=10) as consumer,
    ):
        assert _stomp_connect(watcher) == "CONNECTED"
        watcher.sendall(
            b"SUBSCRIBE\nid:1\nreceipt:r1\ntransformation:jms-advisory-json\n"
            b"destination:/topic/ActiveMQ.Advisory.Consumer.Queue."
            + queue_name.encode()
            + b"\n\n\0"
        )
        assert _read_frame(watcher).startswith(b"RECEIPT")
        assert _stomp_connect(consumer) == "CONNECTED"
        consumer.sendall(b"SUBSCRIBE\nid:1\ndestination:/queue/" + queue_name.encode() + b"\n\n\0")
        frame = _read_frame(watcher)
    head, _, body = frame.partition(b"\n\n")
    assert head.startswith(b"MESSAGE") and b"consumerCount:1" in head
    info = json.loads(body.rstrip(b"\0\n"))["ConsumerInfo"]
    assert info["consumerId"]["connectionId"].startswith("ID:")


def test_kill_start_restart(fresh_activemq: BrokerHandle) -> None:
    broker = fresh_activemq.broker
    assert broker is not None
    first = fresh_activemq.pid
    assert first is not None and broker.status().stomp_ready and broker.status().openwire_ready

    fresh_activemq.kill()
    assert not broker.running and fresh_activemq.pid is None
    with pytest.raises(OSError):
        socket.create_connection((fresh_activemq.host, fresh_activemq.stomp_port), timeout=2)

    fresh_activemq.start()
    second = fresh_activemq.pid
    assert second not in (None, first)
    assert _stomp_command_at(fresh_activemq.host, fresh_activemq.stomp_port) == "CONNECTED"

    fresh_activemq.restart()
    assert fresh_activemq.pid not in (None, second)
    assert _stomp_command_at(fresh_activemq.host, fresh_activemq.stomp_port) == "CONNECTED"


def test_stop_from_another_manager_uses_the_recorded_state(fresh_activemq: BrokerHandle) -> None:
    broker = fresh_activemq.broker
    assert broker is not None
    other = LocalActiveMQ.from_state(broker.base_dir)  # as `cucmconn broker stop` would
    assert other.stomp_port == broker.stomp_port and other.pid == broker.pid
    other.stop()
    assert not other.running and not broker.running
    assert "is shutdown" in broker.log_path.read_text()  # graceful: the shutdown hook ran


def test_cli_start_status_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _require_activemq()
    stomp, openwire = free_ports(2)
    ports = ["--stomp-port", str(stomp), "--openwire-port", str(openwire)]
    assert main(["start", "--dir", str(tmp_path), *ports]) == 0
    try:
        capsys.readouterr()
        assert main(["status", "--dir", str(tmp_path), "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["running"] and status["stomp_ready"] and status["openwire_ready"]
        assert status["stomp_url"] == f"stomp://127.0.0.1:{stomp}"
        assert main(["start", "--dir", str(tmp_path), *ports]) == 1
        assert "already running" in capsys.readouterr().err
    finally:
        assert main(["stop", "--dir", str(tmp_path)]) == 0
    assert "stopped" in capsys.readouterr().out
    assert main(["status", "--dir", str(tmp_path)]) == 3


def test_cli_secure_generates_accounts_shown_once_and_stored_nowhere_readable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _require_activemq()
    stomp, openwire = free_ports(2)
    ports = ["--stomp-port", str(stomp), "--openwire-port", str(openwire)]
    args = ["start", "--dir", str(tmp_path), *ports, "--secure", "--clients", "crm1,crm7"]
    assert main([*args, "--json"]) == 0
    try:
        out = json.loads(capsys.readouterr().out)
        users = out["users"]
        assert set(users["clients"]) == {"crm1", "crm7"} and users["connector"]["login"]
        secrets_ = [users["connector"]["passcode"], *users["clients"].values()]
        assert all(len(p) >= 20 for p in secrets_)
        login = {"login": "crm7", "passcode": users["clients"]["crm7"]}
        assert _stomp_command_at("127.0.0.1", stomp, login) == "CONNECTED"
        assert _stomp_command_at("127.0.0.1", stomp) == "ERROR"  # anonymous
        config = tmp_path / "conf" / "activemq.xml"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        root = ET.parse(config).getroot()
        (node,) = root.iter(f"{AMQ}broker")
        assert node.get("populateJMSXUserID") == "true"
        assert list(root.iter(f"{AMQ}authorizationPlugin"))
        capsys.readouterr()
        assert main(["status", "--dir", str(tmp_path), "--json"]) == 0
        shown_again = capsys.readouterr().out
        readable = [tmp_path / "broker.json", tmp_path / "data" / "activemq.log"]
        for text in [shown_again, *(p.read_text() for p in readable)]:
            assert not any(p in text for p in secrets_)
    finally:
        assert main(["stop", "--dir", str(tmp_path)]) == 0


def test_cli_secure_refuses_a_bad_users_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"connector": {"login": "c", "passcode": "p"}, "clients": {}}))
    assert main(["start", "--dir", str(tmp_path / "b"), "--secure", "--users", str(users)]) == 2
    assert "at least one client" in capsys.readouterr().err
    assert main(["start", "--dir", str(tmp_path / "b"), "--users", str(users)]) == 2
    assert "only with --secure" in capsys.readouterr().err


def test_tenancy_renders_per_tenant_acls(tmp_path: Path) -> None:
    tenancy = Tenancy.from_dict(
        {
            "connector": {"login": "connector", "passcode": "s3cret-c"},
            "clients": {"crm1": "s3cret-1", "crm2": "s3cret-2"},
            "topics": {"crm2": ["desks.crm2.>"]},
        }
    )
    assert "s3cret" not in repr(tenancy) and "s3cret" not in repr(tenancy.clients)
    broker = LocalActiveMQ(tmp_path, tenancy=tenancy)
    broker.write_config()
    root = ET.parse(broker.conf_dir / "activemq.xml").getroot()
    groups = {u.get("username"): u.get("groups") for u in root.iter(f"{AMQ}authenticationUser")}
    assert groups == {
        "connector": "connectors",
        "crm1": "clients,tenant_crm1",
        "crm2": "clients,tenant_crm2",
    }
    entries = {
        (e.get("queue") or e.get("topic")): (e.get("read"), e.get("write"), e.get("admin"))
        for e in root.iter(f"{AMQ}authorizationEntry")
    }
    assert entries["Connector1"] == ("connectors", "clients", "clients,connectors")
    assert entries[">"] == (None, "connectors", "connectors")
    assert entries["crm1"] == ("tenant_crm1", "connectors", "tenant_crm1,connectors")
    assert entries["crm1.>"] == entries["crm1"]
    assert entries["desks.crm2.>"][0] == "tenant_crm2" and "crm2" not in entries
    assert entries["ActiveMQ.Advisory.>"] == (None, None, "clients,connectors")
    assert entries["ActiveMQ.Advisory.Consumer.Queue.Connector1"][0] == "clients,connectors"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"connector": {"login": "c", "passcode": "p"}, "clients": {"a.b": "p"}}, "login"),
        ({"connector": {"login": "c", "passcode": "p"}, "clients": {"c": "p"}}, "unique"),
        ({"connector": {"login": "c", "passcode": "p"}, "clients": {"a": ""}}, "empty"),
        ({"connector": {"login": "c"}, "clients": {"a": "p"}}, "connector"),
        ({"connector": {"login": "c", "passcode": "p"}, "clients": {"a": "p"}, "x": 1}, "unknown"),
        (
            {"connector": {"login": "c", "passcode": "p"}, "clients": {"a": "p"},
             "topics": {"a": [">"]}},
            "not usable",
        ),
        (
            {"connector": {"login": "c", "passcode": "p"}, "clients": {"a": "p"},
             "topics": {"b": ["b"]}},
            "unknown client",
        ),
    ],
)  # fmt: skip
def test_bad_users_are_refused_without_echoing_passcodes(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(TenancyError, match=message) as caught:
        Tenancy.from_dict(data)
    assert "'p'" not in str(caught.value)


# -- authentication and TLS ---------------------------------------------------------------


def test_secure_broker_refuses_anonymous_and_accepts_its_user(
    secure_activemq: SecureBrokerHandle,
) -> None:
    host, port = secure_activemq.host, secure_activemq.stomp_port
    assert _stomp_command_at(host, port) == "ERROR"
    assert _stomp_command_at(host, port, {"login": "cucmconn", "passcode": "wrong"}) == "ERROR"
    good = {"login": secure_activemq.login, "passcode": secure_activemq.passcode}
    assert _stomp_command_at(host, port, good) == "CONNECTED"
    assert secure_activemq.passcode not in repr(secure_activemq)


def test_secure_broker_serves_stomp_over_tls(secure_activemq: SecureBrokerHandle) -> None:
    context = ssl.create_default_context(cafile=str(secure_activemq.cafile))
    port = int(secure_activemq.stomp_ssl_url.rsplit(":", 1)[1])
    good = {"login": secure_activemq.login, "passcode": secure_activemq.passcode}
    with (
        socket.create_connection((secure_activemq.host, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() is not None
        assert _stomp_connect(tls, good) == "CONNECTED"
    url = secure_activemq.url()
    assert url.startswith("stomp+ssl://cucmconn:") and "cafile=" in url
    assert secure_activemq.url(ssl=False, credentials=False) == secure_activemq.stomp_url


async def test_native_transport_over_tls_with_credentials(
    secure_activemq: SecureBrokerHandle,
) -> None:
    """Our stomp+ssl:// URL form (credentials, cafile) against a broker that demands both."""
    from cucmconn.errors import TransportError
    from cucmconn.transport import Message, open_transport

    transport = open_transport(secure_activemq.url(), reconnect=False)
    await transport.connect()
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    try:
        await transport.subscribe("/topic/tls-check", inbox.put_nowait)
        await transport.send("/topic/tls-check", "System#IN_SERVICE", correlation_id="c-tls")
        message = await asyncio.wait_for(inbox.get(), 10)
        assert (message.body, message.correlation_id) == (b"System#IN_SERVICE", "c-tls")
        assert secure_activemq.passcode not in transport.display_url
    finally:
        await transport.close()

    anonymous = open_transport(secure_activemq.url(credentials=False), reconnect=False)
    with pytest.raises(TransportError) as info:
        await anonymous.connect()
    await anonymous.close()
    assert secure_activemq.passcode not in str(info.value)


# -- fixture policy -----------------------------------------------------------------------


def test_missing_broker_skips_locally_but_fails_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no java"):
        _unavailable("no java")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run on CI: no java"):
        _unavailable("no java")


def test_external_broker_handle_has_no_process_control(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUCMCONN_TEST_STOMP_URL", "stomp://10.1.2.3:61613")
    monkeypatch.delenv("CUCMCONN_TEST_OPENWIRE_URL", raising=False)
    handle = _external_handle()
    assert handle is not None and not handle.controllable
    assert handle.openwire_url == "tcp://10.1.2.3:61616" and handle.openwire_port == 61616
    assert handle.aiostomp_url == "aiostomp://10.1.2.3:61613"
    with pytest.raises(pytest.skip.Exception, match="external broker"):
        handle.kill()
    monkeypatch.delenv("CUCMCONN_TEST_STOMP_URL")
    assert _external_handle() is None


def test_broker_dies_with_the_test_process(tmp_path: Path) -> None:
    """A killed pytest must not leave a JVM behind: the kernel signals the broker."""
    _require_activemq()
    stomp, openwire = free_ports(2)
    script = (
        "import os, sys\n"
        "from cucmconn.broker import LocalActiveMQ\n"
        f"b = LocalActiveMQ({str(tmp_path)!r}, stomp_port={stomp}, openwire_port={openwire},"
        " die_with_parent=True)\n"
        "b.start()\n"
        "print(b.pid, flush=True)\n"
        "os._exit(0)\n"  # like a SIGKILLed test run: no fixture teardown
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    orphan = LocalActiveMQ(tmp_path)
    deadline = time.monotonic() + 30
    while orphan.running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not orphan.running, f"broker pid {done.stdout.strip()} outlived its parent"
    orphan.stop()


def test_cli_foreground_stops_the_broker_on_sigterm(tmp_path: Path) -> None:
    _require_activemq()
    stomp, openwire = free_ports(2)
    cli = subprocess.Popen(
        [sys.executable, "-m", "cucmconn.broker", "start", "--foreground", "--dir", str(tmp_path),
         "--stomp-port", str(stomp), "--openwire-port", str(openwire)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert cli.stdout is not None and "running" in cli.stdout.readline()
        broker = LocalActiveMQ.from_state(tmp_path)
        assert broker.running
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(60) == 0
        assert not broker.running
        assert "is shutdown" in broker.log_path.read_text()
    finally:
        if cli.poll() is None:
            cli.kill()
        LocalActiveMQ.from_state(tmp_path).stop()
