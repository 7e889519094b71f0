"""The client the memory:// client tests build: one place for its short test timeouts."""

from __future__ import annotations

from typing import Any

from cucmconn import Client
from cucmconn.transport.memory import MemoryTransport


def memory_client(destination: str, **options: Any) -> Client:
    """A Client on the default memory:// broker answering on ``destination``, with timeouts
    short enough for tests (override any of them by keyword)."""
    options.setdefault("client_destination", destination)
    options.setdefault("transport", MemoryTransport())
    options.setdefault("ttl", 2.0)
    options.setdefault("connect_timeout", 0.1)
    options.setdefault("handshake_timeout", 2.0)
    return Client(**options)
