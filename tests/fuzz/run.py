"""Run every fuzz target for a bounded number of inputs: ``python -m tests.fuzz.run``.

Each target runs in its own process (libFuzzer exits when done) from a fresh corpus seeded
with valid samples, with a fixed seed so a run is reproducible.  A crash leaves the input in
``--artifacts`` and makes the exit status 1; the summary gives inputs, coverage and time.

    python -m tests.fuzz.run                      # 20,000 inputs per target
    python -m tests.fuzz.run --runs 1000000 frames
    python -m tests.fuzz.run --seconds 600        # time-bounded instead
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["FuzzResult", "fuzz", "main"]

ROOT = Path(__file__).resolve().parents[2]
_COV = re.compile(r"cov: (\d+) ft: (\d+)")
_EXECUTED = re.compile(r"stat::number_of_executed_units: (\d+)")


@dataclass
class FuzzResult:
    target: str
    ok: bool
    inputs: int
    coverage: int
    features: int
    seconds: float
    crash: str | None
    tail: str

    def row(self) -> str:
        verdict = "ok" if self.ok else f"CRASH {self.crash or ''}"
        return (
            f"{self.target:<8} {self.inputs:>9,} inputs  cov {self.coverage:>4}  "
            f"ft {self.features:>5}  {self.seconds:6.1f} s  {verdict}"
        )


def fuzz(
    target: str,
    *,
    runs: int = 20_000,
    seconds: int = 0,
    seed: int = 1,
    artifacts: Path | None = None,
) -> FuzzResult:
    """Run one target in a subprocess and report what happened."""
    from tests.fuzz.targets import SEEDS

    artifacts = artifacts or Path(tempfile.mkdtemp(prefix="cucmconn-fuzz-"))
    with tempfile.TemporaryDirectory(prefix=f"corpus-{target}-") as corpus:
        for index, sample in enumerate(SEEDS[target]):
            (Path(corpus) / f"seed-{index}").write_bytes(sample)
        limit = [f"-max_total_time={seconds}"] if seconds else [f"-runs={runs}"]
        command = [
            sys.executable, "-m", "tests.fuzz.harness", target, *limit, f"-seed={seed}",
            "-timeout=10", "-rss_limit_mb=1024", "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/{target}-", corpus,
        ]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - started
    log = done.stderr
    coverage = _COV.findall(log)
    executed = _EXECUTED.search(log)
    crash = next(
        (line.split()[-1] for line in log.splitlines() if "Test unit written" in line), None
    )
    return FuzzResult(
        target=target,
        ok=done.returncode == 0,
        inputs=int(executed.group(1)) if executed else 0,
        coverage=int(coverage[-1][0]) if coverage else 0,
        features=int(coverage[-1][1]) if coverage else 0,
        seconds=elapsed,
        crash=crash,
        tail="\n".join(log.splitlines()[-25:]),
    )


def main(argv: list[str] | None = None) -> int:
    from tests.fuzz.targets import KNOWN_BUGS, TARGETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help=f"any of {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--runs", type=int, default=20_000, help="inputs per target")
    parser.add_argument("--seconds", type=int, default=0, help="time per target instead")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    results = [
        fuzz(t, runs=args.runs, seconds=args.seconds, seed=args.seed)
        for t in (args.targets or list(TARGETS))
    ]
    if args.json:
        print(json.dumps([asdict(r) | {"tail": None} for r in results], indent=2))
    else:
        for result in results:
            print(result.row())
            if not result.ok:
                print(result.tail)
        print(f"known bugs skipped by signature: {', '.join(KNOWN_BUGS) or 'none'}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
