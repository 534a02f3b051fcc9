"""Walk benchmark: hpcingest scan against find(1) and a plain os.scandir loop, same invocation.

Usage:  python benchmarks/walk.py [--entries 200000] [--workdir /tmp/hpcingest-bench] [--repeats 3]
                                  [--oversubscribed 16,32,64] [--skip-skewed]

Prints, for a balanced tree with a warm cache: entries/s of
  find SRC -printf '%s %T@\\n' > /dev/null,   a single-process os.scandir + lstat loop,
  hpcingest scan under mpiexec -n 1, 2, 4 (rate over the walk itself, and over the whole command),
and each ratio to find (median of --repeats alternating runs).  Then, on a skewed tree (one
100k-file directory + a 500-deep chain + a wide fan-out) at oversubscribed rank counts:
max/mean entries per rank, time from the last entry handled to exit, steal messages per 1,000
entries.  Then peak RSS per rank on the tree and on a tree 10x smaller.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import precompile  # noqa: E402
from hpcingest import sample  # noqa: E402
from hpcingest.launch import mpiexec_path  # noqa: E402

PYTHON_LOOP = r"""
import os, sys, time
def walk(top):
    n = 0
    stack = [top]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                s = e.stat(follow_symlinks=False)
                n += 1
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
    return n
t = time.perf_counter(); n = walk(os.fsencode(sys.argv[1])); print(n, time.perf_counter() - t)
"""


def make_tree(path: str, entries: int, layout: str) -> int:
    marker = os.path.join(path, f".complete-{layout}-{entries}")
    if not os.path.exists(marker):
        shutil.rmtree(path, ignore_errors=True)
        sample.generate(path, files=entries, seed=42, layout=layout, max_file_size=4096)
        open(marker, "w").close()
    out = subprocess.run(["find", path, "-mindepth", "1"], capture_output=True, check=True)
    return out.stdout.count(b"\n")


def time_find(path: str) -> float:
    t = time.perf_counter()
    subprocess.run(["find", path, "-printf", r"%s %T@\n"], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def time_python_loop(path: str) -> float:
    out = subprocess.run([sys.executable, "-c", PYTHON_LOOP, path], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[1])


def run_scan(path: str, ranks: int, extra_env: dict | None = None,
             launch: tuple[str, ...] = ("-m", "hpcingest", "scan")) -> tuple[dict, float]:
    """``launch``: the interpreter arguments before SRC (benchmarks/scale.py passes its own
    per-rank probe and scan options such as --max_rate)."""
    summary = tempfile.mktemp(suffix=".json")
    env = dict(os.environ, **(extra_env or {}))
    t = time.perf_counter()
    subprocess.run([mpiexec_path(), "-n", str(ranks), sys.executable, *launch, path,
                    "--quiet", "--json", summary], check=True, env=env)
    wall = time.perf_counter() - t
    with open(summary) as f:
        data = json.load(f)
    os.unlink(summary)
    return data, wall


def balanced_section(path: str, entries: int, repeats: int) -> None:
    print(f"\n## Balanced tree: {entries:,} entries, warm cache, median of {repeats} alternating runs")
    time_find(path)  # warm the cache
    times: dict[str, list[float]] = {"find": [], "python os.scandir loop": []}
    walls: dict[str, list[float]] = {}
    for _ in range(repeats):
        times["find"].append(time_find(path))
        times["python os.scandir loop"].append(time_python_loop(path))
        for n in (1, 2, 4):
            data, wall = run_scan(path, n)
            assert data["files"] + data["directories"] + data["symlinks"] + data["other"] == entries
            times.setdefault(f"hpcingest scan -n {n}", []).append(data["elapsed_s"])
            walls.setdefault(f"hpcingest scan -n {n}", []).append(wall)
    find_rate = entries / statistics.median(times["find"])
    print(f"{'method':28s} {'entries/s':>12s} {'x find':>8s} {'whole command':>14s} {'x find':>8s}")
    for name, samples in times.items():
        rate = entries / statistics.median(samples)
        wall_rate = entries / statistics.median(walls[name]) if name in walls else rate
        print(f"{name:28s} {rate:12,.0f} {rate / find_rate:8.2f} {wall_rate:14,.0f} {wall_rate / find_rate:8.2f}")
    print("(walk rate: hpcingest's own elapsed_s from the first barrier to the summary; whole command: "
          "including mpiexec and Python start-up, about 0.3-0.5 s)")


def skewed_section(path: str, entries: int, rank_counts: list[int]) -> None:
    print(f"\n## Skewed tree: {entries:,} entries (100k-file directory, 500-deep chain, wide fan-out), "
          "oversubscribed on this machine's cores")
    print(f"{'ranks':>5s} {'entries/s':>12s} {'max/mean':>9s} {'last entry->exit s':>19s} "
          f"{'steal msgs/1k entries':>22s} {'peak RSS MB max':>16s}")
    for n in rank_counts:
        data, _ = run_scan(path, n)
        steal_msgs = 2 * data["steal_requests"]  # request + reply
        print(f"{n:5d} {data['entries_per_s']:12,.0f} {data['balance_max_over_mean']:9.3f} "
              f"{data['termination_latency_s']:19.3f} {1000 * steal_msgs / entries:22.2f} "
              f"{max(data['peak_rss_mb_per_rank']):16.1f}")


def memory_section(big: str, big_entries: int, small: str, small_entries: int) -> None:
    print("\n## Peak RSS per rank (mpiexec -n 4) as the tree grows 10x")
    rows = []
    for path, entries in ((small, small_entries), (big, big_entries)):
        data, _ = run_scan(path, 4)
        rows.append(max(data["peak_rss_mb_per_rank"]))
        print(f"{entries:>10,} entries: max peak RSS per rank {rows[-1]:.1f} MB "
              f"(all ranks: {data['peak_rss_mb_per_rank']})")
    print(f"growth for 10x entries: {rows[1] / rows[0]:.3f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "hpcingest-bench"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--oversubscribed", default="16,32,64")
    parser.add_argument("--skip-skewed", action="store_true")
    args = parser.parse_args()
    precompile()  # time the code, not its compilation
    os.makedirs(args.workdir, exist_ok=True)
    print(f"# hpcingest walk benchmark ({os.cpu_count()} cores), command: {' '.join(sys.argv)}")
    balanced = os.path.join(args.workdir, "balanced")
    entries = make_tree(balanced, args.entries, "balanced")
    balanced_section(balanced, entries, args.repeats)
    if not args.skip_skewed:
        skewed = os.path.join(args.workdir, "skewed")
        skewed_entries = make_tree(skewed, args.entries, "skewed")
        skewed_section(skewed, skewed_entries, [int(n) for n in args.oversubscribed.split(",")])
    small = os.path.join(args.workdir, "balanced-small")
    small_entries = make_tree(small, args.entries // 10, "balanced")
    memory_section(balanced, entries, small, small_entries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
