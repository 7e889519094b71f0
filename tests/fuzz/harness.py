"""atheris entry point: ``python -m tests.fuzz.harness <target> [libFuzzer options] [corpus]``.

One target per process because libFuzzer owns the process and exits when it is done.  The
pure-Python codec modules are instrumented for coverage; the compiled twins run alongside as
the differential oracle (they are not instrumented: coverage guidance comes from the twins).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["cucmconn"]):
    from tests.fuzz.targets import TARGETS


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m tests.fuzz.harness {{{','.join(TARGETS)}}} [libFuzzer args]")
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
