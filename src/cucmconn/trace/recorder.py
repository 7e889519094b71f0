"""Recording a link: ``TraceRecorder`` writes a trace, ``RecordingTransport`` feeds it.

The recorder wraps the Transport rather than observing the Client: the transport is where the
exact bytes are sent and received, so what is written is what crossed the wire (the ``expires``
the broker saw, the broker's ``message-id`` and ``timestamp``), for every client, tool or
emulator that uses a Transport.

Writing is off the hot path.  ``record_*`` append one small struct of references to a bounded
deque (no formatting, no I/O, nothing the garbage collector tracks); a writer drains it every
``flush_interval`` seconds, formats the batch as JSON Lines and writes it.  Started inside an
event loop, the writer is a callback on that loop taking at most ``MAX_BATCH`` records a turn:
a thread would do the same work but compete for the GIL, which on a busy machine cost more.
Started without a loop (a tool, a test), it is a thread.  Past ``max_queue`` waiting records a
new one is dropped and counted (``dropped``), so a stalled disk grows nothing; the end line of
the trace says how many.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import deque
from collections.abc import Coroutine, Mapping
from typing import IO, TYPE_CHECKING, Any

import msgspec

from ..transport.base import (
    Message,
    MessageHandler,
    Transport,
    expires_at,
    send_headers,
)
from ..transport.forwarding import ForwardingTransport
from .format import (
    KEPT_HEADERS,
    SECRET_COMMANDS,
    body_text,
    encode_line,
    end_line,
    make_header,
    redact_command_body,
)

__all__ = ["RecordingTransport", "TraceRecorder"]

DEFAULT_MAX_QUEUE = 100_000
MAX_BATCH = 2000
"""Records formatted per turn of the loop's writer, so one turn never blocks the loop long."""
_encoder = msgspec.json.Encoder()
_KEPT = frozenset(KEPT_HEADERS)
_OUT, _IN = "out", "in"


class _Received(msgspec.Struct, gc=False):
    """A queued record.  Structs with ``gc=False`` are never tracked by the garbage collector,
    so queueing them neither triggers collections nor gets scanned by them (tuples did both,
    and that was half of what recording cost)."""

    wall: float
    mono: float
    message: Message


class _Command(msgspec.Struct, gc=False):
    wall: float
    mono: float
    destination: str
    jms_type: str | None
    correlation_id: str | None
    reply_to: str | None
    persistent: bool
    expires: str | None
    body: str


class _Sent(msgspec.Struct, gc=False):
    wall: float
    mono: float
    destination: str
    headers: dict[str, str]
    body: str


_Queued = _Received | _Command | _Sent


