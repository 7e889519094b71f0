"""``cucmconn load --compare A.json B.json``: two runs' ``--json`` reports side by side.

Each row is one figure of the report, A's value, B's, and the ratio B / A (blank when either is
missing or A is zero), so "did this change make it faster" is one glance.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table

__all__ = ["FIGURES", "compare_rows", "load_report", "render_comparison"]

FIGURES: tuple[tuple[str, str], ...] = (
    ("agents", "agents"),
    ("logged_in", "logged in"),
    ("duration_s", "duration (s)"),
    ("commands", "commands"),
    ("throughput_cps", "throughput (/s)"),
    ("latency_ms.p50", "latency p50 (ms)"),
    ("latency_ms.p99", "latency p99 (ms)"),
    ("latency_ms.max", "latency max (ms)"),
    ("answered", "answered"),
    ("errors", "errors"),
    ("unavailable", "unavailable"),
    ("timeouts", "timeouts"),
    ("lost", "lost"),
    ("calls", "calls"),
    ("cpu_us_per_command", "CPU per command (us)"),
    ("cpu_us_per_event", "CPU per event (us)"),
    ("login_storm_s", "log-in storm (s)"),
    ("max_rss_mb", "peak RSS (MB)"),
)
"""(key in the report, dotted for nested ones; label) of each compared figure."""


def load_report(path: str) -> dict[str, Any]:
    """Read one ``--json`` report; ValueError naming the file when it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"--compare: cannot read {path!r}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"--compare: {path!r} is not JSON ({exc.msg}, line {exc.lineno})") from exc
    if not isinstance(data, dict) or "commands" not in data or "throughput_cps" not in data:
        raise ValueError(f"--compare: {path!r} is not a `cucmconn load --json` report")
    return data


def _get(report: Mapping[str, Any], key: str) -> float | None:
    value: Any = report
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def compare_rows(
    a: Mapping[str, Any], b: Mapping[str, Any]
) -> list[tuple[str, float | None, float | None, float | None]]:
    """(label, A, B, B / A) for each figure either report has."""
    rows = []
    for key, label in FIGURES:
        left, right = _get(a, key), _get(b, key)
        if left is None and right is None:
            continue
        ratio = right / left if left and right is not None else None
        rows.append((label, left, right, ratio))
    return rows


def _fmt(value: float | None) -> str:
    """A whole number as one (counts: ``38,375``, ``0``), anything else to three decimals."""
    if value is None:
        return "-"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.3f}"


def render_comparison(a: Mapping[str, Any], b: Mapping[str, Any], names: tuple[str, str]) -> Table:
    """The side-by-side table (``names`` head the A and B columns)."""
    table = Table(title="cucmconn load: A vs B", header_style="bold")
    table.add_column("figure")
    table.add_column(f"A {names[0]}", justify="right")
    table.add_column(f"B {names[1]}", justify="right")
    table.add_column("B / A", justify="right")
    for label, left, right, ratio in compare_rows(a, b):
        table.add_row(label, _fmt(left), _fmt(right), "-" if ratio is None else f"{ratio:.3f}")
    return table
