"""The compiled codec must be the one in use whenever it was built (aiokafka's guard)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cucmconn import codec


def _built(module: str) -> bool:
    return importlib.util.find_spec(f"cucmconn.codec.{module}") is not None


@pytest.mark.parametrize("module", ["_cevents", "_cstomp", "_ccommands"])
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
    for function in (codec.encode_command, codec.parse_command, codec.canonical_command):
        assert function.__module__ == "cucmconn.codec._ccommands", function


def test_env_switch_forces_the_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-import the binding point with the switch set: the pure twins must be bound."""
    import importlib

    monkeypatch.setenv("CUCMCONN_NO_EXTENSIONS", "1")
    fresh = importlib.reload(codec)
    try:
        assert fresh.codec_backend() == "python"
        assert fresh.decode_event.__module__ == "cucmconn.codec._pyevents"
        assert fresh.encode_command.__module__ == "cucmconn.codec.commands"
    finally:
        monkeypatch.delenv("CUCMCONN_NO_EXTENSIONS")
        importlib.reload(codec)


_WITHOUT_COMPILED = """
import importlib.abc, sys, warnings

class _NotBuilt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith("cucmconn.codec._c"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotBuilt())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from cucmconn import codec
print(codec.codec_backend())
for warning in caught:
    print(f"{warning.category.__name__}: {warning.message}")
"""


def _import_without_compiled(env: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_COMPILED],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    return result.stdout.strip().splitlines()


def test_missing_compiled_codec_warns_once() -> None:
    """Not built (no compiler at install time): the twins serve, and importing says so once."""
    env = {k: v for k, v in os.environ.items() if k != "CUCMCONN_NO_EXTENSIONS"}
    lines = _import_without_compiled(env)
    assert lines[0] == "python"
    assert len(lines) == 2, lines
    assert lines[1].startswith("RuntimeWarning: cucmconn: the compiled codec is not built")
    assert "CUCMCONN_NO_EXTENSIONS=1" in lines[1] and "pip install -e ." in lines[1]


def test_a_source_tree_without_a_build_says_not_built(tmp_path: Path) -> None:
    """Importing a source tree that was never built (PYTHONPATH=src) names the missing modules
    and the fix, not Python's "partially initialized module ... circular import" wording."""
    package = Path(codec.__file__).resolve().parents[1]
    shutil.copytree(package, tmp_path / "cucmconn", ignore=shutil.ignore_patterns("*.so", "*.pyd"))
    env = {k: v for k, v in os.environ.items() if k != "CUCMCONN_NO_EXTENSIONS"}
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "always",
            "-c",
            "from cucmconn import codec, client\nprint(codec.__file__, codec.codec_backend())",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**env, "PYTHONPATH": str(tmp_path)},
        cwd=tmp_path,
    )
    assert result.stdout.split() == [str(tmp_path / "cucmconn" / "codec" / "__init__.py"), "python"]
    assert "circular import" not in result.stderr and "partially initialized" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "RuntimeWarning" in line]
    assert len(warnings) == 1, result.stderr
    assert "the compiled codec is not built (_ccommands, _cevents, _cstomp missing" in warnings[0]
    assert "pip install -e ." in warnings[0]


def test_choosing_the_twin_knowingly_is_silent() -> None:
    lines = _import_without_compiled({**os.environ, "CUCMCONN_NO_EXTENSIONS": "1"})
    assert lines == ["python"]
