"""``cucmconn.otel``: every metric and span after a scripted session, read with the SDK's
in-memory metric reader and span exporter.

The session (against the scripted fake connector on memory://) has an answered command, an
``#Error#`` answer, a timeout, a malformed message, an outage refusal (unavailable) and a dropped
link with a reconnect, so each outcome and each observed counter has something to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from cucmconn import (
    Client,
    CommandError,
    CommandTimeout,
    ConnectionLost,
    ServiceUnavailable,
)
from cucmconn.client import ClientObserver, CommandFinished
from cucmconn.emulator import Emulator
from cucmconn.otel import Instrumentation, instrument, instrument_emulator
from cucmconn.transport.memory import MemoryTransport
from tests.fakeconnector import FakeConnector, Reply
from tests.waiting import waiter

DEST = "crm-otel"
TOPIC = f"/topic/{DEST}"
until = waiter(5.0)


def _points(data: MetricsData | None) -> dict[str, list[Any]]:
    """Metric name -> its data points, over every resource and scope."""
    out: dict[str, list[Any]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "cucmconn"
            for metric in scope.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def _by(points: list[Any], **attributes: str) -> list[Any]:
    return [p for p in points if all(p.attributes.get(k) == v for k, v in attributes.items())]


def _value(points: list[Any], **attributes: str) -> int:
    found = _by(points, **attributes)
    assert len(found) == 1, (attributes, [p.attributes for p in points])
    return int(found[0].value)


class Session:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.exporter = InMemorySpanExporter()
        self.meters = MeterProvider(metric_readers=[self.reader])
        self.tracers = TracerProvider()
        self.tracers.add_span_processor(SimpleSpanProcessor(self.exporter))

    def instrument(self, client: Client) -> Instrumentation:
        return instrument(client, meter_provider=self.meters, tracer_provider=self.tracers)

    def spans(self, command: str) -> list[ReadableSpan]:
        spans = self.exporter.get_finished_spans()
        return [s for s in spans if (s.attributes or {}).get("cucmconn.command") == command]


async def test_metrics_and_spans_after_a_scripted_session(fake: FakeConnector) -> None:
    seen = Session()
    transport = MemoryTransport()
    async with Client(
        transport=transport,
        client_destination=DEST,
        ttl=2.0,
        connect_timeout=0.1,
        handshake_timeout=2.0,
    ) as client:
        handle = seen.instrument(client)
        agent = client.agent("7")
        await agent.login()
        await agent.get_state()
        fake.script["MakeCall"] = lambda c: [Reply(f"{c.target}#Error#INVALID_PARTY")]
        with pytest.raises(CommandError):
            await agent.make_call("8")
        fake.hold.add("HoldCall")
        with pytest.raises(CommandTimeout):
            await agent.hold("c1", ttl=0.1)
        await fake.push(TOPIC, "\x00\x01 not an event")
        await until(lambda: client.stats().malformed == 1)

        during = _points(seen.reader.get_metrics_data())
        assert _value(during["cucmconn.client.connector.in_service"]) == 1
        assert _value(during["cucmconn.client.agents.logged_in"]) == 1
        assert _value(during["cucmconn.client.commands.in_flight"]) == 0

        fake.hold.add("GetState")
        task = asyncio.create_task(agent.get_state())
        await until(lambda: len(fake.commands("GetState")) == 2)
        assert (
            _value(_points(seen.reader.get_metrics_data())["cucmconn.client.commands.in_flight"])
            == 1
        )
        transport.simulate_disconnect()
        with pytest.raises(ConnectionLost):
            await task
        down = _points(seen.reader.get_metrics_data())
        assert _value(down["cucmconn.client.connector.in_service"]) == 0
        fake.hold.discard("GetState")  # the resync after the reconnect reads agent 7 again
        transport.simulate_reconnect()
        await until(lambda: client.in_service and client.stats().in_flight == 0)

        fake.in_service = False
        await fake.push(TOPIC, "System#OUT_OF_SERVICE")
        await until(lambda: not client.in_service)
        with pytest.raises(ServiceUnavailable):
            await agent.release("c1")
        fake.in_service = True
        await until(lambda: client.in_service)

        metrics = _points(seen.reader.get_metrics_data())
        commands = metrics["cucmconn.client.commands"]
        assert _value(commands, **{"cucmconn.command": "Login", "cucmconn.outcome": "answered"})
        assert (
            _value(
                commands,
                **{
                    "cucmconn.command": "MakeCall",
                    "cucmconn.outcome": "error",
                    "cucmconn.error_code": "INVALID_PARTY",
                },
            )
            == 1
        )
        assert _value(commands, **{"cucmconn.command": "HoldCall", "cucmconn.outcome": "timeout"})
        assert (
            _value(
                commands, **{"cucmconn.command": "GetState", "cucmconn.outcome": "connection_lost"}
            )
            == 1
        )
        assert (
            _value(
                commands, **{"cucmconn.command": "ReleaseCall", "cucmconn.outcome": "unavailable"}
            )
            == 1
        )
        durations = metrics["cucmconn.client.command.duration"]
        timed = _by(durations, **{"cucmconn.command": "HoldCall", "cucmconn.outcome": "timeout"})
        assert len(timed) == 1 and timed[0].count == 1 and timed[0].sum >= 0.1
        # every counted command has its duration recorded under the same attributes
        assert sum(p.value for p in commands) == sum(p.count for p in durations)

        events = metrics["cucmconn.client.events"]
        assert (
            _value(
                events, **{"cucmconn.event.type": "malformed", "cucmconn.event.fate": "malformed"}
            )
            == 1
        )
        assert _by(
            events, **{"cucmconn.event.type": "AgentState", "cucmconn.event.fate": "resolved"}
        )
        assert _by(events, **{"cucmconn.event.type": "ErrorEvent"})
        assert _value(metrics["cucmconn.client.events.malformed"]) == 1
        assert _value(metrics["cucmconn.client.reconnects"]) == 1
        assert _value(metrics["cucmconn.client.events.dropped"]) == 0
        assert _value(metrics["cucmconn.client.connector.in_service"]) == 1
        assert _value(metrics["cucmconn.client.agents.logged_in"]) == 1

        # spans: one per command, messaging conventions, outcome, the connector's code
        (error,) = seen.spans("MakeCall")
        attrs = dict(error.attributes or {})
        assert error.name == "send Connector1" and error.kind is SpanKind.PRODUCER
        assert attrs["messaging.system"] == "activemq"
        assert attrs["messaging.destination.name"] == "Connector1"
        assert attrs["messaging.message.conversation_id"]
        assert attrs["cucmconn.agent"] == "7"
        assert attrs["cucmconn.outcome"] == "error"
        assert attrs["cucmconn.error_code"] == attrs["error.type"] == "INVALID_PARTY"
        assert error.status.status_code is StatusCode.ERROR
        (answered,) = seen.spans("Login")
        assert answered.status.status_code is StatusCode.UNSET
        assert (answered.attributes or {})["cucmconn.outcome"] == "answered"
        (timeout,) = seen.spans("HoldCall")
        assert (timeout.attributes or {})["error.type"] == "timeout"
        assert timeout.end_time is not None and timeout.start_time is not None
        assert timeout.end_time - timeout.start_time >= 100_000_000
        (refused,) = seen.spans("ReleaseCall")
        assert (refused.attributes or {})["error.type"] == "unavailable"
        assert "messaging.message.conversation_id" not in (refused.attributes or {})
        lost = [
            s
            for s in seen.spans("GetState")
            if (s.attributes or {})["cucmconn.outcome"] != "answered"
        ]
        assert [(s.attributes or {})["error.type"] for s in lost] == ["connection_lost"]
        cids = [
            (s.attributes or {}).get("messaging.message.conversation_id")
            for s in seen.exporter.get_finished_spans()
            if (s.attributes or {}).get("cucmconn.outcome") != "unavailable"
        ]
        assert len(cids) == len(set(cids))  # one span per command, one id each

        handle.uninstrument()
        assert not handle.active
        finished = len(seen.exporter.get_finished_spans())
        await agent.get_state()
        assert len(seen.exporter.get_finished_spans()) == finished
        after = _points(seen.reader.get_metrics_data())
        assert (
            "cucmconn.client.agents.logged_in" not in after
            or not after["cucmconn.client.agents.logged_in"]
        )
        handle.uninstrument()  # twice: harmless


def test_import_cucmconn_does_not_load_opentelemetry() -> None:
    code = (
        "import sys, cucmconn, cucmconn.client, cucmconn.cli.load\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_emulator_metrics_count_commands_and_error_codes() -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    url = "memory://otel-emulator"
    async with (
        Emulator(url, extensions="1000-1001", licenses=1) as emulator,
        Client(url, client_destination=DEST, ttl=2.0) as client,
    ):
        handle = instrument_emulator(emulator, meter_provider=meters)
        await client.agent("1000").login()
        with pytest.raises(CommandError):
            await client.agent("1001").login()  # one licence, already taken
        with pytest.raises(CommandError):
            await client.agent("1000").make_call("1000")  # itself: refused
        stats = emulator.stats()
        metrics = _points(reader.get_metrics_data())
        commands = metrics["cucmconn.emulator.commands"]
        assert _value(commands, **{"cucmconn.command": "Login"}) == 2
        assert _value(commands, **{"cucmconn.command": "MakeCall"}) == 1
        errors = metrics["cucmconn.emulator.errors"]
        assert sum(p.value for p in errors) == stats.errors_sent == 2
        assert {p.attributes["cucmconn.error_code"] for p in errors} == set(stats.errors_by_code)
        assert _value(metrics["cucmconn.emulator.agents.logged_in"]) == 1
        assert _value(metrics["cucmconn.emulator.licenses.used"]) == 1
        assert _value(metrics["cucmconn.emulator.licenses.limit"]) == 1
        assert _value(metrics["cucmconn.emulator.calls"]) == 0
        assert _value(metrics["cucmconn.emulator.in_service"]) == 1
        handle.uninstrument()
        assert reader.get_metrics_data() is None  # detached: nothing observed any more


class Durations(ClientObserver):
    """Every finished command's duration, by (command, outcome), as the client reported it."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], list[float]] = {}

    def command_finished(self, finished: CommandFinished) -> None:
        self.seen.setdefault((finished.command, finished.outcome), []).append(finished.duration)

    @property
    def count(self) -> int:
        return sum(len(d) for d in self.seen.values())


