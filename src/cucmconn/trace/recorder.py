"""Recording a link: ``TraceRecorder`` writes a trace, ``RecordingTransport`` feeds it.

The recorder wraps the Transport rather than observing the Client: the transport is where the
exact bytes are sent and received, so what is written is what crossed the wire (the ``expires``
the broker saw, the broker's ``message-id`` and ``timestamp``), for every client, tool or
emulator that uses a Transport.

Writing is off the hot path.  ``record_sent``/``record_received`` append a tuple of references
to a bounded deque (no formatting, no I/O, no lock: ``deque.append`` is atomic); a writer thread
wakes every ``flush_interval`` seconds, formats the batch as JSON Lines and writes it.  Past
``max_queue`` waiting records a new one is dropped and counted (``dropped``), so a stalled disk
slows nothing and grows nothing; the end line of the trace says how many were dropped.  A thread
rather than a task: the loop that runs the client should not also run a file writer.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING

from ..transport.base import (
    Message,
    MessageHandler,
    Transport,
    expires_at,
    send_headers,
)
from ..transport.forwarding import ForwardingTransport
from .format import (
    TraceRecord,
    body_text,
    encode_line,
    end_line,
    kept_headers,
    make_header,
    redact_command_body,
)

__all__ = ["RecordingTransport", "TraceRecorder"]

DEFAULT_MAX_QUEUE = 100_000
_OUT, _IN = "out", "in"
_Item = tuple[str, float, float, str, Mapping[str, str], "bytes | str"]


class TraceRecorder:
    """Writes one trace file (or to an open binary stream) from a bounded queue, in a thread.

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
        self.flush_interval = flush_interval
        self.source = source or "cucmconn recorder"
        self.note = note
        self._queue: deque[_Item] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
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
        return self._thread is not None

    @property
    def pending(self) -> int:
        return len(self._queue)

    def start(self, url: str = "") -> None:
        """Open the target, write the header (``url`` redacted) and start the writer thread."""
        if self._closed:
            raise RuntimeError("this recorder is closed; make a new one")
        if self._thread is not None:
            return
        if isinstance(self._target, (str, os.PathLike)):
            self._stream = open(self._target, "wb")  # noqa: SIM115 - closed in close()
        else:
            self._stream = self._target
        header = make_header(url, source=self.source, note=self.note)
        self._stream.write(encode_line(header))
        self._thread = threading.Thread(target=self._run, name="cucmconn-trace-writer", daemon=True)
        self._thread.start()

    # -- the hot path: one append, no formatting -------------------------------------------

    def record_sent(self, destination: str, headers: Mapping[str, str], body: str) -> None:
        """A message the client sent (headers as the transport sent them)."""
        if len(self._queue) >= self.max_queue or self._closed:
            self.dropped += 1
            return
        self._queue.append((_OUT, time.time(), time.monotonic(), destination, headers, body))

    def record_received(self, message: Message) -> None:
        """A message the client received."""
        if len(self._queue) >= self.max_queue or self._closed:
            self.dropped += 1
            return
        self._queue.append(
            (_IN, time.time(), time.monotonic(), message.destination, message.headers, message.body)
        )

    # -- the writer thread -----------------------------------------------------------------

    def _format(self, item: _Item) -> bytes:
        direction, wall, mono, destination, headers, body = item
        self._seq += 1
        b64 = None
        if isinstance(body, bytes):
            text, b64 = body_text(body)
        else:
            text = body
        kept = kept_headers(headers)
        if direction == _OUT and text:
            text = redact_command_body(kept.get("type", ""), text)
        return encode_line(
            TraceRecord(
                dir=direction,  # type: ignore[arg-type]  # _OUT or _IN
                seq=self._seq,
                wall=wall,
                mono=mono,
                dest=destination,
                headers=kept,
                body=text,
                body_b64=b64,
            )
        )

    def _drain(self) -> None:
        stream = self._stream
        queue = self._queue
        if stream is None or not queue:
            return
        chunk: list[bytes] = []
        while queue:
            chunk.append(self._format(queue.popleft()))
        stream.write(b"".join(chunk))
        self.written += len(chunk)

    def _run(self) -> None:
        try:
            while not self._closed:
                self._wake.wait(self.flush_interval)
                self._drain()
            self._drain()
        except Exception as exc:  # a full disk: stop writing, count the rest as dropped
            self.failed = exc
            self._closed = True
            self.dropped += len(self._queue)
            self._queue.clear()

    def flush(self) -> None:
        """Write what is queued now (from the caller's thread; for tests and tools)."""
        if self._thread is not None and self._thread.is_alive():
            self._wake.set()
            deadline = time.monotonic() + 5.0
            while self._queue and time.monotonic() < deadline and self._thread.is_alive():
                time.sleep(0.001)
            self._wake.clear()
        if self._stream is not None:
            self._stream.flush()

    def close(self) -> None:
        """Write everything queued, then the end line; close the file if we opened it."""
        if self._closed and self._stream is None:
            return
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            if self.failed is None:
                self._drain()
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
        self._ensure_started()
        await self.inner.connect()

    async def send(
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
    ) -> None:
        self._ensure_started()
        extra: dict[str, str] = dict(headers) if headers else {}
        expires = expires_at(ttl)
        if expires is not None:
            extra["expires"] = str(expires)
        # Recorded before the send: on a fast broker the answer can arrive while it is awaited.
        self.recorder.record_sent(
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
        await self.inner.send(
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
        self._ensure_started()
        record = self.recorder.record_received

        def recorded(message: Message) -> None:
            record(message)
            handler(message)

        return await self.inner.subscribe(destination, recorded, prefetch=prefetch)


if TYPE_CHECKING:

    def _implements_transport(transport: RecordingTransport) -> Transport:
        return transport  # mypy proves RecordingTransport satisfies the Transport protocol
