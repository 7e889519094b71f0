"""The compiled codec must be the one in use whenever it was built (aiokafka's guard)."""

from __future__ import annotations

import importlib.util
import os

import pytest

from cucmconn import codec


def _built(module: str) -> bool:
    return importlib.util.find_spec(f"cucmconn.codec.{module}") is not None


@pytest.mark.parametrize("module", ["_cevents", "_cstomp"])
def test_compiled_codec_is_loaded_when_built(module: str) -> None:
    if codec.extensions_disabled():
        assert codec.codec_backend() == "python"
        return
    required = os.environ.get("CUCMCONN_REQUIRE_EXTENSIONS", "") not in ("", "0")
    if not _built(module):
        assert not required, f"{module} was required but not built"
        pytest.skip(f"{module} not built on this machine; the pure-Python twin serves")
    assert codec.codec_backend() == "cython"
    assert codec.decode_event.__module__ == "cucmconn.codec._cevents"
    assert codec.FrameParser.__module__ == "cucmconn.codec._cstomp"


def test_env_switch_forces_the_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-import the binding point with the switch set: the pure twins must be bound."""
    import importlib

    monkeypatch.setenv("CUCMCONN_NO_EXTENSIONS", "1")
    fresh = importlib.reload(codec)
    try:
        assert fresh.codec_backend() == "python"
        assert fresh.decode_event.__module__ == "cucmconn.codec._pyevents"
    finally:
        monkeypatch.delenv("CUCMCONN_NO_EXTENSIONS")
        importlib.reload(codec)
