"""The ``cucmconn`` command line: demo, load, watch, send, and the emulator and broker tools."""

from __future__ import annotations

from .main import main, main_async

__all__ = ["main", "main_async"]
