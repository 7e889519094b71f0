"""Types of the compiled event codec (``_cevents.pyx``); same API as ``_pyevents``."""

from .events import Event

__all__ = ["decode_event", "encode_event"]

def decode_event(body: bytes | bytearray | memoryview | str, max_size: int = ...) -> Event: ...
def encode_event(event: Event, fmt: str = "default") -> str: ...
