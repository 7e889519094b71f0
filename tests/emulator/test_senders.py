"""The emulator's sender check (``require_sender``): the ownership rule, a mapping replacing
it, and the front refusing a command answered on a topic its sender does not own, on
memory:// (the real broker that stamps ``JMSXUserID`` is in tests/system/test_tenants.py).
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest

from cucmconn import Emulator
from cucmconn.cli.main import main as cli_main
from cucmconn.emulator.senders import SenderPolicy, default_topics, load_owners
from cucmconn.transport import Message, open_transport
from cucmconn.transport.memory import MemoryTransport
from tests.waiting import waiter

until = waiter(10.0)


@pytest.mark.parametrize(
    ("user", "destination", "owned"),
    [
        ("crm1", "/topic/crm1", True),
        ("crm1", "/topic/crm1.desk7", True),
        ("crm1", "/topic/crm1.a.b", True),
        ("crm1", "/topic/crm10", False),
        ("crm1", "/topic/crm1-x", False),
        ("crm1", "/topic/crm2", False),
        ("crm1", "/topic/x.crm1", False),
        ("crm1", "/queue/crm1", False),
        ("crm1", "/temp-topic/ID:crm1-1", False),
        (None, "/topic/crm1", False),
        ("", "/topic/crm1", False),
    ],
)
def test_default_rule(user: str | None, destination: str, owned: bool) -> None:
    assert SenderPolicy().owns(user, destination) is owned


def test_a_mapping_replaces_the_rule() -> None:
    policy = SenderPolicy({"crm1": ["desks.crm1.*", "/queue/crm1.replies", "shared.>"]})
    assert policy.owns("crm1", "/topic/desks.crm1.7")
    assert not policy.owns("crm1", "/topic/desks.crm1.7.8")  # * is one segment
    assert not policy.owns("crm1", "/topic/crm1")  # the default rule no longer applies
    assert policy.owns("crm1", "/queue/crm1.replies")
    assert not policy.owns("crm1", "/topic/crm1.replies")
    assert policy.owns("crm1", "/topic/shared.a.b")
    assert not policy.owns("crm1", "/topic/shared")
    assert not policy.owns("crm2", "/topic/crm2")  # a user the mapping does not name owns nothing


def test_default_topics_are_the_brokers_acl_patterns() -> None:
    assert default_topics("crm1") == ("crm1", "crm1.>")
    assert SenderPolicy({"crm1": list(default_topics("crm1"))}).owns("crm1", "/topic/crm1.x")


def test_owners_file_bare_or_users_file(tmp_path: Path) -> None:
    bare = tmp_path / "owners.json"
    bare.write_text(json.dumps({"crm1": ["crm1", "crm1.>"]}))
    assert load_owners(bare) == {"crm1": ["crm1", "crm1.>"]}
    users = tmp_path / "users.json"
    users.write_text(
        json.dumps(
            {
                "connector": {"login": "connector", "passcode": "p"},
                "clients": {"crm1": "a", "crm2": "b"},
                "topics": {"crm2": ["desks.crm2.>"]},
            }
        )
    )
    assert load_owners(users) == {"crm1": ["crm1", "crm1.>"], "crm2": ["desks.crm2.>"]}
    bad = tmp_path / "bad.json"
    bad.write_text('{"crm1": "crm1"}')
    with pytest.raises(ValueError, match="expected"):
        load_owners(bad)
    bad.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_owners(bad)


def test_owners_need_require_sender() -> None:
    with pytest.raises(ValueError, match="require_sender"):
        Emulator(owners={"crm1": ["crm1"]})
    assert cli_main(["emulate", "--owners", "/nonexistent.json"]) == 2


async def test_front_refuses_a_sender_that_does_not_own_the_reply_topic(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """On memory:// the test plays the broker and stamps JMSXUserID itself."""
    caplog.set_level(logging.WARNING, logger="cucmconn.emulator")
    url = f"memory://senders-{uuid.uuid4().hex[:8]}"
    async with Emulator(url, require_sender=True, licenses=5) as emu:
        raw = open_transport(url)
        await raw.connect()
        got: dict[str, list[Message]] = {"crm1": [], "crm2": []}
        for name, bucket in got.items():
            await raw.subscribe(f"/topic/{name}", bucket.append)

        async def send(jms_type: str, body: str, reply: str | None, user: str | None) -> None:
            headers = {"JMSXUserID": user} if user else {}
            await raw.send(
                "/queue/Connector1",
                body,
                jms_type=jms_type,
                correlation_id=jms_type,
                reply_to=reply,
                ttl=10,
                headers=headers,
            )

        await send("Login#1001", "crm1", "/topic/crm1", "crm1")
        await until(lambda: emu.stats().agents_logged_in == 1)
        await send("Logout#1001", "", "/topic/crm1", "crm2")  # forged reply-to
        await send("Logout#1001", "", "/topic/crm1", None)  # no sender at all
        await send("Login#1002", "crm1", None, "crm2")  # topic named in the body, no reply-to
        await send("Logout#", "", "/topic/crm1", "crm2")  # malformed: no PLEASE_RETRY there
        await send("Hello#crm2", "", "/topic/crm2", "crm2")  # its own topic: served
        await until(lambda: any(m.correlation_id == "Hello#crm2" for m in got["crm2"]))
        await emu.drain()
        stats = emu.stats()
        assert stats.refused_sender == 4
        assert stats.agents_logged_in == 1  # 1001 still in, 1002 never logged in
        assert [m.correlation_id for m in got["crm1"]] == ["Login#1001"] * len(got["crm1"])
        refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        # one line a second at most: the first refusal, the rest counted in the next line
        assert refusals and "Logout" in refusals[0] and "'crm2'" in refusals[0]
        assert "/topic/crm1" in refusals[0]
        await raw.close()


async def test_without_the_check_a_forged_reply_to_is_obeyed() -> None:
    """The "before" of docs/reliability.md: an open emulator executes the forged Logout."""
    url = f"memory://senders-{uuid.uuid4().hex[:8]}"
    async with Emulator(url, licenses=5) as emu:
        raw = open_transport(url)
        await raw.connect()
        for jms_type, body in (("Login#1001", "crm1"), ("Logout#1001", "")):
            await raw.send(
                "/queue/Connector1",
                body,
                jms_type=jms_type,
                reply_to="/topic/crm1",
                ttl=10,
                headers={"JMSXUserID": "crm2" if body == "" else "crm1"},
            )
        await emu.drain()
        await until(lambda: emu.stats().commands_executed == 2)
        assert emu.stats().agents_logged_in == 0 and emu.stats().refused_sender == 0
        await raw.close()


async def test_a_lost_link_is_counted_and_its_reconnect_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The transport logs "connection lost"; the emulator must also say when it serves again."""
    caplog.set_level(logging.WARNING, logger="cucmconn.emulator")
    transport = open_transport(f"memory://link-{uuid.uuid4().hex[:8]}")
    assert isinstance(transport, MemoryTransport)
    async with Emulator(transport=transport) as emu:
        transport.simulate_disconnect()
        transport.simulate_reconnect()
        stats = emu.stats()
        assert (stats.links_lost, stats.reconnects) == (1, 1)
    lines = [r.getMessage() for r in caplog.records if "reconnected" in r.getMessage()]
    assert len(lines) == 1 and "after" in lines[0]
