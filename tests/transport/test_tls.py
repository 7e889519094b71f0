"""The sans-IO TLS layer of the native STOMP link (``transport/tls.py``), against an in-memory
server-side ``ssl.SSLObject``: no sockets, every byte moved by the test."""

from __future__ import annotations

import ssl

import pytest

from cucmconn.transport.tls import TLSClient, describe_tls_error
from tests.transport.conftest import TLSPair


class _Server:
    """The other end: an ``SSLObject`` over memory BIOs, as a broker's TLS would be."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.ready = False

    def receive(self, data: bytes) -> bytes:
        self.incoming.write(data)
        if not self.ready:
            try:
                self.obj.do_handshake()
                self.ready = True
            except ssl.SSLWantReadError:
                return b""
        out = b""
        while True:
            try:
                chunk = self.obj.read(1 << 20)
            except ssl.SSLWantReadError:
                return out
            if not chunk:
                return out
            out += chunk

    def send(self, data: bytes) -> bytes:
        self.obj.write(data)
        return self.outgoing.read()


def _handshake(client: TLSClient, server: _Server) -> None:
    to_server = client.start()
    for _ in range(10):
        server.receive(to_server)
        client.receive(server.outgoing.read())
        to_server = client.pending()
        if client.ready and not to_server:
            break
    server.receive(to_server)
    assert client.ready and server.ready


def test_handshake_then_frames_both_ways_in_order(tls_pair: TLSPair) -> None:
    client, server = TLSClient(tls_pair.client, "127.0.0.1"), _Server(tls_pair.server)
    _handshake(client, server)
    frames = [f"SEND\ndestination:/queue/q{i}\n\nbody {i}\x00".encode() for i in range(100)]
    assert server.receive(client.encrypt(frames)) == b"".join(frames)
    big = b"MESSAGE\n\n" + b"x" * 1_000_000 + b"\x00"  # several records, fed in pieces
    records = server.send(big)
    got = b"".join(client.receive(records[i : i + 1500]) for i in range(0, len(records), 1500))
    assert got == big
    assert client.pending() == b""  # nothing to answer after plain records


def test_close_sends_close_notify(tls_pair: TLSPair) -> None:
    client, server = TLSClient(tls_pair.client, "127.0.0.1"), _Server(tls_pair.server)
    _handshake(client, server)
    alert = client.close()
    assert alert  # the close_notify record
    server.incoming.write(alert)
    assert server.obj.read(1) == b""  # end of stream (without it: SSLWantReadError)


def test_an_untrusted_certificate_fails_the_handshake_with_a_reason(tls_pair: TLSPair) -> None:
    client = TLSClient(ssl.create_default_context(), "127.0.0.1")  # does not trust the CA
    server = _Server(tls_pair.server)
    server.receive(client.start())
    with pytest.raises(ssl.SSLError) as caught:
        client.receive(server.outgoing.read())
    assert not client.ready
    assert "certificate verify failed" in describe_tls_error(caught.value).lower() or (
        "unable to get local issuer certificate" in describe_tls_error(caught.value)
    )


def test_a_wrong_host_name_fails_the_handshake(tls_pair: TLSPair) -> None:
    client, server = TLSClient(tls_pair.client, "broker.example"), _Server(tls_pair.server)
    server.receive(client.start())
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        client.receive(server.outgoing.read())
    assert "broker.example" in describe_tls_error(caught.value)
