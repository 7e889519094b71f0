"""``python -m cucmconn.emulator``: the same as ``cucmconn emulate``."""

from __future__ import annotations

import sys

from .main import main

if __name__ == "__main__":
    sys.exit(main())
