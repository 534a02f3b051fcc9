"""Many ranks against one catalog: REGISTER_SYNC of the same tree with 4, 16, 64 and 128 ranks
against one built-in zone that models a busy server, with ratios against the 4-rank run of the
same invocation.

The zone (its own process) serves each request in --service-ms on at most --cores requests at
once, so its throughput stops rising at cores * 1000 / service-ms requests per second however many
agents it has, and refuses the agent past --max-db-connections as iRODS 5.0.2 does when PostgreSQL
has no connection left (default 97, a default install).  Every run registers the tree into a new
collection of the same zone.  Points run round robin (4, 16, 64, 128, 4, 16, ...) so that a
change in the machine's load falls on every rank count alike; medians of --repeats.

Usage: PYTHONPATH=. python benchmarks/many_ranks.py [--files 5000] [--ranks 4,16,64,128] [--repeats 3]
           [--service-ms 4] [--cores 2] [--max-db-connections 97] [--connections K|ranks]
           [--workdir /tmp/hpcingest-many-ranks]

Figures per run: the pass's files/s (from summary.json: walk and ingest, without the launch) and
the whole command's seconds (mpiexec, Python start-up of every rank, login, pass, summary).
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
from hpcingest.zone.testing import start_zone  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def tree(workdir: str, files: int) -> str:
    src = os.path.join(workdir, f"tree{files}")
    if not os.path.exists(src + ".complete"):
        shutil.rmtree(src, ignore_errors=True)
        sample.generate(src, files=files, seed=15, max_file_size=512)
        open(src + ".complete", "w").close()
    return src


def run(zone, src: str, ranks: int, workdir: str, connections: str | None) -> dict:
    """One pass into a fresh collection; the pass summary plus the command's wall time."""
    name = f"many_{ranks}_{time.time_ns()}"
    extra = [] if connections is None else ["--irods_connections", str(ranks if connections == "ranks" else connections)]
    started = time.perf_counter()
    subprocess.run([mpiexec_path(), "-n", str(ranks), sys.executable, "-m", "hpcingest", "start", src,
                    f"{zone.home}/{name}", "--synchronous", "--job_dir", os.path.join(workdir, "jobs"),
                    "--job_name", name, *extra], check=True, env={**os.environ, **zone.environ()},
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    with open(os.path.join(workdir, "jobs", name, "summary.json")) as f:
        summary = json.load(f)
    return {"wall_s": wall, "pass_s": summary["elapsed_s"], "files_per_s": summary["entries_per_s"],
            "connected": summary["ranks_with_connections"], "refused": summary.get("agents_refused", 0),
            "failed": summary["failed"]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--ranks", default="4,16,64,128")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--service-ms", type=float, default=4.0)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--max-db-connections", type=int, default=97)
    parser.add_argument("--connections", default=None,
                        help="--irods_connections for every run: a number, or 'ranks' (every rank connects, "
                             "as before the default of 16); default: hpcingest's default")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "hpcingest-many-ranks"))
    args = parser.parse_args(argv)
    counts = [int(r) for r in args.ranks.split(",")]
    precompile()
    os.makedirs(args.workdir, exist_ok=True)
    src = tree(args.workdir, args.files)
    print(f"# many ranks, one catalog ({os.cpu_count()} cores); command: {' '.join(sys.argv)}")
    print(f"# zone: --service-ms {args.service_ms:g} --cores {args.cores} --max-db-connections "
          f"{args.max_db_connections} (at most {args.cores * 1000 / args.service_ms:,.0f} requests/s); "
          f"tree: {args.files:,} files; load average at the start: {load()}")
    zone_root = os.path.join(args.workdir, f"zone-{time.time_ns()}")
    zone = start_zone(zone_root, subprocess_mode=True, service_ms=args.service_ms, cores=args.cores,
                      max_db_connections=args.max_db_connections)
    results: dict[int, list[dict]] = {r: [] for r in counts}
    try:
        for repeat in range(args.repeats):
            for ranks in counts:
                before = load()
                outcome = run(zone, src, ranks, args.workdir, args.connections)
                results[ranks].append(outcome)
                print(f"run {repeat + 1} ranks {ranks:4d}: pass {outcome['pass_s']:7.2f} s "
                      f"({outcome['files_per_s']:8,.1f} files/s), command {outcome['wall_s']:7.2f} s, "
                      f"connected {outcome['connected']}, refused {outcome['refused']}, failed {outcome['failed']}; "
                      f"load {before} -> {load()}", flush=True)
        refused_by_zone = zone.api_stats().get("agent_refused", {}).get("count", 0)
    finally:
        zone.stop()
        shutil.rmtree(zone_root, ignore_errors=True)
    base = statistics.median(r["files_per_s"] for r in results[counts[0]])
    base_wall = statistics.median(r["wall_s"] for r in results[counts[0]])
    print(f"\n| ranks | connected | pass files/s (median) | x vs {counts[0]} | per-run files/s | command s (median) "
          f"| x vs {counts[0]} | refused agents |")
    print("|---:|---:|---:|---:|---|---:|---:|---:|")
    for ranks in counts:
        runs = results[ranks]
        rate = statistics.median(r["files_per_s"] for r in runs)
        wall = statistics.median(r["wall_s"] for r in runs)
        per_run = " / ".join(format(r["files_per_s"], ",.0f") for r in runs)
        print(f"| {ranks} | {runs[0]['connected']} | {rate:,.0f} | {rate / base:.2f} | {per_run} | {wall:.1f} | "
              f"{wall / base_wall:.2f} | {sum(r['refused'] for r in runs)} |")
    print(f"\nagents the zone refused over the whole invocation: {refused_by_zone}; load average at the end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
