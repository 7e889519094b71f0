"""docs/testing.md: every code sample is copied from a file that CI runs, verbatim, and names it.

A sample is a fenced ``python`` block preceded by ``<!-- from: <path> -->``; the path must be a
test file this repository runs (under ``tests/`` or an example's ``test_*.py``, which
scripts/test.sh runs) and must contain the block as written.  ``text`` blocks are outputs.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "testing.md"
SAMPLE = re.compile(r"<!-- from: (\S+) -->\n```python\n(.*?)```", re.S)
FENCE = re.compile(r"^```(\w*)$", re.M)


def test_every_code_sample_comes_from_a_file_ci_runs() -> None:
    text = DOC.read_text(encoding="utf-8")
    samples = SAMPLE.findall(text)
    languages = FENCE.findall(text)[::2]  # opening fences only
    assert languages.count("python") == len(samples) >= 10, "a python sample without its source"
    assert set(languages) <= {"python", "text"}, f"unexpected code blocks: {set(languages)}"
    for path, code in samples:
        assert path.startswith("tests/") or re.fullmatch(r"examples/\w+/test_\w+\.py", path), path
        source = (ROOT / path).read_text(encoding="utf-8")
        assert code in source, f"docs/testing.md sample no longer matches {path}:\n{code}"


def test_the_failure_shown_in_the_doc_is_the_proofs_message() -> None:
    text = DOC.read_text(encoding="utf-8")
    proof = (ROOT / "tests" / "testing" / "test_plugin.py").read_text(encoding="utf-8")
    shown = "expected AnswerCall for agent 1001 with args '52129051': not seen within 2 s"
    assert shown in text and shown in proof  # the proof asserts the very message the doc shows