async def _get_states(client: Client, extensions: list[str], rounds: int) -> None:
    for _ in range(rounds):
        await asyncio.gather(*(client.agent(x).get_state() for x in extensions))


@contextlib.asynccontextmanager
async def _instrumented(
    name: str, agents: int
) -> AsyncIterator[tuple[Session, Durations, Client, list[str]]]:
    """An instrumented client on ``memory://<name>`` with ``agents`` agents logged in, a
    ``Durations`` observer beside the instrumentation; both detached on the way out."""
    seen, durations = Session(), Durations()
    url = f"memory://{name}"
    extensions = [str(x) for x in range(1000, 1000 + agents)]
    async with (
        Emulator(url, extensions=f"1000-{999 + agents}") as _emulator,
        Client(url, client_destination=DEST, ttl=2.0) as client,
    ):
        handle = seen.instrument(client)
        client.add_observer(durations)
        await asyncio.gather(*(client.agent(x).login() for x in extensions))
        yield seen, durations, client, extensions
        client.remove_observer(durations)
        handle.uninstrument()


async def test_each_collection_sees_every_duration_recorded_before_it() -> None:
    """The histogram's count, sum, min and max per series equal those of every command the
    client reported finished so far, at each collection."""
    async with _instrumented("otel-durations", 10) as (seen, durations, client, extensions):
        for rounds in (25, 1):
            await _get_states(client, extensions, rounds)
            points = _points(seen.reader.get_metrics_data())["cucmconn.client.command.duration"]
            assert sum(p.count for p in points) == durations.count
            for (command, outcome), values in durations.seen.items():
                found = _by(points, **{"cucmconn.command": command, "cucmconn.outcome": outcome})
                assert len(found) == 1
                (point,) = found
                assert point.count == len(values)
                assert point.sum == pytest.approx(math.fsum(values), rel=1e-9)
                assert (point.min, point.max) == (min(values), max(values))


