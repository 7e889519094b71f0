"""The examples run as they stand, end cleanly, and the README's code block is one of them.

Each example is run three ways: in this process on ``memory://`` (on every event loop, with the
emulator it starts recorded so the test can see that every agent logged out and no call is
left up), as a subprocess exactly as a user types it (``python examples/x.py``), and as a
subprocess against a real ActiveMQ with the emulator on that broker.
"""

from __future__ import annotations

import asyncio
import os
import runpy
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import cucmconn
from tests.activemq import BrokerHandle

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(path.name for path in EXAMPLES_DIR.glob("*.py"))
README_MARKER = "<!-- example: examples/quickstart.py"


def _load_main(name: str) -> Callable[[str], Awaitable[None]]:
    namespace = runpy.run_path(str(EXAMPLES_DIR / name), run_name="cucmconn_example")
    main: Callable[[str], Awaitable[None]] = namespace["main"]
    return main


def _assert_clean(emulator: cucmconn.Emulator) -> None:
    model = emulator.model
    assert dict(model.agents) == {}, "an example left agents logged in"
    assert dict(model.calls) == {}, "an example left a call up"


def test_examples_exist() -> None:
    assert {"quickstart.py", "inbound_calls.py", "watch_events.py"} <= set(EXAMPLES)


def test_readme_code_block_is_examples_quickstart() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count(README_MARKER) == 1
    after = readme.index(README_MARKER)
    start = readme.index("```python\n", after) + len("```python\n")
    end = readme.index("```\n", start)
    assert readme[start:end] == (EXAMPLES_DIR / "quickstart.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", EXAMPLES)
async def test_example_runs_on_memory_and_ends_clean(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[cucmconn.Emulator] = []

    class RecordingEmulator(cucmconn.Emulator):
        async def start(self) -> None:
            started.append(self)
            await super().start()

    monkeypatch.setattr(cucmconn, "Emulator", RecordingEmulator)
    main = _load_main(name)
    async with asyncio.timeout(60):
        await main("memory://")
    assert len(started) == 1, "on memory:// an example starts its own emulator"
    _assert_clean(started[0])
    assert capsys.readouterr().out.strip(), "an example shows what it did"


def _run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("CUCMCONN_TEST_LOOPS", None)
    return subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_as_a_script(name: str) -> None:
    done = _run_example(name)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


@pytest.mark.parametrize("name", EXAMPLES)
async def test_example_runs_against_activemq(name: str, activemq: BrokerHandle) -> None:
    async with cucmconn.Emulator(activemq.stomp_url) as emulator:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLES_DIR / name),
            activemq.stomp_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        try:
            async with asyncio.timeout(120):
                out, err = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        assert process.returncode == 0, err.decode()
        assert out.strip()
        await emulator.drain()
        _assert_clean(emulator)
