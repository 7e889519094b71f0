"""Sphinx configuration for the cucmconn API reference (built from the docstrings).

Build: ``python -m sphinx -W --keep-going -n -b html docs/api build/docs`` (scripts/test.sh does,
warnings are errors).
"""

from __future__ import annotations

import cucmconn

project = "cucmconn"
author = "cucmconn developers"
copyright = "2026, cucmconn developers"
release = cucmconn.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]

root_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_preserve_defaults = True
add_module_names = False

# No network in CI: Python's own names are left unlinked rather than fetched.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

nitpicky = True
nitpick_ignore_regex = [
    # Standard-library and third-party names: no inventory is fetched (CI has no network).
    (
        r"py:class",
        r"(asyncio|collections\.abc|typing|types|enum|msgspec|os|pathlib|collections)\..*",
    ),
    # Internal classes named in public signatures (cucmconn.<package>.<module>.<Class>): shown
    # as text.  Public names (cucmconn.<Name>) must still resolve.
    (r"py:class", r"cucmconn\.\w+\.\w+\.\w+"),
    (r"py:class", r"(Mapping|Callable|Awaitable|Future|TracebackType|AsyncIterator)"),
    (r"py:class", r"(StrEnum|Enum|TypeVar|Any)"),
    (r"py:class", r"_asyncio\.Future"),
    (r"py:(class|obj)", r"cucmconn\..*\._[A-Za-z]\w*"),  # private helpers named in signatures
    (r"py:(class|obj)", r"(cucmconn\.[\w.]+\.)?_?[A-Z]"),  # TypeVars
]
# Internal types that appear in public signatures but are not part of this reference.
nitpick_ignore = [
    ("py:class", "cucmconn.transport.base.Transport"),
    ("py:class", "cucmconn.client.correlation.Expect"),
    ("py:class", "cucmconn.client.stats.StatsCounters"),
    ("py:class", "StatsCounters"),
    ("py:class", "cucmconn.emulator.model.CucmModel"),
    ("py:class", "AgentTracker"),
    ("py:class", "Trace"),
]
