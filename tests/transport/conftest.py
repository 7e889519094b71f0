"""Fixtures shared by the transport tests."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme


@pytest.fixture
async def closing() -> AsyncIterator[list[Any]]:
    """Transports (and proxies) appended here are closed after the test, pass or fail."""
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        with contextlib.suppress(Exception):
            await thing.close()


@dataclass(frozen=True)
class TLSPair:
    """A throwaway CA's server context (certificate for 127.0.0.1) and a client context that
    trusts it, plus the CA file for ``?cafile=`` URLs."""

    server: ssl.SSLContext
    client: ssl.SSLContext
    cafile: Path


@pytest.fixture(scope="session")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> TLSPair:
    """TLS contexts for in-process peers (no broker, no keytool)."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    cafile = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    return TLSPair(server, client, cafile)
