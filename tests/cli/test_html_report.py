"""``cucmconn load --report PATH.html`` opened in headless Chromium (Debian's ``chromium``): no
console errors, the charts drawn, a screenshot that is not blank, and the totals on the page
equal to the ``--json`` report of the same run.  Also ``--json``'s ``timeline`` and
``--compare``."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cucmconn.cli.htmlreport import TOTALS, write_html_report
from cucmconn.cli.load import LoadOptions, measure
from tests.fakeconnector import FakeConnector, Reply

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (scripts/test.sh installs it)"
)


def _chromium(page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp / f"profile-{len(list(tmp.iterdir()))}"
    return subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--no-first-run",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=5000", *extra, page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )  # fmt: skip


_CONSOLE = re.compile(r"CONSOLE[:(]\d+\)?\] \"(.*)\", source")


def _console_errors(stderr: str) -> list[str]:
    """What the page's scripts logged or threw (Chromium logs them as CONSOLE lines)."""
    return [m.group(1) for m in _CONSOLE.finditer(stderr)]


class _Cells(HTMLParser):
    """The ``data-key``/``data-value`` cells of the page, and how many SVGs plotly drew."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.plots = 0
        self.fetched: list[str] = []
        """src/href of any element: a self-contained page has none."""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        key, value = found.get("data-key"), found.get("data-value")
        if key is not None and value is not None:
            self.values[key] = value
        self.fetched += [v for k, v in attrs if k in ("src", "href") and v and tag != "a"]
        if tag == "svg" and "main-svg" in (found.get("class") or ""):
            self.plots += 1


def _run_load(tmp: Path, *argv: str) -> tuple[dict[str, Any], Path]:
    page = tmp / "run.html"
    done = subprocess.run(
        [sys.executable, "-m", "cucmconn", "load", "--agents", "20", "--duration", "2.5",
         "--json", "--no-progress", "--report", str(page), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout), page


@needs_chromium
def test_report_opens_offline_with_the_json_totals(tmp_path: Path) -> None:
    report, page = _run_load(tmp_path)
    written = _Cells()
    written.feed(page.read_text(encoding="utf-8"))
    assert written.fetched == []  # plotly's JavaScript is inline: nothing to fetch
    dom = _chromium(page, tmp_path, "--dump-dom")
    assert _console_errors(dom.stderr) == []
    cells = _Cells()
    cells.feed(dom.stdout)
    assert cells.plots >= 4, "plotly did not draw the four charts"
    shown = {key: cells.values[key] for key in TOTALS}
    assert {k: float(v) for k, v in shown.items()} == {k: float(report[k]) for k in TOTALS}
    assert report["commands"] > 0

    shot = tmp_path / "shot.png"
    _chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,1600")
    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50, "the screenshot is (nearly) blank"
    assert colours is None or max(n for n, _ in colours) < 0.97 * 1200 * 1600


@needs_chromium
def test_console_error_detection_works(tmp_path: Path) -> None:
    """The check above can fail: a page that throws is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>throw new Error('broken page')</script></body></html>")
    dom = _chromium(page, tmp_path, "--dump-dom")
    assert any("broken page" in line for line in _console_errors(dom.stderr)), dom.stderr[-2000:]


def test_timeline_sums_to_the_totals_and_compare_prints_ratios(tmp_path: Path) -> None:
    report, _ = _run_load(tmp_path)
    timeline = report["timeline"]
    assert len(timeline) >= 2
    assert all(0 < s["seconds"] < 1.6 for s in timeline)
    for column in ("commands", "answered", "errors", "timeouts", "lost", "unavailable"):
        assert sum(s[column] for s in timeline) == report[column], column
    assert all(s["latency_p99_ms"] >= s["latency_p50_ms"] > 0 for s in timeline)
    assert sum(n for _, n in report["latency_histogram"]) == report["answered"] + report["errors"]

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(report))
    b.write_text(json.dumps({**report, "throughput_cps": report["throughput_cps"] * 2}))
    done = subprocess.run(
        [sys.executable, "-m", "cucmconn", "load", "--compare", str(a), str(b)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"},
    )
    row = next(line for line in done.stdout.splitlines() if "throughput" in line)
    assert "2.000" in row
    bad = subprocess.run(
        [sys.executable, "-m", "cucmconn", "load", "--compare", str(a), str(tmp_path / "no")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "cannot read" in bad.stderr


def test_report_path_is_checked_before_the_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cucmconn", "load", "--agents", "2", "--duration", "1",
         "--report", str(tmp_path / "missing" / "r.html")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "does not exist" in done.stderr


@needs_chromium
async def test_report_shows_errors_by_code_over_time(fake: FakeConnector, tmp_path: Path) -> None:
    """Against the scripted connector, every MakeCall is refused, alternately with two codes:
    the errors chart names both and the totals still equal the report's."""
    turn = itertools.count()
    codes = ("INVALID_PARTY", "CF_INVALID_OBJECT_STATE")
    fake.script["MakeCall"] = lambda c: [Reply(f"{c.target}#Error#{codes[next(turn) % 2]}")]
    opts = LoadOptions(agents=4, duration=1.5, emulate=False, progress=False)
    report = await measure(opts)
    assert set(report["errors_by_code"]) == set(codes) and report["errors"] > 0
    for code in codes:
        over_time = sum(s["errors_by_code"].get(code, 0) for s in report["timeline"])
        assert over_time == report["errors_by_code"][code]
    page = tmp_path / "errors.html"
    write_html_report(report, str(page), "errors run", "nothing lost")
    dom = _chromium(page, tmp_path, "--dump-dom")
    assert _console_errors(dom.stderr) == []
    cells = _Cells()
    cells.feed(dom.stdout)
    assert float(cells.values["errors"]) == report["errors"]
    # the errors chart's legend names each code (plotly draws legend entries as SVG text)
    chart = dom.stdout.split('id="chart-errors"', 1)[1].split('id="chart-histogram"', 1)[0]
    assert all(code in chart for code in codes)