class TraceRecorder:
    """Writes one trace file (or to an open binary stream) from a bounded queue.

    ``target`` is a path (created or truncated; closed by :meth:`close`) or a binary stream
    (left open).  Call :meth:`start` (done by ``RecordingTransport.connect``), then
    :meth:`close` to write what is queued and the end line.  ``written`` and ``dropped`` count
    records.  Thread-safe for one producer thread (the event loop).
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | IO[bytes],
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        flush_interval: float = 0.05,
        source: str = "",
        note: str = "",
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, not {max_queue!r}")
        if not flush_interval > 0:
            raise ValueError(f"flush_interval must be > 0, not {flush_interval!r}")
        self._target = target
        self._stream: IO[bytes] | None = None
        self._owns_stream = isinstance(target, (str, os.PathLike))
        self.max_queue = max_queue
        self._limit = max_queue  # 0 once closed: one comparison on the hot path
        self.flush_interval = flush_interval
        self.source = source or "cucmconn recorder"
        self.note = note
        self._queue: deque[_Queued] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._started = False
        self._closed = False
        self._seq = 0
        self.written = 0
        self.dropped = 0
        self.failed: BaseException | None = None
        """The write error that stopped the writer thread, if any (records are then dropped)."""

    def __repr__(self) -> str:
        where = self._target if self._owns_stream else type(self._target).__name__
        return f"TraceRecorder({str(where)!r}, written={self.written}, dropped={self.dropped})"

    @property
    def started(self) -> bool:
        """True once :meth:`start` wrote the header (the writer runs)."""
        return self._started

    @property
    def pending(self) -> int:
        """Records queued, not yet written."""
        return len(self._queue)

    def start(self, url: str = "") -> None:
        """Open the target, write the header (``url`` redacted) and start the writer thread."""
        if self._closed:
            raise RuntimeError("this recorder is closed; make a new one")
        if self._started:
            return
        if isinstance(self._target, (str, os.PathLike)):
            self._stream = open(self._target, "wb")  # noqa: SIM115 - closed in close()
        else:
            self._stream = self._target
        header = make_header(url, source=self.source, note=self.note)
        self._stream.write(encode_line(header))
        self._started = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a tool, a test): a thread writes instead
            self._thread = threading.Thread(
                target=self._run, name="cucmconn-trace-writer", daemon=True
            )
            self._thread.start()
            return
        self._loop = loop
        self._timer = loop.call_later(self.flush_interval, self._tick)

    # -- the hot path: one append, no formatting -------------------------------------------

    def record_sent(self, destination: str, headers: Mapping[str, str], body: str) -> None:
        """A message the client sent (headers as the transport sent them)."""
        queue = self._queue
        if len(queue) >= self._limit:
            self.dropped += 1
            return
        queue.append(_Sent(time.time(), time.monotonic(), destination, dict(headers), body))

    def record_command(
        self,
        wall: float,
        destination: str,
        jms_type: str | None,
        correlation_id: str | None,
        reply_to: str | None,
        persistent: bool,
        expires: str | None,
        body: str,
    ) -> None:
        """A command sent at ``wall`` (epoch s) with no other header: like
        :meth:`record_sent`, but the header dict is built by the writer, not on the hot path."""
        queue = self._queue
        if len(queue) >= self._limit:
            self.dropped += 1
            return
        queue.append(
            _Command(
                wall, time.monotonic(), destination, jms_type, correlation_id, reply_to,
                persistent, expires, body,
            )
        )  # fmt: skip

    def record_received(self, message: Message) -> None:
        """A message the client received (kept whole: a Message is never GC-tracked)."""
        queue = self._queue
        if len(queue) >= self._limit:
            self.dropped += 1
            return
        queue.append(_Received(time.time(), time.monotonic(), message))

    # -- the writer thread -----------------------------------------------------------------

    def _format(self, item: _Queued) -> dict[str, object]:
        """One record as the dict ``TraceRecord`` encodes to (built directly: this runs for
        every message, and a dict is several times cheaper than the Struct)."""
        self._seq += 1
        kept: dict[str, str] = {}
        body: str | bytes
        received = type(item) is _Received
        if isinstance(item, _Received):
            message = item.message
            destination, body = message.destination, message.body
            for name, value in message.headers.items():
                if name in _KEPT:
                    kept[name] = value
        elif isinstance(item, _Command):
            destination, body = item.destination, item.body
            if item.expires is not None:
                kept["expires"] = item.expires
            if item.jms_type is not None:
                kept["type"] = item.jms_type
            if item.correlation_id is not None:
                kept["correlation-id"] = item.correlation_id
            if item.reply_to is not None:
                kept["reply-to"] = item.reply_to
            kept["persistent"] = "true" if item.persistent else "false"
        else:
            destination, body = item.destination, item.body
            for name, value in item.headers.items():
                if name in _KEPT:
                    kept[name] = value
        record: dict[str, object] = {
            "dir": _IN if received else _OUT,
            "seq": self._seq,
            "wall": item.wall,
            "mono": item.mono,
            "dest": destination,
            "headers": kept,
        }
        if isinstance(body, bytes):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:  # CESU-8 from ActiveMQ, or not text at all
                text, b64 = body_text(body)
                if b64 is not None:
                    record["body_b64"] = b64
        else:
            text = body
            if text and not received:
                jms_type = kept.get("type", "")
                if jms_type.split("#", 1)[0].strip().lower() in SECRET_COMMANDS:
                    text = redact_command_body(jms_type, text)
        if text:
            record["body"] = text
        return record

    def _drain(self, limit: int | None = None) -> None:
        stream = self._stream
        queue = self._queue
        if stream is None or not queue:
            return
        with self._lock:  # flush() waits on it for a batch being written
            count = len(queue) if limit is None else min(limit, len(queue))
            # Encoded one by one into one buffer: each record's dicts die at once, so a batch
            # never makes the collector run over thousands of live dicts.
            buffer = bytearray()
            encode_into = _encoder.encode_into
            for _ in range(count):
                encode_into(self._format(queue.popleft()), buffer, -1)
                buffer += b"\n"
            stream.write(buffer)
            self.written += count

    def _tick(self) -> None:
        """The loop's writer: one batch of at most MAX_BATCH, then again soon or later."""
        self._timer = None
        loop = self._loop
        if self._closed or loop is None:
            return
        try:
            self._drain(MAX_BATCH)
        except Exception as exc:  # a full disk: stop writing, count the rest as dropped
            self._fail(exc)
            return
        if self._queue:  # more waiting: the next batch after other callbacks had their turn
            self._timer = loop.call_later(0, self._tick)
        else:
            self._timer = loop.call_later(self.flush_interval, self._tick)

    def _fail(self, exc: BaseException) -> None:
        self.failed = exc
        self._closed = True
        self._limit = 0
        self.dropped += len(self._queue)
        self._queue.clear()

    def _run(self) -> None:
        try:
            while not self._closed:
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                self._drain()
            self._drain()
        except Exception as exc:  # a full disk: stop writing, count the rest as dropped
            self._fail(exc)

    def flush(self) -> None:
        """Write what is queued now and wait until it is written (blocks the caller: for
        tests, tools and benchmarks, not for the event loop's hot path)."""
        thread = self._thread
        if self._loop is not None and not self._closed:
            self._drain()
        elif thread is not None and thread.is_alive():
            deadline = time.monotonic() + 10.0
            while self._queue and thread.is_alive() and time.monotonic() < deadline:
                self._wake.set()
                time.sleep(0.0005)
            with self._lock:  # the batch the writer took last is written once this is free
                pass
        if self._stream is not None:
            self._stream.flush()

    def close(self) -> None:
        """Write everything queued, then the end line; close the file if we opened it."""
        if self._closed and self._stream is None:
            return
        self._closed = True
        self._limit = 0
        self._wake.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._thread is not None:
            self._thread.join()
        if self._stream is None:
            return
        try:
            if self.failed is None:
                self._drain()
        except Exception as exc:  # the disk failed on the last batch: counted, not raised
            self._fail(exc)
        stream, self._stream = self._stream, None
        try:
            if self.failed is None:
                stream.write(end_line(self.written, self.dropped))
            stream.flush()
        finally:
            if self._owns_stream:
                stream.close()


