"""CPU time of another process (the broker, an emulator) from /proc, for CPU splits.

Benchmarks read it before and after a run to say how much CPU each process of a multi-process
setup spent per command: on a shared 2-core machine that split, not the wall clock, shows which
process sets a rate.
"""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds the process ``pid`` has used; None when it cannot be read."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
