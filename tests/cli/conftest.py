"""What the command-line tests share: running ``cucmconn`` in-process or as a subprocess, and a
scripted connector on memory:// for the cases that need one to misbehave on purpose."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from cucmconn.cli.main import main_async


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``cucmconn ARGV`` on the test's loop: (exit code, stdout, stderr)."""
    code = await main_async(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_json(out: str) -> dict[str, Any]:
    """stdout must hold exactly one JSON object (and nothing else)."""
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one JSON line on stdout, got {len(lines)}: {out[:500]}"
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data


def run_module(*argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``python -m cucmconn ARGV`` as a process, where the process boundary matters."""
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "cucmconn", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
