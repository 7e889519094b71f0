"""``python -m cucmconn.emulator``: an alias of ``cucmconn emulate`` (same options, exit codes).

The command line lives in :mod:`cucmconn.cli.emulate` (it needs the ``cli`` extra); this entry
script only hands it the argv, so the emulator package itself never imports the CLI.
"""

from __future__ import annotations

import sys

from ..cli.main import main

if __name__ == "__main__":
    sys.exit(main(["emulate", *sys.argv[1:]]))