async def test_a_collection_in_another_thread_loses_no_duration() -> None:
    """A periodic reader collects in its own thread while the loop records."""
    collections = 0
    stop = threading.Event()

    def collect() -> None:
        nonlocal collections
        while not stop.is_set():
            seen.reader.get_metrics_data()
            collections += 1

    async with _instrumented("otel-threads", 20) as (seen, durations, client, extensions):
        collector = threading.Thread(target=collect)
        collector.start()
        try:
            await _get_states(client, extensions, 50)
        finally:
            stop.set()
            await asyncio.to_thread(collector.join)
        points = _points(seen.reader.get_metrics_data())["cucmconn.client.command.duration"]
        commands = _points(seen.reader.get_metrics_data())["cucmconn.client.commands"]
        assert collections > 1
        assert sum(p.count for p in points) == durations.count == sum(p.value for p in commands)


async def test_a_sampled_commands_duration_links_its_span_as_an_exemplar() -> None:
    seen = Session()  # the SDK's default sampler: every span recorded
    url = "memory://otel-exemplars"
    async with (
        Emulator(url, extensions="1000") as _emulator,
        Client(url, client_destination=DEST, ttl=2.0) as client,
    ):
        handle = seen.instrument(client)
        agent = client.agent("1000")
        await agent.login()
        for _ in range(5):
            await agent.get_state()
        points = _points(seen.reader.get_metrics_data())["cucmconn.client.command.duration"]
        span_ids = {s.context.span_id for s in seen.exporter.get_finished_spans() if s.context}
        exemplars = [e for p in points for e in p.exemplars]
        assert exemplars and all(e.span_id in span_ids for e in exemplars)
        handle.uninstrument()
