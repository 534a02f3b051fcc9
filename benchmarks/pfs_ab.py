"""A/B of two checkouts of hpcingest: the same ``hpcingest scan --list`` (or ``start``) on latfs, alternating.

Usage:  python benchmarks/pfs_ab.py --a DIR --b DIR --tree SRC [--ranks 256] [--repeats 2]
                                    [--latency-ms 1] [--threads 256] [--command scan|start]
                                    [--a-env NAME=VALUE ...] [--b-env NAME=VALUE ...]

For a change whose effect is smaller than the noise between invocations (256 ranks on two cores):
A and B run in turn on the same latfs mount, each started once the CPUs are idle (until 2026-12-07:
once the load average was below 3), and
each line gives the summary's own figures (entries/s, balance, last entry -> every rank knows,
last entry -> summary, last entry -> the command's exit).  ``--command start`` runs a one-pass
REGISTER_SYNC of the tree into a fresh collection of one built-in zone instead, each line giving
the command's wall time, the pass's own (its summary's elapsed time) and what the command took
after the summary was written.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import latfs  # noqa: E402
from benchmarks.common import wait_for_idle_cpus  # noqa: E402
from hpcingest.launch import mpiexec_path  # noqa: E402


def scan_once(checkout: str, ranks: int, fs: latfs.Mount, workdir: str, env: dict) -> dict:
    summary, listing = os.path.join(workdir, "summary.json"), os.path.join(workdir, "listing")
    mountpoint, before = fs.mountpoint, fs.counters()
    subprocess.run([mpiexec_path(), "-n", str(ranks), sys.executable, "-m", "hpcingest", "scan", mountpoint,
                    "--quiet", "--json", summary, "--list", listing],
                   check=True, cwd=checkout, env={**os.environ, **env, "PYTHONPATH": checkout})
    exited = time.time()
    used = fs.counters() - before
    with open(summary) as f:
        result = json.load(f)
    result["ops_per_entry"] = used.metadata_ops / max(1, sum(result["entries_per_rank"]))
    # the summary file is written as rank 0 takes its end time: its mtime places the last entry
    # on this clock, and the command's exit (every rank's, listing written) is measured from it
    last_entry = os.stat(summary).st_mtime - result["exit_latency_s"]
    result["command_exit_latency_s"] = exited - last_entry
    return result


def start_once(checkout: str, ranks: int, mountpoint: str, workdir: str, zone, env: dict) -> dict:
    jobs = tempfile.mkdtemp(prefix="jobs-", dir=workdir)
    began = time.time()
    subprocess.run([mpiexec_path(), "-n", str(ranks), sys.executable, "-m", "hpcingest", "start", mountpoint,
                    f"{zone.home}/ab_{time.time_ns()}", "--synchronous", "--job_dir", jobs, "--job_name", "ab"],
                   check=True, cwd=checkout, env={**os.environ, **env, **zone.environ(), "PYTHONPATH": checkout},
                   stdout=subprocess.DEVNULL)
    exited = time.time()
    summary = os.path.join(jobs, "ab", "summary.json")
    with open(summary) as f:
        result = json.load(f)
    result["wall_s"] = exited - began
    result["after_summary_s"] = exited - os.stat(summary).st_mtime
    return result


def compare_starts(args, mountpoint: str, workdir: str) -> None:
    from hpcingest.zone.testing import start_zone

    print("| run | wall (s) | pass elapsed (s) | summary written → command exit (s) | entries/s | load at start |")
    print("|---|---:|---:|---:|---:|---:|")
    zone = start_zone(tempfile.mkdtemp(prefix="zone-", dir=workdir), subprocess_mode=True)
    try:
        for repeat in range(args.repeats):
            for name, checkout, env in (("A", args.a, args.a_env), ("B", args.b, args.b_env)):
                wait_for_idle_cpus()
                load = os.getloadavg()[0]
                s = start_once(os.path.abspath(checkout), args.ranks, mountpoint, workdir, zone, env)
                print(f"| {name}{repeat + 1} | {s['wall_s']:.2f} | {s['elapsed_s']:.2f} | {s['after_summary_s']:.2f} | "
                      f"{s['entries_per_s']:,.0f} | {load:.1f} |", flush=True)
    finally:
        zone.stop()


def assignment(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="checkout A (the baseline)")
    parser.add_argument("--b", required=True, help="checkout B")
    parser.add_argument("--a-env", type=assignment, action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for A's runs only (repeatable)")
    parser.add_argument("--b-env", type=assignment, action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--tree", required=True, help="the source tree latfs mirrors")
    parser.add_argument("--ranks", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=256)
    parser.add_argument("--command", choices=("scan", "start"), default="scan")
    args = parser.parse_args()
    args.a_env, args.b_env = dict(args.a_env), dict(args.b_env)
    print(f"# {' '.join(sys.argv)}")
    if args.command == "start":
        with tempfile.TemporaryDirectory() as workdir, \
                latfs.mounted(args.tree, latency_ms=args.latency_ms, threads=args.threads, workdir=workdir) as fs:
            compare_starts(args, fs.mountpoint, workdir)
        return 0
    print("| run | entries/s | max/mean | last entry → all know (s) | last entry → summary (s) | "
          "summary − all know (s) | last entry → command exit (s) | latfs ops/entry | load at start |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as workdir, \
            latfs.mounted(args.tree, latency_ms=args.latency_ms, threads=args.threads, workdir=workdir) as fs:
        for repeat in range(args.repeats):
            for name, checkout, env in (("A", args.a, args.a_env), ("B", args.b, args.b_env)):
                wait_for_idle_cpus()
                load = os.getloadavg()[0]
                s = scan_once(os.path.abspath(checkout), args.ranks, fs, workdir, env)
                know, end = s["termination_latency_s"], s["exit_latency_s"]
                print(f"| {name}{repeat + 1} | {s['entries_per_s']:,.0f} | {s['balance_max_over_mean']:.3f} | "
                      f"{know:.3f} | {end:.3f} | {end - know:.3f} | {s['command_exit_latency_s']:.3f} | "
                      f"{s['ops_per_entry']:.3f} | {load:.1f} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
