"""Record the scenario against the emulator, replay it, and run the same script against it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cucmconn import (
    Client,
    CommandError,
    CommandTimeout,
    DialogState,
    Emulator,
    InboundCall,
    SystemStatus,
)
from cucmconn.trace import Replayer, TraceError, TraceRecorder, read_trace
from cucmconn.trace.format import TraceRecord, redact_command_body
from cucmconn.trace.plan import plan_trace
from cucmconn.transport.base import Message, correlation_id_of, jms_type_of, reply_to_of
from tests.activemq import BrokerHandle
from tests.scenario import AGENTS, CUSTOMER, application, normalised


async def record(path: Path, event_format: str, url: str = "memory://rec") -> list[object]:
    emulator = Emulator(url, extensions="1000-1099", event_format=event_format)
    client = Client(url, client_destination="crm-rec", connect_timeout=0.2, record=path)
    async with emulator, client:
        return list(await application(client, lambda: emulator.place_call(CUSTOMER, AGENTS[0])))


@pytest.mark.parametrize("event_format", ["default", "json"])
async def test_record_then_replay_gives_the_same_events(tmp_path: Path, event_format: str) -> None:
    path = tmp_path / "run.jsonl"
    recorded = await record(path, event_format)
    trace = read_trace(path)
    assert trace.header.version == 1 and trace.dropped == 0
    assert len(trace.commands()) >= 12 and len(trace.events()) >= len(recorded)
    async with Replayer(path, "memory://replay") as replayer:
        async with Client(
            "memory://replay", client_destination="app-2", connect_timeout=0.2
        ) as client:
            replayed = await application(client)  # no emulator: the trace rings the customer
        stats = replayer.stats()
    assert normalised(replayed) == normalised(recorded)  # type: ignore[arg-type]
    assert stats.commands_unanswered == 0 and stats.commands_left == 0
    assert stats.unsolicited_sent > 0


async def test_trace_lines_keep_the_headers_and_times(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    await record(path, "default")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["format"] == "cucmconn-trace" and lines[0]["version"] == 1
    assert lines[-1]["end"] is True and lines[-1]["dropped"] == 0
    out = [r for r in lines[1:-1] if r["dir"] == "out"]
    assert {"type", "correlation-id", "reply-to", "expires"} <= set(out[0]["headers"])
    assert out[0]["headers"]["type"] == "Hello#crm-rec" and out[0]["dest"] == "/queue/Connector1"
    incoming = [r for r in lines[1:-1] if r["dir"] == "in"]
    assert all("message-id" in r["headers"] for r in incoming)
    assert all(r["mono"] >= lines[0]["mono"] for r in lines[1:-1])
    assert [r["seq"] for r in lines[1:-1]] == list(range(1, len(lines) - 1))


async def test_recorder_to_a_stream_is_left_open(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with path.open("wb") as stream:
        recorder = TraceRecorder(stream)
        async with (
            Emulator("memory://s"),
            Client("memory://s", client_destination="s1", record=recorder) as client,
        ):
            await client.agent("1001").login()
        recorder.close()
        assert not stream.closed
    trace = read_trace(path)
    assert [c.jms_type for c in trace.commands()] == ["Hello#s1", "Login#1001"]


async def test_replay_over_activemq(tmp_path: Path, activemq: BrokerHandle) -> None:
    """The same trace, replayed through a real broker to the unchanged script."""
    for event_format in ("default", "json"):
        path = tmp_path / f"{event_format}.jsonl"
        recorded = await record(path, event_format)
        queue = f"Replay-{event_format}"
        async with Replayer(path, activemq.stomp_url, queue=queue) as replayer:
            async with Client(
                activemq.stomp_url, queue=queue, client_destination=f"app-{event_format}"
            ) as client:
                replayed = await application(client)
            assert replayer.stats().commands_unanswered == 0
        assert normalised(replayed) == normalised(recorded)  # type: ignore[arg-type]


async def test_connection_ids_and_times_are_renamed_consistently(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    await record(path, "default")
    recorded_ids = set(plan_trace(read_trace(path)).connection_ids)
    replayer = Replayer(path, "memory://ids", connection_id_base=7000)
    client = Client("memory://ids", client_destination="ids", connect_timeout=0.2)
    async with replayer, client:
        replayed = await application(client)
    live_ids = {e.connection_id for e in replayed if isinstance(e, (DialogState, InboundCall))}
    assert live_ids and not live_ids & recorded_ids
    assert all(cid.isdigit() and int(cid) >= 7000 for cid in live_ids if cid)


@pytest.mark.parametrize("answer", ["CF_INVALID_OBJECT_STATE", "PLEASE_RETRY", None])
async def test_a_command_the_trace_cannot_answer(tmp_path: Path, answer: str | None) -> None:
    path = tmp_path / "run.jsonl"
    await record(path, "default")
    async with Replayer(path, "memory://u", unanswered=answer) as replayer:
        async with Client("memory://u", client_destination="u", connect_timeout=0.2) as c:
            if answer is None:
                with pytest.raises(CommandTimeout):
                    await c.send("MakeCall", "1050", "1051", ttl=0.3)
            else:
                with pytest.raises(CommandError) as failed:
                    await c.send("MakeCall", "1050", "1051")
                assert failed.value.code == answer
        stats = replayer.stats()
    assert stats.commands_unanswered == 1
    assert list(replayer.unanswered_commands) == ["MakeCall#1050"]


async def test_keepalives_past_the_trace_repeat_the_last_answer(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    await record(path, "default")
    async with Replayer(path, "memory://k") as replayer:
        async with Client("memory://k", client_destination="k", connect_timeout=0.2) as c:
            for _ in range(3):
                event = await c.send("Beat", "k")
                assert event == SystemStatus("IN_SERVICE")
        assert replayer.stats().keepalives_repeated >= 3


def test_recorder_counts_drops_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "drops.jsonl"
    recorder = TraceRecorder(path, max_queue=2)
    for n in range(5):
        recorder.record_sent("/queue/Connector1", {"type": f"GetState#{n}"}, "")
    assert recorder.dropped == 3
    recorder.start("stomp://user:secret@broker:61613?passcode=hush")
    recorder.close()
    text = path.read_text()
    assert "secret" not in text and "hush" not in text and "user" not in text
    trace = read_trace(path)
    assert trace.dropped == 3 and len(trace.records) == 2
    assert trace.header.url == "stomp://***@broker:61613?passcode=***"


async def test_credentials_are_never_written(tmp_path: Path) -> None:
    path = tmp_path / "secret.jsonl"
    async with (
        Emulator("memory://c"),
        Client("memory://c", client_destination="c", record=path) as client,
    ):
        with pytest.raises(CommandError):
            await client.send("MobileAgentLogin", "1001", "pa55word", "1001", "5551234", "NAILED")
    text = path.read_text()
    assert "pa55word" not in text
    sent = [r for r in read_trace(path).commands() if r.jms_type.startswith("MobileAgentLogin")]
    assert sent[0].body == "***,1001,5551234,NAILED"
    assert redact_command_body("Connect#1001", "pa55word") == "***"
    assert redact_command_body("Login#1001", "crm-1") == "crm-1"


def test_a_bad_trace_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"format":"cucmconn-trace","version":1}\n{"dir":"sideways"}\n')
    with pytest.raises(TraceError, match=r"bad\.jsonl:2"):
        read_trace(path)
    path.write_text('{"format":"cucmconn-trace","version":9}\n')
    with pytest.raises(TraceError, match="version 9"):
        read_trace(path)
    path.write_text("")
    with pytest.raises(TraceError, match="empty"):
        read_trace(path)


@pytest.mark.parametrize(
    "headers",
    [
        {"type": "Login#1001", "correlation-id": "c7", "reply-to": "/topic/desk"},
        {"type": "", "correlation-id": "", "reply-to": ""},
        {},
    ],
)
def test_a_record_and_a_message_read_the_jms_headers_alike(headers: dict[str, str]) -> None:
    """One reading of JMSType, JMSCorrelationID and JMSReplyTo (transport.base), used by the live
    Message and by a trace's TraceRecord: an empty id or reply-to is None on both."""
    message = Message("/queue/Connector1", b"", headers)
    record = TraceRecord(
        dir="out", seq=1, wall=0.0, mono=0.0, dest="/queue/Connector1", headers=headers
    )
    expected = (
        headers.get("type", ""),
        headers.get("correlation-id") or None,
        headers.get("reply-to") or None,
    )
    assert (message.jms_type, message.correlation_id, message.reply_to) == expected
    assert (record.jms_type, record.correlation_id, record.reply_to) == expected
    assert (jms_type_of(headers), correlation_id_of(headers), reply_to_of(headers)) == expected
