"""Access, for real: ActiveMQ's simple authentication and ``stomp+ssl`` with a certificate the
test suite makes, wrong credentials and untrusted certificates, secrets kept out of every log
line, repr and exception, and injection refused before anything reaches the broker.

The secure broker (``secure_activemq`` in ``tests/activemq.py``) refuses anonymous clients and
serves STOMP over TLS with a self-signed certificate for 127.0.0.1 made by ``keytool``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from cucmconn import BrokerError, Client, CommandError, DialogState, Emulator, TransportError
from cucmconn.transport import Message, open_transport
from cucmconn.transport.stompsession import StompSession
from tests.activemq import SecureBrokerHandle
from tests.fakeconnector import FakeConnector

pytestmark = pytest.mark.activemq

WRONG = "Wr0ng-Pa55-" + uuid.uuid4().hex[:8]


def _texts(exc: BaseException) -> Iterator[str]:
    """str and repr of an exception, of its args, and of everything in its cause chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield from (repr(arg) for arg in current.args)
        current = current.__cause__ or current.__context__


def assert_no_secret(secrets: list[str], *texts: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"secret leaked into: {text[:200]!r}"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # everything, every logger: the strictest place to look
    return caplog


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record, formatted with its arguments and any traceback."""
    handler = logging.Formatter("%(name)s %(levelname)s %(message)s")
    out = []
    for record in caplog.records:
        out.append(handler.format(record))
        if record.exc_info and record.exc_info[1] is not None:
            out.extend(_texts(record.exc_info[1]))
    return "\n".join(out)


def _wrong_urls(broker: SecureBrokerHandle) -> dict[str, str]:
    plain = broker.url(ssl=False, credentials=False)
    tls = broker.url(ssl=True, credentials=False)
    user = quote(broker.login, safe="")

    def with_userinfo(url: str, password: str) -> str:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://{user}:{quote(password, safe='')}@{rest}"

    return {
        "aiostomp, wrong passcode": with_userinfo("aio" + plain, WRONG),
        "plain, wrong passcode": with_userinfo(plain, WRONG),
        "tls, wrong passcode": with_userinfo(tls, WRONG),
        "plain, passcode in the query": f"{plain}?login={user}&passcode={quote(WRONG)}",
        "plain, unknown user": with_userinfo(plain, WRONG).replace(user, "nobody", 1),
        "plain, anonymous": plain,
    }


@pytest.mark.parametrize(
    "case",
    [
        "aiostomp, wrong passcode",
        "plain, wrong passcode",
        "tls, wrong passcode",
        "plain, passcode in the query",
        "plain, unknown user",
        "plain, anonymous",
    ],
)
async def test_refused_credentials_are_a_clear_broker_error_without_secrets(
    secure_activemq: SecureBrokerHandle, debug_logs: pytest.LogCaptureFixture, case: str
) -> None:
    url = _wrong_urls(secure_activemq)[case]
    secrets = [WRONG, secure_activemq.passcode]
    transport = open_transport(url, reconnect=False)
    with pytest.raises(BrokerError) as caught:
        await transport.connect()
    assert (
        "User name [" in caught.value.broker_message or "credentials" in str(caught.value).lower()
    )
    client = Client(url, ttl=2.0, handshake_timeout=3.0)
    with pytest.raises(TransportError) as via_client:
        await client.connect()
    assert isinstance(via_client.value, BrokerError)
    assert_no_secret(
        secrets,
        *_texts(caught.value),
        *_texts(via_client.value),
        repr(transport),
        transport.display_url,
        repr(client),
        client.display_url,
        _log_text(debug_logs),
    )
    print(f"\nFIGURE auth [{case}]: {type(caught.value).__name__}: {caught.value}")


@pytest.mark.parametrize("scheme", ["stomp+ssl", "aiostomp+ssl"])
async def test_good_credentials_over_tls_full_flow_leaks_nothing(
    secure_activemq: SecureBrokerHandle, debug_logs: pytest.LogCaptureFixture, scheme: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    url = scheme + secure_activemq.url(ssl=True).removeprefix("stomp+ssl")
    fake = await FakeConnector(open_transport(url), queue=f"/queue/Sec-{tag}").start()
    try:
        async with Client(url, queue=f"Sec-{tag}", client_destination=f"sec-{tag}") as client:
            agent = client.agent("63001")
            await agent.login()
            dialog = await agent.make_call("63002")
            assert isinstance(dialog, DialogState) and dialog.connection_id
            await agent.release(dialog.connection_id)
            assert client.in_service
            texts = [repr(client), client.display_url, repr(client.transport), repr(agent)]
            session = getattr(client.transport, "_session", None)
            if isinstance(session, StompSession):
                texts.append(repr(session))
    finally:
        await fake.stop()
    assert_no_secret([secure_activemq.passcode], *texts, _log_text(debug_logs))
    assert any("connected to" in r.getMessage() for r in debug_logs.records)


async def test_untrusted_certificate_is_a_clear_transport_error(
    secure_activemq: SecureBrokerHandle, debug_logs: pytest.LogCaptureFixture
) -> None:
    no_ca = secure_activemq.url(ssl=True).split("?")[0]  # system CAs only: ours is self-signed
    client = Client(no_ca, handshake_timeout=3.0)
    with pytest.raises(TransportError, match=r"TLS handshake failed: .*certificate") as caught:
        await client.connect()
    assert not isinstance(caught.value, BrokerError)
    assert_no_secret([secure_activemq.passcode], *_texts(caught.value), _log_text(debug_logs))
    print(f"\nFIGURE tls-untrusted: {caught.value}")


async def test_wrong_ca_is_refused_too(secure_activemq: SecureBrokerHandle, tmp_path: Path) -> None:
    """A CA file that exists but did not sign the broker's certificate."""
    other = ssl.create_default_context()
    other.load_verify_locations(cadata=_unrelated_ca_pem(tmp_path))
    transport = open_transport(
        secure_activemq.url(ssl=True).split("?")[0], ssl=other, reconnect=False
    )
    with pytest.raises(TransportError, match="TLS handshake failed"):
        await transport.connect()


def _unrelated_ca_pem(tmp_path: Path) -> str:
    import shutil
    import subprocess

    keytool = shutil.which("keytool")
    if keytool is None:
        pytest.skip("keytool is needed to make an unrelated certificate")
    store = tmp_path / "other.p12"
    pem = tmp_path / "other.pem"
    common = ["-keystore", str(store), "-storetype", "PKCS12", "-storepass", "changeit"]
    subprocess.run(
        [keytool, "-genkeypair", "-alias", "o", "-keyalg", "RSA", "-keysize", "2048",
         "-validity", "2", "-dname", "CN=127.0.0.1", *common],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [keytool, "-exportcert", "-rfc", "-alias", "o", "-file", str(pem), *common],
        check=True, capture_output=True,
    )  # fmt: skip
    return pem.read_text()


@pytest.mark.parametrize("mismatch", ["tls client to the plain port", "plain client to tls port"])
async def test_protocol_mismatch_is_a_clear_error_not_a_hang(
    secure_activemq: SecureBrokerHandle, mismatch: str
) -> None:
    plain, tls = secure_activemq.url(ssl=False), secure_activemq.url(ssl=True)
    if mismatch == "tls client to the plain port":
        port = plain.split("@", 1)[1].split("?")[0].rsplit(":", 1)[1]
        url = tls.split("?")[0].rsplit(":", 1)[0] + f":{port}?" + tls.split("?")[1]
    else:
        port = tls.split("@", 1)[1].split("?")[0].rsplit(":", 1)[1]
        url = plain.rsplit(":", 1)[0] + f":{port}"
    transport = open_transport(url, reconnect=False, connect_timeout=3.0)
    with pytest.raises(TransportError) as caught:
        await asyncio.wait_for(transport.connect(), 10.0)
    assert_no_secret([secure_activemq.passcode], *_texts(caught.value))
    print(f"\nFIGURE mismatch [{mismatch}]: {caught.value}")


# -- injection refused before sending -------------------------------------------------------------


class QueueTap:
    """The ONLY consumer of a command queue: records every message, answers Hello/Beat."""

    def __init__(self, url: str, queue: str) -> None:
        self.transport = open_transport(url)
        self.queue = queue
        self.seen: list[Message] = []

    async def start(self) -> QueueTap:
        await self.transport.connect()
        await self.transport.subscribe(self.queue, self._on_message)
        return self

    def _on_message(self, message: Message) -> None:
        self.seen.append(message)
        if message.jms_type.startswith(("Hello#", "Beat#")) and message.reply_to:
            asyncio.get_running_loop().create_task(
                self.transport.send(
                    message.reply_to, "System#IN_SERVICE", correlation_id=message.correlation_id
                )
            )

    async def close(self) -> None:
        await self.transport.close()


INJECTIONS = ["1001,1002", "1001#Logout", "1001|x", "10\n01", "1001\x00"]


def _attempts(client: Client, bad: str) -> list[tuple[str, Callable[[], Any]]]:
    agent = client.agent("64001")
    return [
        ("agent(bad)", lambda: client.agent(bad)),
        ("make_call(bad)", lambda: agent.make_call(bad)),
        ("answer(bad)", lambda: agent.answer(bad)),
        ("blind_transfer(cid, other=bad)", lambda: agent.blind_transfer("17", other=bad)),
        ("consult(bad, other=ext)", lambda: agent.consult(bad, other="64002")),
        ("transfer(bad)", lambda: agent.transfer(bad)),
        ("conference(cid, other=bad)", lambda: agent.conference("17", other=bad)),
        ("send(MakeCall, bad)", lambda: client.send("MakeCall", bad, "64002")),
        ("send(GetState, ext, bad)", lambda: client.send("GetState", "64001", bad)),
        ("send(bad name)", lambda: client.send(bad, "64001")),
        ("Client(destination=bad)", lambda: Client("memory://", client_destination=bad)),
    ]


async def test_injection_is_refused_before_anything_reaches_the_broker(
    secure_activemq: SecureBrokerHandle,
) -> None:
    tag = uuid.uuid4().hex[:8]
    url = secure_activemq.url(ssl=False)
    tap = await QueueTap(url, f"/queue/Inj-{tag}").start()
    refused = 0
    try:
        async with Client(url, queue=f"Inj-{tag}", client_destination=f"inj-{tag}") as client:
            baseline = len(tap.seen)
            for bad in INJECTIONS:
                for _what, attempt in _attempts(client, bad):
                    with pytest.raises((ValueError, TypeError)):
                        result = attempt()
                        if asyncio.iscoroutine(result):
                            await result
                    refused += 1
            await asyncio.sleep(0.5)  # anything that slipped through would have arrived by now
            after = tap.seen[baseline:]
            assert [
                m.jms_type.split("#")[0]
                for m in after
                if not m.jms_type.startswith(("Hello#", "Beat#"))
            ] == [], f"reached the broker: {[m.jms_type for m in after]}"
            assert client.stats().sent == sum(
                1 for m in tap.seen if m.jms_type.startswith(("Hello#", "Beat#"))
            )
    finally:
        await tap.close()
    print(f"\nFIGURE injection: {refused} injecting calls refused, 0 reached the queue")


# -- one client cannot drive another's agents ----------------------------------------------------


async def test_agent_of_one_client_cannot_be_controlled_from_another(
    secure_activemq: SecureBrokerHandle,
) -> None:
    tag = uuid.uuid4().hex[:8]
    url = secure_activemq.url(ssl=True)
    queue = f"Own-{tag}"
    async with (
        Emulator(url, queue=queue, extensions="66000-66009"),
        Client(url, queue=queue, client_destination=f"owner-{tag}") as owner,
        Client(url, queue=queue, client_destination=f"intruder-{tag}") as intruder,
    ):
        mine, callee = owner.agent("66001"), owner.agent("66002")
        await mine.login()
        await callee.login()
        dialog = await mine.make_call("66002")
        assert isinstance(dialog, DialogState) and dialog.connection_id
        cid = dialog.connection_id
        for _ in range(500):
            if cid in callee.calls:
                break
            await asyncio.sleep(0.01)
        await callee.answer(cid)
        theirs = intruder.agent("66001")
        attempts = {
            "Login": theirs.login(),
            "Logout": theirs.logout(),
            "HoldCall": theirs.hold(cid),
            "ReleaseCall": theirs.release(cid),
            "MakeCall": theirs.make_call("66003"),
            "Transfer_sst": theirs.blind_transfer(cid, other="66003"),
        }
        codes = {}
        for name, attempt in attempts.items():
            with pytest.raises(CommandError) as caught:
                await attempt
            codes[name] = caught.value.code
        assert set(codes.values()) == {"PRIVILLEGE_VIOLATION"}, codes
        assert mine.state != "LOGOUT" and cid in mine.calls  # nothing happened to the call
        await mine.hold(cid)  # and the owner still drives it
        await mine.release(cid)
        assert mine.calls == {}
    print(f"\nFIGURE ownership: {len(codes)} foreign commands -> PRIVILLEGE_VIOLATION each")


async def test_bug_command_without_reply_to_bypasses_ownership(activemq: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    async with (
        Emulator(activemq.stomp_url, queue=f"NoReply-{tag}", extensions="66000-66009"),
        Client(activemq.stomp_url, queue=f"NoReply-{tag}", client_destination=f"o-{tag}") as owner,
    ):
        agent = owner.agent("66001")
        await agent.login()
        raw = open_transport(activemq.stomp_url)
        await raw.connect()
        try:
            await raw.send(f"/queue/NoReply-{tag}", "", jms_type="Logout#66001", ttl=5.0)
            await asyncio.sleep(1.0)
            await agent.get_state()
        finally:
            await raw.close()
        assert agent.state == "READY"
