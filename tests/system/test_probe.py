"""``cucmconn probe`` against real brokers: the emulator, the Java JMS stand-in of the
connector (OpenWire), a queue nobody consumes (a stopped connector), and refused credentials."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cucmconn import Emulator
from cucmconn.cli.main import EXIT_FAILED, EXIT_OK, main_async
from tests.activemq import BrokerHandle, SecureBrokerHandle
from tests.system.test_activemq_broker import _fill_until_blocked

ESSENTIAL = ("tcp", "stomp", "credentials", "subscribe", "send", "hello")


async def probe(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = await main_async(["probe", "--json", "--wait", "3", *argv])
    out, _ = capsys.readouterr()
    report: dict[str, Any] = json.loads(out)
    assert report["ok"] is (code == EXIT_OK)
    return code, report["checks"]


def verdicts(checks: dict[str, Any]) -> dict[str, str]:
    return {name: check["verdict"] for name, check in checks.items()}


async def test_probe_the_emulator_on_activemq(
    capsys: pytest.CaptureFixture[str], activemq: BrokerHandle
) -> None:
    async with Emulator(activemq.stomp_url, queue="ProbeEmu") as emulator:
        code, checks = await probe(
            capsys, "--url", activemq.stomp_url, "--queue", "ProbeEmu", "--agent", "1001"
        )
        assert emulator.stats().agents_logged_in == 0  # read-only: nobody was logged in
    assert code == EXIT_OK
    seen = verdicts(checks)
    assert all(seen[name] == "pass" for name in ESSENTIAL), checks
    assert "STOMP 1.2, server ActiveMQ" in checks["stomp"]["figure"]
    assert checks["hello"]["figure"].startswith("System#IN_SERVICE in ")
    assert seen["beat"] == seen["correlation"] == "pass"
    assert checks["correlation"]["figure"] == "echoed"
    assert checks["agent"]["figure"].startswith("LOGOUT")
    assert checks["format"]["figure"] == "#"
    assert checks["timestamps"]["figure"] == "yyyy-MM-dd HH:mm:ss"
    assert seen["clock_skew"] == "pass"  # same host: the broker's timestamps agree with ours
    assert seen["flow_control"] == "pass" and seen["socket_buffers"] == "pass"
    assert seen["cesu8"] in ("pass", "warn")  # depends on the ActiveMQ version
    assert list(checks)[:6] == list(ESSENTIAL)


@pytest.fixture
async def java_connector(
    activemq: BrokerHandle, connector_peer_classpath: str
) -> AsyncIterator[str]:
    """The Java JMS peer on queue ProbeJava, answering every command System#IN_SERVICE."""
    template = base64.b64encode(b"System#IN_SERVICE").decode()
    process = await asyncio.create_subprocess_exec(
        "java", "-Xmx128m", "-cp", connector_peer_classpath, "ConnectorPeer",
        activemq.openwire_url, "ProbeJava", template, "50", "120", "quiet",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    ready = json.loads(await asyncio.wait_for(process.stdout.readline(), 60))
    assert ready["event"] == "ready"
    try:
        yield "ProbeJava"
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_probe_the_java_jms_connector(
    capsys: pytest.CaptureFixture[str], activemq: BrokerHandle, java_connector: str
) -> None:
    code, checks = await probe(capsys, "--url", activemq.stomp_url, "--queue", java_connector)
    assert code == EXIT_OK, checks
    seen = verdicts(checks)
    assert all(seen[name] == "pass" for name in ESSENTIAL)
    assert checks["hello"]["figure"].startswith("System#IN_SERVICE")
    assert checks["correlation"]["figure"] == "echoed"  # JMSCorrelationID copied by the peer
    assert checks["format"]["figure"] == "#"
    assert seen["timestamps"] == "info"  # System#IN_SERVICE carries no time
    assert seen["clock_skew"] == "pass"  # JMSTimestamp from the Java producer's clock


async def test_probe_a_stopped_connector(
    capsys: pytest.CaptureFixture[str], activemq: BrokerHandle
) -> None:
    code, checks = await probe(capsys, "--url", activemq.stomp_url, "--queue", "NobodyHome")
    assert code == EXIT_FAILED
    seen = verdicts(checks)
    assert [seen[n] for n in ESSENTIAL] == ["pass"] * 5 + ["fail"]
    assert "NobodyHome" in checks["hello"]["advice"]
    assert seen["beat"] == "warn" and seen["correlation"] == "skip"


async def test_probe_a_stopped_broker(capsys: pytest.CaptureFixture[str]) -> None:
    code, checks = await probe(capsys, "--url", "stomp://127.0.0.1:9")
    assert code == EXIT_FAILED
    assert checks["tcp"]["verdict"] == "fail"
    assert {c["verdict"] for name, c in checks.items() if name != "tcp"} == {"skip"}


async def test_probe_refused_credentials(
    capsys: pytest.CaptureFixture[str], secure_activemq: SecureBrokerHandle
) -> None:
    wrong = secure_activemq.url(ssl=False, credentials=False).replace(
        "stomp://", f"stomp://{secure_activemq.login}:not-the-passcode@"
    )
    code = await main_async(["probe", "--url", wrong, "--wait", "3"])
    out, err = capsys.readouterr()
    assert code == EXIT_FAILED
    assert "not-the-passcode" not in out + err
    code, checks = await probe(capsys, "--url", wrong)
    assert checks["credentials"]["verdict"] == "fail" and checks["tcp"]["verdict"] == "pass"
    code, checks = await probe(capsys, "--url", secure_activemq.url(ssl=True))
    assert checks["credentials"]["figure"] == "accepted" and checks["tcp"]["verdict"] == "pass"
    assert "(TLS)" in checks["tcp"]["figure"]
    assert code == EXIT_FAILED  # no connector answers on that broker


README = Path(__file__).resolve().parents[2] / "README.md"


def masked(text: str) -> list[str]:
    """Lines with what varies run to run masked: figures, ports, the probe's topic, the skew's
    sign, the sample time."""
    text = re.sub(r"cucmconn-probe-[0-9a-f]{8}", "cucmconn-probe-X", text)
    text = re.sub(r"ahead of|behind", "vs", text)
    return [re.sub(r"\d+(\.\d+)?", "N", line) for line in text.splitlines()]


async def test_readme_probe_output_is_what_the_command_prints(
    capsys: pytest.CaptureFixture[str], activemq: BrokerHandle
) -> None:
    text = README.read_text(encoding="utf-8")
    shown = re.search(r"<!-- probe output[^>]*-->\n```text\n(.*?)```", text, re.S)
    assert shown, "README lost its probe output"
    async with Emulator(activemq.stomp_url, queue="ProbeReadme"):
        code = await main_async(
            ["probe", "--url", activemq.stomp_url, "--queue", "ProbeReadme", "--agent", "1001"]
        )
    out, _ = capsys.readouterr()
    assert code == EXIT_OK
    printed = out.replace("/queue/ProbeReadme", "/queue/Connector1")
    assert masked(printed) == masked(shown.group(1))


async def test_probe_finds_producer_flow_control(
    capsys: pytest.CaptureFixture[str], throttled_activemq: BrokerHandle
) -> None:
    """Connector1 full (1 MB limit, nobody consuming): the broker stops reading the probe."""
    blocked = await asyncio.to_thread(
        _fill_until_blocked, throttled_activemq.host, throttled_activemq.stomp_port, 20
    )
    assert blocked is not None, "the queue never filled"
    code, checks = await probe(capsys, "--url", throttled_activemq.stomp_url)
    assert code == EXIT_FAILED
    seen = verdicts(checks)
    assert seen["tcp"] == seen["stomp"] == seen["subscribe"] == "pass"
    assert seen["hello"] in ("fail", "skip") and seen["flow_control"] == "warn", checks
    assert "memory limit" in checks["flow_control"]["advice"]
    assert seen["socket_buffers"] == "skip"  # the link is held: a burst would prove nothing
