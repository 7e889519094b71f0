"""TLS for the native STOMP link, sans-IO: ciphertext in, plaintext out, ciphertext to send.

Why our own layer rather than ``loop.create_connection(ssl=...)``: asyncio's TLS transport keeps
a write buffer of its own between the protocol and the socket (and its TCP transport another).
With zero limits on it, asyncio's SSL layer pauses the protocol and never resumes it; with the
default limits up to 64 KB of frames sit there, out of our hands, and may leave after their
deadlines (issue 11: "a frame is never written after its deadline").  Encrypting only what
``StompTransport._flush`` hands over, straight into the TCP transport whose limits are zero,
leaves TLS links with exactly the buffering of plain ones: every frame not yet in the kernel is
in our buffer, where its deadline is honoured.  It also runs the same code on asyncio and
uvloop.

``ssl.SSLObject`` over two ``ssl.MemoryBIO`` does the cryptography (the standard library's
OpenSSL binding, as asyncio's own layer uses); this module only moves bytes between them.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterable

__all__ = ["TLSClient", "describe_tls_error"]

_READ_CHUNK = 256 * 1024


def describe_tls_error(exc: ssl.SSLError) -> str:
    """What went wrong, in words: the certificate check's reason when there is one."""
    return getattr(exc, "verify_message", None) or exc.reason or str(exc)


class TLSClient:
    """The client side of one TLS connection (handshake, records, close_notify).

    ``receive`` takes bytes from the socket and returns the plaintext they completed; after
    every call, ``pending`` holds the bytes the socket must carry (handshake replies, records)
    and ``ready`` says whether the handshake is over.  ``encrypt`` turns plaintext into
    records.  ``ssl.SSLError`` from any of them means the connection is unusable.
    """

    __slots__ = ("_incoming", "_obj", "_outgoing", "ready")

    def __init__(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._obj = context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname
        )
        self.ready = False

    def start(self) -> bytes:
        """The first handshake bytes (ClientHello)."""
        self._handshake()
        return self._outgoing.read()

    def receive(self, data: bytes) -> bytes:
        """Feed bytes from the socket; the plaintext they complete (may be empty).  Send
        :meth:`pending` afterwards: the handshake and TLS 1.3's key updates answer."""
        self._incoming.write(data)
        if not self.ready and not self._handshake():
            return b""
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self._obj.read(_READ_CHUNK)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break  # a record incomplete, or the peer's close_notify
            if not chunk:  # close_notify, as this Python reports it: the socket closes next
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def pending(self) -> bytes:
        """Bytes the socket must carry now (empty when none)."""
        return self._outgoing.read()

    def encrypt(self, chunks: Iterable[bytes]) -> bytes:
        """Records carrying ``chunks`` (in order), ready for the socket."""
        write = self._obj.write
        for chunk in chunks:
            write(chunk)
        return self._outgoing.read()

    def close(self) -> bytes:
        """Our close_notify, to write before closing the socket (empty if it cannot be made)."""
        if self.ready:
            with contextlib.suppress(ssl.SSLError):  # WantRead: ours sent, theirs not awaited
                self._obj.unwrap()
        return self._outgoing.read()

    def _handshake(self) -> bool:
        try:
            self._obj.do_handshake()
        except ssl.SSLWantReadError:
            return False
        self.ready = True
        return True
