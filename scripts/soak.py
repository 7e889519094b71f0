#!/usr/bin/env python3
"""Soak: sustained command load through a real broker for N minutes, with RSS sampled.

    python scripts/soak.py --minutes 30 --rate 300 --agents 50          # starts its own ActiveMQ
    python scripts/soak.py --url stomp://127.0.0.1:61613 --minutes 5 --json
    python scripts/soak.py --url memory:// --minutes 1                   # no broker at all

A client drives ``--agents`` logged-in agents at ``--rate`` commands/s in total (GetState, and
with ``--calls`` MakeCall + ReleaseCall pairs) against the emulator in this same process.  The
soak itself is :func:`cucmconn.cli.soak.soak` (the reliability tests run its short version);
this file is its command line.  The run fails (exit 1) when

* the counts do not add up (sent != answered + errors + timeouts + lost + unavailable),
* any command failed other than by the client's documented errors, or is still pending,
* RSS after warm-up grew by more than ``--max-growth-mb``.

It prints one row per sample (or JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys

from cucmconn import run as run_loop
from cucmconn.cli.soak import SoakResult, broker_url, default_warmup, soak


def main(argv: list[str] | None = None) -> int:
    """Parse, soak, print the result; 0 when it passed, 1 when it failed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", help="broker URL (default: start a local ActiveMQ)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="commands/s in total")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--calls", action="store_true", help="mix in MakeCall/ReleaseCall")
    parser.add_argument("--max-growth-mb", type=float, default=20.0)
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds before RSS is judged (default: until the client's memory of finished "
        "command ids (65,536) is full, +60 s, at most half the run)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args(argv)
    seconds = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else default_warmup(seconds, args.rate)

    def say(text: str) -> None:
        if not args.json:
            print(text, flush=True)

    async def run() -> SoakResult:
        async with broker_url(args.url) as url:
            say(f"soak {seconds:g} s at {args.rate:g} cmd/s, {args.agents} agents, {url}")
            say(f"{'elapsed':>9}  {'RSS':>11}  outcomes")
            return await soak(
                url,
                seconds=seconds,
                rate=args.rate,
                agents=args.agents,
                calls=args.calls,
                max_growth_mb=args.max_growth_mb,
                warmup=warmup,
                report=say,
            )

    result = run_loop(run(), use_uvloop=not args.no_uvloop)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0 if result.ok else 1
    print(f"connector: {result.connector}")
    print(f"commands:  {result.tally.line()}  ({result.rate_achieved:,.0f}/s achieved)")
    print(
        f"RSS:       {result.rss_baseline_mb:.1f} MB after warm-up -> "
        f"{result.rss_final_mb:.1f} MB at the end (growth {result.rss_growth_mb:+.1f} MB, "
        f"bound {result.max_growth_mb:g} MB, max {result.rss_max_mb:.1f} MB)"
    )
    lat = result.tally.latency_ms()
    stats = result.client_stats
    print(
        f"latency:   p50 {lat['p50']:.2f} ms  p99 {lat['p99']:.2f} ms  max {lat['max']:.1f} ms; "
        f"late {stats['late']}, dropped events {stats['dropped_events']}"
    )
    timeline = "  ".join(f"{t:.0f}s:{mb:.1f}" for t, mb in result.rss_timeline_mb)
    print(f"RSS (MB): {timeline}")
    print("PASS" if result.ok else "FAIL: " + "; ".join(result.failures))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
