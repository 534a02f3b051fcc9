"""What `--profile` (and per-file INFO logging) cost, measured against plain runs in the same invocation.

Usage:  python benchmarks/profile_overhead.py [--files 50000] [--ranks 4] [--rounds 3] [--latency-ms 0.5]
                                               [--workdir /tmp/hpcingest-profile-bench]

For an initial REGISTER_SYNC (each run into a fresh collection) and for an unchanged second pass,
runs the plain job, the job with --profile, and the job with --log_level INFO to a file,
alternating them round by round (this machine is noisy), and prints the median time of each and
its ratio to the plain job.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import precompile  # noqa: E402
from benchmarks.ingest import run_start  # noqa: E402
from hpcingest import sample  # noqa: E402
from hpcingest.zone.testing import start_zone  # noqa: E402


def variants(workdir: str) -> dict[str, list[str]]:
    return {"plain": [], "--profile": ["--profile"],
            "--log_level INFO": ["--log_level", "INFO", "--log_filename", os.path.join(workdir, "info.log")]}


def report(title: str, times: dict[str, list[float]], files: int) -> None:
    base = statistics.median(times["plain"])
    print(f"\n## {title} ({files:,} files, median of {len(times['plain'])})")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:18s} {median:8.3f} s  {files / median:10,.0f} files/s  ratio to plain {median / base:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--ranks", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=0.5)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "hpcingest-profile-bench"))
    args = parser.parse_args()
    precompile()  # time the code, not its compilation
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    print(f"# profile/log overhead ({os.cpu_count()} cores), command: {' '.join(sys.argv)}")
    tree = sample.generate(os.path.join(args.workdir, "tree"), files=args.files, seed=5)
    src = os.fsdecode(tree.root)
    zone = start_zone(os.path.join(args.workdir, "zone"), subprocess_mode=True, latency_ms=args.latency_ms)
    kinds = variants(args.workdir)
    initial: dict[str, list[float]] = {name: [] for name in kinds}
    unchanged: dict[str, list[float]] = {name: [] for name in kinds}
    try:
        for round_number in range(args.rounds):
            for name, extra in kinds.items():
                target = f"{zone.home}/p{round_number}_{name.strip('-').replace(' ', '_')}"
                initial[name].append(run_start(zone, src, target, args.ranks, args.workdir, *extra))
            for name, extra in kinds.items():  # second passes, after every first pass of the round
                target = f"{zone.home}/p{round_number}_{name.strip('-').replace(' ', '_')}"
                unchanged[name].append(run_start(zone, src, target, args.ranks, args.workdir, *extra))
            print(f"round {round_number + 1}/{args.rounds} done at {time.strftime('%H:%M:%S')}", flush=True)
    finally:
        zone.stop()
    report("initial REGISTER_SYNC", initial, tree.files)
    report("unchanged second pass", unchanged, tree.files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
