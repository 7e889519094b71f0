"""Lean dependencies: ``import cucmconn`` needs msgspec only; each extra fails in one line.

Each check runs in a fresh interpreter with a meta-path finder that refuses rich, aiostomp,
stomp.py and uvloop, as on a machine where only ``pip install cucmconn`` ran.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap

import pytest
from packaging.requirements import Requirement

OPTIONAL = ("rich", "aiostomp", "stomp", "uvloop")

_BLOCKER = """
import importlib.abc, sys

class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Absent())
for _name in list(sys.modules):
    if _name.split(".")[0] in ABSENT:
        del sys.modules[_name]
"""


def _run_without_extras(
    code: str, absent: tuple[str, ...] = OPTIONAL
) -> subprocess.CompletedProcess[str]:
    blocker = f"ABSENT = {absent!r}\n{_BLOCKER}"
    return subprocess.run(
        [sys.executable, "-c", blocker + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_import_cucmconn_needs_msgspec_only() -> None:
    result = _run_without_extras(
        """
        import sys
        # What the interpreter loaded before us (a site .pth hook may import certifi, say) is
        # not ours to answer for: only what importing cucmconn adds counts.
        before = {m.split(".")[0] for m in sys.modules}
        import cucmconn, cucmconn.client, cucmconn.codec, cucmconn.emulator, cucmconn.transport
        import cucmconn.transport.stomp, cucmconn.transport.memory, cucmconn.broker
        import cucmconn.trace, cucmconn.testing

        tops = {m.split(".")[0] for m in sys.modules} - before
        tops -= set(sys.stdlib_module_names) | set(sys.builtin_module_names)
        # msgspec's own typing_extensions, setuptools' .pth hook, Cython's runtime modules
        known = {"__main__", "cucmconn", "msgspec", "typing_extensions", "_distutils_hack"}
        others = sorted(t for t in tops - known if not t.startswith(("cython_", "_cython_")))
        assert not others, f"import cucmconn loaded undeclared third-party modules: {others}"
        assert "msgspec" in sys.modules
        assert cucmconn.run is not None
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_installed_metadata_requires_msgspec_only() -> None:
    """Every unconditional requirement of the installed distribution is msgspec."""
    requirements = [Requirement(r) for r in importlib.metadata.requires("cucmconn") or []]
    unconditional = [r.name for r in requirements if r.marker is None]
    assert unconditional == ["msgspec"]
    extras = importlib.metadata.metadata("cucmconn").get_all("Provides-Extra") or []
    assert {"cli", "aiostomp", "stomppy", "uvloop", "all", "dev"} <= set(extras)


@pytest.mark.parametrize("scheme, extra", [("aiostomp", "aiostomp"), ("stomppy", "stomppy")])
def test_adapter_url_without_the_extra_names_it(scheme: str, extra: str) -> None:
    result = _run_without_extras(
        f"""
        from cucmconn.errors import ConnectorError, MissingExtra
        from cucmconn.transport import open_transport

        try:
            open_transport("{scheme}://127.0.0.1:61613")
        except MissingExtra as exc:
            assert isinstance(exc, ConnectorError) and isinstance(exc, ImportError)
            assert exc.extra == "{extra}"
            print(exc)
        else:
            raise AssertionError("{scheme}:// opened without its package installed")
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert f"pip install 'cucmconn[{extra}]'" in lines[0]


def test_cli_without_the_extra_is_one_line_naming_it() -> None:
    result = _run_without_extras(
        """
        import runpy, sys
        sys.argv = ["cucmconn", "demo"]
        runpy.run_module("cucmconn", run_name="__main__")
        """
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "pip install 'cucmconn[cli]'" in lines[0]


def test_uvloop_missing_means_asyncio_for_run() -> None:
    """``cucmconn.run()`` uses uvloop when installed, else plain asyncio (no error)."""
    result = _run_without_extras(
        """
        import asyncio, cucmconn

        async def which() -> str:
            return type(asyncio.get_running_loop()).__module__

        print(cucmconn.run(which()))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("asyncio")


def test_cli_loop_uvloop_without_the_extra_names_it() -> None:
    """With the CLI installed but not uvloop, ``--loop uvloop`` names the extra (markup kept)."""
    result = _run_without_extras(
        """
        import runpy, sys
        sys.argv = ["cucmconn", "--loop", "uvloop", "demo", "--duration", "1"]
        runpy.run_module("cucmconn", run_name="__main__")
        """,
        absent=("uvloop",),
    )
    assert result.returncode == 2, result.stderr
    assert "pip install 'cucmconn[uvloop]'" in result.stderr