class RecordingTransport(ForwardingTransport):
    """A Transport that records every message sent and received through ``inner``.

    It computes ``expires`` itself and hands it to ``inner`` as a header, so the trace holds
    the exact value the broker got.  Closing it closes ``inner`` (only); the recorder is
    started on the first connect (or subscribe on an already connected transport) and is
    closed by whoever made it.
    """

    def __init__(self, inner: Transport, recorder: TraceRecorder) -> None:
        super().__init__(inner)
        self.recorder = recorder

    def __repr__(self) -> str:
        return f"RecordingTransport({self.inner!r}, {self.recorder!r})"

    def _ensure_started(self) -> None:
        if not self.recorder.started:
            self.recorder.start(self.inner.display_url)

    async def connect(self) -> None:
        """Start the recorder (its header names the link by URL, never a credential), then connect
        ``inner``."""
        self._ensure_started()
        await self.inner.connect()

    def send(
        self,
        destination: str,
        body: str,
        *,
        jms_type: str | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        ttl: float | None = None,
        persistent: bool = False,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> Coroutine[Any, Any, None]:
        """Record, then return the wrapped transport's ``send`` (no extra coroutine frame)."""
        recorder = self.recorder
        if not recorder.started:
            self._ensure_started()
        now = time.time()
        expires = expires_at(ttl, now)
        text = None if expires is None else str(expires)
        extra: dict[str, str] = dict(headers) if headers else {}
        if text is not None:
            extra["expires"] = text
        # Recorded before the send: on a fast broker the answer can arrive while it is awaited.
        if headers:
            recorder.record_sent(
                destination,
                send_headers(
                    extra,
                    jms_type=jms_type,
                    correlation_id=correlation_id,
                    reply_to=reply_to,
                    expires=None,
                    persistent=persistent,
                ),
                body,
            )
        else:
            recorder.record_command(
                now, destination, jms_type, correlation_id, reply_to, persistent, text, body
            )
        return self.inner.send(
            destination,
            body,
            jms_type=jms_type,
            correlation_id=correlation_id,
            reply_to=reply_to,
            ttl=None,
            persistent=persistent,
            deadline=deadline,
            headers=extra,
        )

    async def subscribe(
        self, destination: str, handler: MessageHandler, *, prefetch: int = 1000
    ) -> str:
        """Subscribe on ``inner`` with a handler that records each message, then delivers it."""
        self._ensure_started()
        record = self.recorder.record_received

        def recorded(message: Message) -> None:
            record(message)
            handler(message)

        return await self.inner.subscribe(destination, recorded, prefetch=prefetch)


if TYPE_CHECKING:

    def _implements_transport(transport: RecordingTransport) -> Transport:
        return transport  # mypy proves RecordingTransport satisfies the Transport protocol
