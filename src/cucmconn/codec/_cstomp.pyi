"""Types of the compiled STOMP codec (``_cstomp.pyx``); same API as ``_pystomp``."""

from collections.abc import Iterable, Mapping
from typing import Final

from ._pystomp import Frame as Frame
from ._pystomp import FrameError as FrameError
from .events import Event

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_HEADER_LINE",
    "HEARTBEAT",
    "Frame",
    "FrameError",
    "FrameParser",
    "decode_message",
    "encode_frame",
]

DEFAULT_MAX_FRAME_SIZE: Final[int]
DEFAULT_MAX_HEADERS: Final[int]
DEFAULT_MAX_HEADER_LINE: Final[int]
HEARTBEAT: Final[bytes]

class FrameParser:
    heartbeats: int
    @property
    def max_frame_size(self) -> int: ...
    @property
    def max_headers(self) -> int: ...
    @property
    def max_header_line(self) -> int: ...
    def __init__(
        self,
        max_frame_size: int = ...,
        max_headers: int = ...,
        max_header_line: int = ...,
    ) -> None: ...
    @property
    def buffered(self) -> int: ...
    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]: ...

def encode_frame(
    command: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = ...,
    body: bytes | str = ...,
) -> bytes: ...
def decode_message(frame: bytes | bytearray | memoryview) -> tuple[str | None, Event]: ...
