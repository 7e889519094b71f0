"""The instrumentation scope (name and version) every cucmconn meter and tracer uses."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["INSTRUMENTATION_NAME", "scope_version"]

INSTRUMENTATION_NAME = "cucmconn"
"""The instrumentation scope name of every meter and tracer cucmconn creates."""


def scope_version() -> str:
    """cucmconn's installed version ("0" when run from a bare source tree)."""
    try:
        return version("cucmconn")
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "0"
