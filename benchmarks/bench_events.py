"""Event decode speed, each figure beside its peers in one pytest-benchmark group.

Run: ``pytest benchmarks/bench_events.py --benchmark-min-rounds=3``.  Every round decodes the
five common events (AgentState, DialogState, InboundCall, System, Error) once, so ns/event is
the mean divided by five (``extra_info["ns_per_event"]``).

Groups: ``events-default`` (naive ``decode().split('#')`` -> dict, pure twin, Cython),
``events-default-3000-agents`` (the same over 3,000 agents, so few strings repeat),
``events-json`` (``json.loads`` to a dict, plain msgspec into one Struct, pure twin, Cython) and
``events-encode-default`` (the emulator's side, pure twin vs Cython).
The naive and plain-msgspec rows do less work than the codec (no typed event, no aliases, no
validation): they are the floor the codec is measured against, not competitors.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import msgspec
import pytest

from cucmconn.codec import _pyevents
from cucmconn.codec.events import (
    AgentState,
    DialogState,
    ErrorEvent,
    Event,
    InboundCall,
    SystemStatus,
)

_NO_EXT = os.environ.get("CUCMCONN_NO_EXTENSIONS", "") not in ("", "0")
T = "2024-11-25 06:00:00"
MIX: list[Event] = [
    AgentState("1001", "TALKING", T),
    DialogState("1001", "ACTIVE", T, "16777215", ("1001", "1002")),
    InboundCall("1001", "ALERTING", T, "16777215", "1002"),
    SystemStatus("IN_SERVICE"),
    ErrorEvent("1001", "CF_INVALID_OBJECT_STATE"),
]
DEFAULT_BODIES = [_pyevents.encode_event(e).encode() for e in MIX]
JSON_BODIES = [_pyevents.encode_event(e, "json").encode() for e in MIX]


def _ns(benchmark: Any, per: int) -> float | None:
    """ns per item; None under --benchmark-disable (the CI smoke run has no stats)."""
    if benchmark.stats is None:
        return None
    return round(float(benchmark.stats.stats.mean) / per * 1e9, 1)


def _twin(name: str) -> ModuleType:
    if name == "python":
        return _pyevents
    if _NO_EXT:
        pytest.skip("CUCMCONN_NO_EXTENSIONS is set")
    return importlib.import_module("cucmconn.codec._cevents")


def _naive(body: bytes) -> dict[str, Any]:
    parts = body.decode().split("#")
    return {"for": parts[0], "type": parts[1], "args": parts[2:]}


class _Plain(msgspec.Struct, gc=False):
    """The house-profile attributes only, no aliases: plain msgspec's best case."""

    type: str
    agentId: str | None = None
    state: str | None = None
    stateChangeTimeString: str | None = None
    startTime: str | None = None
    connectionID: str | None = None
    participants: list[str] | str | None = None
    status: str | None = None
    errorType: str | None = None
    message: str | None = None


_plain = msgspec.json.Decoder(_Plain).decode


def _run(benchmark: Any, decode: Callable[[bytes], object], bodies: list[bytes]) -> None:
    a, b, c, d, e = bodies

    def mix() -> None:
        decode(a)
        decode(b)
        decode(c)
        decode(d)
        decode(e)

    benchmark(mix)
    benchmark.extra_info["ns_per_event"] = _ns(benchmark, 5)


@pytest.mark.benchmark(group="events-default")
def test_default_naive_split_dict(benchmark: Any) -> None:
    _run(benchmark, _naive, DEFAULT_BODIES)


@pytest.mark.benchmark(group="events-default")
@pytest.mark.parametrize("twin", ["python", "cython"])
def test_default_codec(benchmark: Any, twin: str) -> None:
    module = _twin(twin)
    assert [module.decode_event(b) for b in DEFAULT_BODIES] == MIX
    _run(benchmark, module.decode_event, DEFAULT_BODIES)


def _many_agents() -> list[bytes]:
    """The mix for 3,000 different agents with changing times: most strings are new."""
    bodies = []
    for i in range(3000):
        agent, t = str(100000 + i), f"2024-11-25 06:{i // 60 % 60:02d}:{i % 60:02d}"
        for event in MIX:
            fields = {f: getattr(event, f) for f in event.__struct_fields__}
            if "agent_id" in fields:
                fields["agent_id"] = agent
            for key in ("changed_at", "start_time"):
                if key in fields:
                    fields[key] = t
            if "target" in fields:
                fields["target"] = agent
            bodies.append(_pyevents.encode_event(type(event)(**fields)).encode())
    return bodies


MANY_AGENTS = _many_agents()


@pytest.mark.benchmark(group="events-default-3000-agents")
@pytest.mark.parametrize("decoder", ["naive", "python", "cython"])
def test_default_many_agents(benchmark: Any, decoder: str) -> None:
    """Guards against a benchmark that only measures the compiled twin's intern cache."""
    decode = _naive if decoder == "naive" else _twin(decoder).decode_event
    bodies = MANY_AGENTS

    def run() -> None:
        for body in bodies:
            decode(body)

    benchmark(run)
    benchmark.extra_info["ns_per_event"] = _ns(benchmark, len(bodies))


@pytest.mark.benchmark(group="events-json")
def test_json_stdlib_loads(benchmark: Any) -> None:
    _run(benchmark, json.loads, JSON_BODIES)


@pytest.mark.benchmark(group="events-json")
def test_json_plain_msgspec_struct(benchmark: Any) -> None:
    _run(benchmark, _plain, JSON_BODIES)


@pytest.mark.benchmark(group="events-json")
@pytest.mark.parametrize("twin", ["python", "cython"])
def test_json_codec(benchmark: Any, twin: str) -> None:
    module = _twin(twin)
    assert [module.decode_event(b) for b in JSON_BODIES] == MIX
    _run(benchmark, module.decode_event, JSON_BODIES)


@pytest.mark.benchmark(group="events-encode-default")
@pytest.mark.parametrize("twin", ["python", "cython"])
def test_encode_default(benchmark: Any, twin: str) -> None:
    """The emulator's side: the five-event mix to ``#`` bodies."""
    module = _twin(twin)
    assert [module.encode_event(e).encode() for e in MIX] == DEFAULT_BODIES
    a, b, c, d, e = MIX
    encode = module.encode_event

    def mix() -> None:
        encode(a)
        encode(b)
        encode(c)
        encode(d)
        encode(e)

    benchmark(mix)
    benchmark.extra_info["ns_per_event"] = _ns(benchmark, 5)
