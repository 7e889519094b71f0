"""STOMP frame codec speed, each figure beside its peer (aiostomp) in one benchmark group.

Run: ``pytest benchmarks/bench_stomp.py --benchmark-min-rounds=3``; ``extra_info`` carries
ns/frame.  Input is what the client really receives: ActiveMQ MESSAGE frames of about 250 bytes,
delivered in 64 KiB socket reads that cut frames anywhere.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from aiostomp.protocol import StompProtocol

from cucmconn.codec import _pyevents, _pystomp

_NO_EXT = os.environ.get("CUCMCONN_NO_EXTENSIONS", "") not in ("", "0")
TWINS = ["python"] if _NO_EXT else ["python", "cython"]
CHUNK = 64 * 1024
FRAMES = 1024

BODY = b"1001#DialogState#ACTIVE#2024-11-25 06:00:00#16777215#1001,1002"


def _frame(i: int) -> bytes:
    """A TextMessage event as ActiveMQ 5.17 delivers it (header order and escapes as captured)."""
    return (
        b"MESSAGE\nexpires:1795587559256\ncorrelation-id:c0ffee-%05d\n"
        b"destination:/topic/cucm.desk-7\nsubscription:sub-0\npriority:4\ntype:\n"
        b"message-id:ID\\cvm-45195-17955869-3\\c2\\c-1\\c1\\c%d\npersistent:true\n"
        b"timestamp:1795586959260\n\n%s\x00\n" % (i, i, BODY)
    )


FRAME = _frame(0)
STREAM = b"".join(_frame(i) for i in range(FRAMES))
CHUNKS = [STREAM[i : i + CHUNK] for i in range(0, len(STREAM), CHUNK)]


def _twin(name: str) -> ModuleType:
    return _pystomp if name == "python" else importlib.import_module("cucmconn.codec._cstomp")


def _decoder(name: str) -> Callable[[bytes], Any]:
    if name == "python":
        return _pyevents.decode_event
    return importlib.import_module("cucmconn.codec._cevents").decode_event  # type: ignore[no-any-return]


def _run(benchmark: Any, fn: Callable[[], int], frames: int) -> None:
    assert benchmark(fn) == frames  # also proves every frame was produced
    benchmark.extra_info["frame_bytes"] = len(FRAME)
    if benchmark.stats is not None:  # None under --benchmark-disable (the CI smoke run)
        benchmark.extra_info["ns_per_frame"] = round(benchmark.stats.stats.mean / frames * 1e9, 1)


# --- parse: 64 KiB chunks -> frames -----------------------------------------------------------


@pytest.mark.benchmark(group="stomp-parse-64KiB-chunks")
def test_parse_aiostomp(benchmark: Any) -> None:
    def run() -> int:
        parser = StompProtocol()
        count = 0
        for chunk in CHUNKS:
            parser.feed_data(chunk)
            count += sum(1 for f in parser.pop_frames() if f.command == "MESSAGE")
        return count

    _run(benchmark, run, FRAMES)


@pytest.mark.benchmark(group="stomp-parse-64KiB-chunks")
@pytest.mark.parametrize("twin", TWINS)
def test_parse_ours(benchmark: Any, twin: str) -> None:
    parser_class = _twin(twin).FrameParser

    def run() -> int:
        parser = parser_class()
        return sum(len(parser.feed(chunk)) for chunk in CHUNKS)

    _run(benchmark, run, FRAMES)


# --- receive path: frame bytes -> (correlation id, typed event) -------------------------------


@pytest.mark.benchmark(group="stomp-receive-path")
def test_receive_aiostomp_naive_split(benchmark: Any) -> None:
    """The baseline a hand-rolled client would write: aiostomp's parser, then str.split('#')."""

    def run() -> int:
        parser = StompProtocol()
        out = []
        for chunk in CHUNKS:
            parser.feed_data(chunk)
            for f in parser.pop_frames():
                if f.command == "MESSAGE":
                    out.append((f.headers.get("correlation-id"), f.body.decode().split("#")))
        return len(out)

    _run(benchmark, run, FRAMES)


@pytest.mark.benchmark(group="stomp-receive-path")
@pytest.mark.parametrize("twin", TWINS)
def test_receive_parser_then_decode_event(benchmark: Any, twin: str) -> None:
    """What the transport does on a socket read: parse the chunk, decode each MESSAGE body."""
    parser_class, decode = _twin(twin).FrameParser, _decoder(twin)

    def run() -> int:
        parser = parser_class()
        out = []
        for chunk in CHUNKS:
            for f in parser.feed(chunk):
                if f.command == "MESSAGE":
                    out.append((f.headers.get("correlation-id"), decode(f.body)))
        return len(out)

    _run(benchmark, run, FRAMES)


@pytest.mark.benchmark(group="stomp-receive-path")
@pytest.mark.parametrize("twin", TWINS)
def test_receive_decode_message(benchmark: Any, twin: str) -> None:
    """The fused one-pass path on single-frame bytes (no Frame, no header dict)."""
    decode_message = _twin(twin).decode_message
    frames = [_frame(i) for i in range(FRAMES)]
    assert decode_message(frames[7])[0] == "c0ffee-00007"

    def run() -> int:
        return len([decode_message(f) for f in frames])

    _run(benchmark, run, FRAMES)


# --- encode: one SEND command frame -----------------------------------------------------------

SEND_HEADERS = {
    "destination": "/queue/Connector1",
    "type": "MakeCall#1001",
    "correlation-id": "5f1c2a9e-0001",
    "reply-to": "/topic/cucm.desk-7",
    "expires": "1732514460000",
    "persistent": "false",
}


@pytest.mark.benchmark(group="stomp-encode-send")
def test_encode_aiostomp(benchmark: Any) -> None:
    build = StompProtocol().build_frame

    def run() -> int:
        for _ in range(FRAMES):
            data = build("SEND", SEND_HEADERS, "1002")
        return FRAMES if data else 0

    _run(benchmark, run, FRAMES)


@pytest.mark.benchmark(group="stomp-encode-send")
@pytest.mark.parametrize("twin", TWINS)
def test_encode_ours(benchmark: Any, twin: str) -> None:
    encode = _twin(twin).encode_frame

    def run() -> int:
        for _ in range(FRAMES):
            data = encode("SEND", SEND_HEADERS, "1002")
        return FRAMES if data else 0

    _run(benchmark, run, FRAMES)
