"""``cucmconn load --report PATH.html``: the run as one self-contained HTML page (the ``report``
extra: plotly).

The page holds plotly's JavaScript inline (no CDN, it opens offline) and draws, from the very
dict ``--json`` prints: throughput per second, p50 and p99 latency per second, errors by code
over time, the latency histogram, and the run's parameters and totals.  Every number on the page
comes from that dict, so the page and the JSON cannot disagree.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import MissingExtra

try:
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingExtra("report", "--report") from exc

__all__ = ["TOTALS", "check_report_path", "render_html", "write_html_report"]

TOTALS = (
    "commands",
    "answered",
    "errors",
    "unavailable",
    "timeouts",
    "lost",
    "unanswered",
    "calls",
    "throughput_cps",
    "duration_s",
    "logged_in",
    "login_failures",
)
"""The totals the page shows, by their ``--json`` key (each cell carries it as ``data-key``)."""

_PARAMETERS = ("url", "agents", "scenario", "rate_limit_cps", "emulated", "codec", "loop")

_LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "height": 320,
    "margin": {"l": 60, "r": 20, "t": 50, "b": 45},
    "xaxis": {"title": {"text": "seconds into the traffic"}},
}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
.verdict { margin: 0 0 1em; }
.ok { color: #1a7f37; } .bad { color: #cf222e; }
table { border-collapse: collapse; margin: 0 2em 1em 0; }
td, th { padding: 3px 12px; border-bottom: 1px solid #ddd; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.tables { display: flex; flex-wrap: wrap; align-items: flex-start; }
"""


def check_report_path(path: str) -> None:
    """Refuse, before the run, a path the report could not be written to."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"--report {path!r} is a directory; give a file name (.html)")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"--report {path!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"--report {path!r}: directory {str(parent)!r} is not writable")


def _figure(title: str, yaxis: str, **layout: Any) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(_LAYOUT, title={"text": title}, yaxis={"title": {"text": yaxis}}, **layout)
    return fig


def _figures(report: Mapping[str, Any]) -> list[tuple[str, go.Figure]]:
    timeline: Sequence[Mapping[str, Any]] = report.get("timeline") or []
    t = [s["t"] for s in timeline]
    throughput = _figure("Throughput", "commands / s")
    throughput.add_scatter(
        x=t, y=[s["throughput_cps"] for s in timeline], mode="lines+markers", name="commands/s"
    )
    latency = _figure("Latency per second", "ms")
    latency.add_scatter(x=t, y=[s["latency_p50_ms"] for s in timeline], name="p50")
    latency.add_scatter(x=t, y=[s["latency_p99_ms"] for s in timeline], name="p99")
    errors = _figure("Errors by code", "commands", barmode="stack")
    codes = sorted({code for s in timeline for code in s["errors_by_code"]})
    for code in codes:
        errors.add_bar(x=t, y=[s["errors_by_code"].get(code, 0) for s in timeline], name=code)
    for column in ("timeouts", "lost", "unavailable"):
        if any(s[column] for s in timeline):
            errors.add_bar(x=t, y=[s[column] for s in timeline], name=column)
    if not errors.data:
        errors.add_bar(x=t, y=[0 for _ in timeline], name="none")
    rows: Sequence[Sequence[float]] = report.get("latency_histogram") or []
    histogram = _figure(
        "Latency histogram (answered commands)",
        "commands",
        xaxis={"title": {"text": "ms (bucket upper edge, log scale)"}, "type": "log"},
    )
    histogram.add_bar(x=[edge for edge, _ in rows], y=[n for _, n in rows], name="commands")
    return [
        ("throughput", throughput),
        ("latency", latency),
        ("errors", errors),
        ("histogram", histogram),
    ]


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return html.escape("" if value is None else str(value))


def _table(title: str, keys: Sequence[str], report: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><th>{html.escape(key)}</th><td class="n" data-key="{html.escape(key)}" '
        f'data-value="{html.escape(str(report.get(key)))}">{_cell(report.get(key))}</td></tr>'
        for key in keys
        if key in report
    )
    return f"<table><caption>{html.escape(title)}</caption>{rows}</table>"


def render_html(report: Mapping[str, Any], title: str, verdict: str) -> str:
    """The page as a string: plotly's JavaScript inline, then the tables and the four charts."""
    latency = report.get("latency_ms") or {}
    lat = {f"latency_{k}_ms": v for k, v in latency.items()}
    charts = "".join(
        fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{name}")
        for name, fig in _figures(report)
    )
    codes = report.get("errors_by_code") or {}
    code_rows = "".join(
        f'<tr><th>{html.escape(code)}</th><td class="n">{n:,}</td></tr>'
        for code, n in codes.items()
    )
    ok = "ok" if verdict == "nothing lost" else "bad"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f"<h1>{html.escape(title)}</h1>"
        f'<p class="verdict {ok}" id="verdict">{html.escape(verdict)}</p>'
        '<div class="tables">'
        f"{_table('Parameters', _PARAMETERS, report)}"
        f"{_table('Totals', TOTALS, report)}"
        f"{_table('Latency (traffic)', list(lat), lat)}"
        + (f"<table><caption>Errors by code</caption>{code_rows}</table>" if code_rows else "")
        + f"</div>{charts}</body></html>\n"
    )


def write_html_report(report: Mapping[str, Any], path: str, title: str, verdict: str) -> None:
    """Write :func:`render_html` to ``path`` (whole, or not at all: a temporary file renamed)."""
    page = render_html(report, title, verdict)
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(target)
