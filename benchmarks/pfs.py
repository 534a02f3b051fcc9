"""Benchmarks on a filesystem that behaves like Lustre (issue #18): latfs, a FUSE mirror where
every metadata operation is a round trip to a server of N service threads.

Usage:  python benchmarks/pfs.py [--entries 50000] [--latencies 0.2,1,5] [--ranks 1,4,16,64,256]
                                 [--threads 256] [--capacity-threads 16] [--capacity-ranks 4,16,64]
                                 [--stat-threads 4,8] [--stat-thread-ranks 16]
                                 [--ingest-files 5000] [--ingest-ranks 1,4,16,64] [--old-workers 4,16]
                                 [--zone-latency-ms 0.5] [--unbound 64@5,256@20] [--unbound-entries N] [--sections LIST]
                                 [--workdir DIR] [--skip-old] [--quick]

On one tree (walk.py's balanced layout) mounted through latfs (benchmarks/latfs), for each latency:

1. Walk: ``find`` (one process) and ``hpcingest scan`` at 1 rank, on the tree's first top-level
   directory (a tenth of it: a 1-rank walk of the whole tree at 5 ms would take minutes), then
   ``hpcingest scan`` under ``mpiexec -n P`` on the whole tree: entries/s, speed-up over 1 rank and
   over find, latfs operations per entry, its own CPU per operation and measured wait, balance,
   last entry -> every rank knows, peak RSS per rank, control messages per entry, and the scale
   model's prediction (benchmarks/scale_model.py) for the same latency and capacity.
2. Capacity (1 ms only): latfs with --capacity-threads slots (capacity threads/latency), ranks past
   it: the fraction of the capacity reached.
3. Threads per rank (1 ms only): ``--stat_threads K`` at --stat-thread-ranks ranks against K times
   as many ranks: rate and memory.
4. Unbound (--unbound 64@5,256@20): the speed-up over one rank and the balance at a latency long
   enough that the node's CPUs are not the limit (at 1 ms two cores are: a stat costs ~60 µs of
   CPU here), on the full-scale tree, with the machine's CPU busy share during the walk beside them.
5. Ingest (1 ms only): ``hpcingest start`` (REGISTER_SYNC into a built-in zone) of a --ingest-files
   tree through latfs at each rank count, and the old framework (Celery workers, as
   benchmarks/vs_automated_ingest.py runs it) with the same number of processes: files/s.

Every ratio is against a baseline run in the same invocation; the load average is printed beside
every figure (the machine is shared).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import latfs  # noqa: E402
from benchmarks.common import CpuMeter, CpuTimeline, PeriodicSampler, launch_prefix, precompile  # noqa: E402
from benchmarks.scale_model import Calibration, FieldParameters, job_rate  # noqa: E402
from benchmarks.walk import make_tree  # noqa: E402

# hpcingest's own CPU per entry in the scale model's calibration (benchmarks/RESULTS.md, scale
# section, 16 ranks on ext4): the model's c_cpu.
MODEL_CPU_PER_ENTRY_S = 4.8e-6


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


class MemoryMeter(PeriodicSampler):
    """The most memory in use on the machine (MemTotal - MemAvailable) during the block, over
    what was in use at its start: what a job really costs, shared pages counted once (unlike
    summed RSS).  Other users' jobs move it too; read it beside the load."""

    interval = 0.1

    def __init__(self) -> None:
        self._start: int | None = None

    @staticmethod
    def _used_kb() -> int:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) for line in f}
        return info["MemTotal"] - info["MemAvailable"]

    def sample(self) -> None:
        used = self._used_kb()
        if self._start is None:
            self._start = self._peak = used
        self._peak = max(self._peak, used)

    @property
    def peak_used_mb(self) -> float:
        return (self._peak - self._start) / 1024


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------------------------------- runs

@dataclass
class WalkRun:
    """One walk of a tree through latfs: what the walker saw, and what latfs served."""

    label: str
    ranks: int
    entries: int
    walk_s: float  # the walk itself (scan's elapsed_s; the whole command for find)
    wall_s: float  # the whole command
    fs: latfs.Counters
    cpu_busy: float  # share of the machine's CPUs busy during the command (all users)
    command_cpu_s: float  # the command's own CPU (launcher and ranks, or find)
    load: str
    summary: dict | None = None
    memory_used_mb: float = 0.0  # the machine's memory in use at the peak, over what it was at the start
    walk_cpu_busy: float = 0.0  # share of the machine's CPUs busy from the walk's start to its last entry

    @property
    def rate(self) -> float:
        return self.entries / self.walk_s

    @property
    def ops_per_entry(self) -> float:
        return self.fs.metadata_ops / self.entries

    @property
    def control_messages_per_entry(self) -> float:
        """Steal request + reply, a wave down and up per rank per wave, one STOP per rank."""
        if not self.summary:
            return 0.0
        p = self.ranks
        messages = 2 * self.summary["steal_requests"] + 2 * (p - 1) * self.summary["termination_waves"] + (p - 1)
        return messages / self.entries


def run_find(fs: latfs.Mount, path: str) -> WalkRun:
    before, cpu0 = fs.counters(), children_cpu_s()
    with CpuMeter() as meter:
        t = time.perf_counter()
        out = subprocess.run(["find", path, "-mindepth", "1", "-printf", r"%s\n"], capture_output=True, check=True)
        wall = time.perf_counter() - t
    entries = out.stdout.count(b"\n")
    return WalkRun("find", 1, entries, wall, wall, fs.counters() - before, meter.busy_share, children_cpu_s() - cpu0,
                   load())


def scan_command(ranks: int, path: str, summary_path: str, *extra: str, launcher: str = "mpiexec") -> list[str]:
    return [*launch_prefix(launcher, ranks), sys.executable, "-m", "hpcingest", "scan", path, "--quiet", "--json",
            summary_path, *extra]


def run_scan(fs: latfs.Mount, path: str, ranks: int, *extra: str, label: str = "hpcingest scan",
             launcher: str = "mpiexec") -> WalkRun:
    with tempfile.TemporaryDirectory(prefix="pfs-") as scratch:
        summary_path = os.path.join(scratch, "summary.json")
        before, cpu0 = fs.counters(), children_cpu_s()
        with MemoryMeter() as memory, CpuTimeline() as timeline:
            t = time.perf_counter()
            subprocess.run(scan_command(ranks, path, summary_path, *extra, launcher=launcher), check=True)
            wall = time.perf_counter() - t
        with open(summary_path) as f:
            summary = json.load(f)
        written = os.stat(summary_path).st_mtime  # rank 0 writes it as the walk's summary is taken
    walk_busy = timeline.share(written - summary["elapsed_s"], written - summary["exit_latency_s"])
    return WalkRun(label, ranks, sum(summary["entries_per_rank"]), summary["elapsed_s"], wall, fs.counters() - before,
                   timeline.busy_share, children_cpu_s() - cpu0, load(), summary, memory.peak_used_mb, walk_busy)


# ------------------------------------------------------------------------------------------ model

def model_rate(ranks: int, per_entry_wait_s: float, capacity_entries: float) -> tuple[float, str]:
    """The scale model's job rate for this latency and capacity: r_field = 1 / (ops per entry x
    measured wait), C_mds = latfs's capacity in entries/s, c_cpu and the efficiency per doubling
    as calibrated on ext4."""
    params = FieldParameters(per_rank_stat_rate=1.0 / per_entry_wait_s, mds_capacity=capacity_entries)
    calib = Calibration(ranks=[1], entries=1, cpu_s_per_entry=[MODEL_CPU_PER_ENTRY_S], steal_requests_per_rank=[1],
                        waves=[1], termination_latency_s=[0], rss_before_mb=[0], rss_peak_mb=[0], startup_s=[0],
                        funnel_bytes_per_entry=0)
    return job_rate(ranks, params, calib)


# ---------------------------------------------------------------------------------------- sections

def walk_section(args, tree: str, entries: int, latency: float) -> dict[int, WalkRun]:
    baseline_dir = os.path.join(tree, min(d for d in os.listdir(tree) if os.path.isdir(os.path.join(tree, d))))
    with latfs.mounted(tree, latency_ms=latency, threads=args.threads, workdir=args.workdir) as fs:
        mnt_base = os.path.join(fs.mountpoint, os.path.basename(baseline_dir))
        find = run_find(fs, mnt_base)
        one = run_scan(fs, mnt_base, 1)
        runs = {p: run_scan(fs, fs.mountpoint, p) for p in args.ranks}
        for p, run in runs.items():
            assert run.entries == entries, f"{p} ranks found {run.entries} entries, the tree holds {entries}"
            print(f"  {latency} ms, -n {p}: {run.rate:,.0f} entries/s ({run.load})", flush=True)
    wait_s = one.fs.mean_wait_ms() / 1e3
    per_entry_wait = one.ops_per_entry * wait_s
    capacity_entries = args.threads / (latency / 1e3) / one.ops_per_entry
    print(f"\n### {latency} ms per operation, {args.threads} service threads (capacity "
          f"{args.threads / latency * 1e3:,.0f} ops/s = {capacity_entries:,.0f} entries/s; latfs at "
          f"{one.fs.priority} priority)\n")
    print(f"Baselines on {os.path.basename(baseline_dir)}/ ({one.entries:,} entries): find {find.rate:,.0f} entries/s "
          f"({find.ops_per_entry:.3f} ops/entry, {find.load}); hpcingest scan -n 1 {one.rate:,.0f} entries/s "
          f"({one.ops_per_entry:.3f} ops/entry, latfs wait {one.fs.mean_wait_ms():.3f} ms/op, {one.load}).")
    print(f"One rank: 1 / rate = {1e3 / one.rate:.3f} ms per entry, of which latfs waits "
          f"{1e3 * per_entry_wait:.3f} ms ({one.ops_per_entry:.3f} ops × {1e3 * wait_s:.3f} ms); the rest, "
          f"{1e3 * (1 / one.rate - per_entry_wait):.3f} ms, is CPU and scheduling (the model's c_cpu: "
          f"{1e3 * MODEL_CPU_PER_ENTRY_S:.4f} ms).\n")
    print("| ranks | entries/s | × 1 rank | × find | model (entries/s, limit) | measured / model | ops per entry "
          "| latfs wait ms/op | latfs queue s | latfs CPU µs/op | ranks' CPU µs/entry | machine CPU busy | max/mean | last entry → "
          "all know (s) | command − walk (s) | peak RSS/rank MB (max) | control msgs/entry | load |")
    print("|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for p, r in runs.items():
        predicted, limit = model_rate(p, per_entry_wait, capacity_entries)
        s = r.summary
        print(f"| {p} | {r.rate:,.0f} | {r.rate / one.rate:.1f} | {r.rate / find.rate:.1f} | {predicted:,.0f} ({limit}) "
              f"| {r.rate / predicted:.2f} | {r.ops_per_entry:.3f} | {r.fs.mean_wait_ms():.3f} | {r.fs.queue_s():.2f} "
              f"| {r.fs.process_cpu_us_per_op():.1f} | {1e6 * r.command_cpu_s / r.entries:.0f} | {100 * r.cpu_busy:.0f}% | {s['balance_max_over_mean']:.3f} "
              f"| {s['termination_latency_s']:.3f} | {r.wall_s - r.walk_s:.1f} | {max(s['peak_rss_mb_per_rank']):.1f} "
              f"| {r.control_messages_per_entry:.4f} | {r.load} |")
    return runs


def capacity_section(args, tree: str, entries: int) -> None:
    latency = 1.0
    with latfs.mounted(tree, latency_ms=latency, threads=args.capacity_threads, workdir=args.workdir) as fs:
        runs = [run_scan(fs, fs.mountpoint, p) for p in args.capacity_ranks]
    capacity = args.capacity_threads / (latency / 1e3)
    print(f"\n### Capacity: {latency} ms, {args.capacity_threads} service threads = {capacity:,.0f} ops/s\n")
    print("| ranks | ranks × 1/latency (ops/s) | entries/s | latfs ops/s | share of capacity | queue s | load |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for r in runs:
        ops_rate = r.fs.metadata_ops / r.walk_s
        print(f"| {r.ranks} | {r.ranks / (latency / 1e3):,.0f} | {r.rate:,.0f} | {ops_rate:,.0f} | {ops_rate / capacity:.2f} "
              f"| {r.fs.queue_s():.1f} | {r.load} |")


def stat_threads_section(args, tree: str) -> None:
    latency = 1.0
    rows = []
    with latfs.mounted(tree, latency_ms=latency, threads=args.threads, workdir=args.workdir) as fs:
        for p in args.stat_thread_ranks:
            rows.append((p, 1, run_scan(fs, fs.mountpoint, p)))
            for k in args.stat_threads:
                rows.append((p, k, run_scan(fs, fs.mountpoint, p, "--stat_threads", str(k))))
                if p * k <= max(args.ranks):
                    rows.append((p * k, 1, run_scan(fs, fs.mountpoint, p * k)))
    print(f"\n### Threads per rank: {latency} ms, {args.threads} service threads\n")
    print("| ranks | stat threads per rank | entries/s | peak RSS/rank MB | RSS × ranks (MB) | command − walk (s) | load |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for p, k, r in rows:
        rss = max(r.summary["peak_rss_mb_per_rank"])
        print(f"| {p} | {k} | {r.rate:,.0f} | {rss:.1f} | {rss * p:,.0f} | {r.wall_s - r.walk_s:.1f} | {r.load} |")


def ingest_section(args, files: int) -> None:
    from benchmarks.vs_automated_ingest import (OldStack, RunFailed, ensure_old_venv, ensure_redis, old_stack,
                                                 register_tree, run_new, run_old, source_facts)

    src = register_tree(args.workdir, files)
    facts = source_facts(src)
    latency = 1.0
    old_python = None if args.skip_old else ensure_old_venv(args.venv)
    redis = None if args.skip_old else ensure_redis()
    print(f"\n### Ingest: REGISTER_SYNC of {facts.files:,} files through latfs ({latency} ms, {args.threads} "
          f"threads), built-in zone --latency-ms {args.zone_latency_ms}\n")
    print("| N | hpcingest files/s | latfs ops/file | old framework files/s | latfs ops/file (old) | ratio | load |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    stack_args = argparse.Namespace(workdir=args.workdir, latency_ms=args.zone_latency_ms)
    with latfs.mounted(src, latency_ms=latency, threads=args.threads, workdir=args.workdir) as fs:
        for n in sorted(set(args.ingest_ranks) | set(args.old_workers)):
            old_rate = old_ops = None
            with contextlib.ExitStack() as stacks:
                if old_python and n in args.old_workers:
                    stack: OldStack = stacks.enter_context(old_stack(stack_args, old_python, redis, n, f"pfs{n}"))
                else:
                    from hpcingest.zone.testing import start_zone
                    zone_root = tempfile.mkdtemp(prefix="pfs-zone-", dir=args.workdir)
                    stacks.callback(shutil.rmtree, zone_root, ignore_errors=True)
                    zone = start_zone(zone_root, subprocess_mode=True, latency_ms=args.zone_latency_ms)
                    stacks.callback(zone.stop)
                    stack = argparse.Namespace(zone=zone)
                stamp = time.time_ns()
                before = fs.counters()
                seconds = run_new(stack, fs.mountpoint, f"{stack.zone.home}/pfs_new_{n}_{stamp}", n, args.workdir)
                new_ops = (fs.counters() - before).metadata_ops / facts.files
                new_rate = facts.files / seconds
                if old_python and n in args.old_workers:
                    before = fs.counters()
                    try:
                        seconds = run_old(stack, fs.mountpoint, f"{stack.zone.home}/pfs_old_{n}_{stamp}",
                                          4 * 3600)
                    except RunFailed as error:
                        print(f"old framework failed at N = {n}: {error}", file=sys.stderr)
                        seconds = float("nan")
                    old_ops = (fs.counters() - before).metadata_ops / facts.files
                    old_rate = facts.files / seconds
            old_cells = (f"{old_rate:,.0f} | {old_ops:.2f} | **{new_rate / old_rate:.1f}×**" if old_rate
                         else "– | – | –")
            print(f"| {n} | {new_rate:,.0f} | {new_ops:.2f} | {old_cells} | {load()} |", flush=True)


def unbound_section(args, small_tree: str, big_tree: str) -> None:
    """The targets that two cores cannot show at 1 ms, measured where the CPUs are not the limit.

    At 1 ms a stat costs this node about 60 µs of CPU (kernel FUSE client, latfs, Python), so 64
    ranks saturate two cores and 256 ranks share them 128 to a core: the rate then measures the
    node, and each rank's share of the entries measures the scheduler.  With a latency long enough
    that ranks x (1 / latency) x 60 µs stays well under the two cores, every rank gets the CPU it
    needs when it needs it, as it would with a core of its own, and the speed-up and the balance
    are the walk's.  One rank's rate (the baseline) is measured on the small tree's first directory
    at the same latency; the walk is of the full-scale tree."""
    baseline_dir = os.path.join(small_tree, min(d for d in os.listdir(small_tree)
                                                if os.path.isdir(os.path.join(small_tree, d))))
    rows = []
    for ranks, latency in args.unbound:
        threads = max(args.threads, 2 * ranks)  # never a queue for a slot: latency is all a stat waits
        with latfs.mounted(baseline_dir, latency_ms=latency, threads=threads, workdir=args.workdir) as fs:
            one = run_scan(fs, fs.mountpoint, 1)
        with latfs.mounted(big_tree, latency_ms=latency, threads=threads, workdir=args.workdir) as fs:
            run = run_scan(fs, fs.mountpoint, ranks)
        rows.append((ranks, latency, threads, one, run))
        print(f"  {latency} ms, -n {ranks}: {run.rate:,.0f} entries/s, {run.rate / one.rate:.1f}x one rank, "
              f"max/mean {run.summary['balance_max_over_mean']:.3f} ({run.load})", flush=True)
    print(f"\n### Where the CPUs are not the limit ({one.entries:,}-entry baseline, {run.entries:,}-entry walk)\n")
    print("| ranks | latency ms | service threads | 1 rank entries/s | entries/s | × 1 rank | max/mean "
          "| stat batches per rank | machine CPU busy during the walk | latfs wait ms/op | last entry → all know (s) "
          "| load |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for ranks, latency, threads, one, r in rows:
        s = r.summary
        print(f"| {ranks} | {latency:g} | {threads} | {one.rate:,.1f} | {r.rate:,.0f} | **{r.rate / one.rate:.1f}** "
              f"| **{s['balance_max_over_mean']:.3f}** | {r.entries / 50 / ranks:.1f} | {100 * r.walk_cpu_busy:.0f}% "
              f"| {r.fs.mean_wait_ms():.3f} | {s['termination_latency_s']:.3f} | {r.load} |")


def nul_listing(path: str) -> list[bytes]:
    with open(path, "rb") as f:
        return f.read().split(b"\0")[:-1]


def find_listing(root: str) -> list[bytes]:
    out = subprocess.run(["find", root, "-mindepth", "1", "-printf", r"%P\0"], capture_output=True, check=True)
    return out.stdout.split(b"\0")[:-1]


def full_scale_section(args, tree: str) -> bool:
    """--full-ranks ranks for real, under mpiexec and (when Slurm is up) srun -O: the walk ends,
    and its listing equals find's of the source."""
    from tests.launchers import slurm_available

    latency = 1.0
    expected = sorted(find_listing(tree))
    launchers = ["mpiexec"] + (["srun"] if slurm_available() else [])
    rows, ok = [], True
    with latfs.mounted(tree, latency_ms=latency, threads=args.threads, workdir=args.workdir) as fs:
        for launcher in launchers:
            with tempfile.TemporaryDirectory(prefix="pfs-list-", dir=args.workdir) as scratch:
                listing_path = os.path.join(scratch, "listing")
                run = run_scan(fs, fs.mountpoint, args.full_ranks, "--list", listing_path, launcher=launcher)
                listing = nul_listing(listing_path)
            equal = sorted(listing) == expected
            ok = ok and equal
            rows.append((launcher, run, equal, len(listing)))
            print(f"  {launcher} -n {args.full_ranks}: listing {'equals' if equal else 'DIFFERS FROM'} find's "
                  f"({len(listing):,} entries, {run.load})", flush=True)
    print(f"\n### {args.full_ranks} ranks for real ({latency} ms, {args.threads} service threads, {len(expected):,} "
          "entries)\n")
    print("| launcher | listing = find's | entries/s | max/mean | last entry → all know (s) | last entry → summary (s) "
          "| command − walk (s) | peak RSS/rank MB (max / mean) | machine memory used (MB) | per rank (MB) "
          "| control msgs/entry | load |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for launcher, r, equal, n in rows:
        s = r.summary
        rss = s["peak_rss_mb_per_rank"]
        print(f"| {launcher} | {'yes' if equal else '**no**'} ({n:,}) | {r.rate:,.0f} | {s['balance_max_over_mean']:.3f} "
              f"| {s['termination_latency_s']:.3f} | {s['exit_latency_s']:.3f} | {r.wall_s - r.walk_s:.1f} "
              f"| {max(rss):.1f} / {sum(rss) / len(rss):.1f} | {r.memory_used_mb:,.0f} "
              f"| {r.memory_used_mb / r.ranks:.1f} | {r.control_messages_per_entry:.4f} | {r.load} |")
    return ok


# --------------------------------------------------------------------------------------------- main

def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def rank_latency_list(text: str) -> list[tuple[int, float]]:
    pairs = [item.split("@") for item in text.split(",") if item]
    return [(int(ranks), float(latency)) for ranks, latency in pairs]


def float_list(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--latencies", type=float_list, default=[0.2, 1.0, 5.0])
    parser.add_argument("--ranks", type=int_list, default=[1, 4, 16, 64, 256])
    parser.add_argument("--threads", type=int, default=256, help="latfs service threads (capacity = threads/latency)")
    parser.add_argument("--capacity-threads", type=int, default=16)
    parser.add_argument("--capacity-ranks", type=int_list, default=[4, 16, 64])
    parser.add_argument("--stat-threads", type=int_list, default=[4, 8], help="K for --stat_threads K")
    parser.add_argument("--stat-thread-ranks", type=int_list, default=[16])
    parser.add_argument("--ingest-files", type=int, default=5_000)
    parser.add_argument("--ingest-ranks", type=int_list, default=[1, 4, 16, 64])
    parser.add_argument("--old-workers", type=int_list, default=[4, 16], help="N for the old framework (-c N)")
    parser.add_argument("--zone-latency-ms", type=float, default=0.5)
    parser.add_argument("--venv", default="/opt/automated-ingest-venv", help="the old framework's venv")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "hpcingest-pfs"))
    parser.add_argument("--full-ranks", type=int, default=256, help="ranks of the full-scale section")
    parser.add_argument("--full-entries", type=int, default=200_000,
                        help="its tree (enough stat batches per rank that balance can show: 15 at 256 ranks)")
    parser.add_argument("--unbound", type=rank_latency_list, default=[(64, 5.0), (256, 20.0)], metavar="P@MS,...",
                        help="the unbound section's runs: ranks @ latency, long enough that the CPUs are not the limit")
    parser.add_argument("--unbound-entries", type=int, default=0,
                        help="the unbound section's tree (default: the full-scale section's, --full-entries)")
    parser.add_argument("--sections", default="walk,capacity,threads,full,unbound,ingest")
    parser.add_argument("--skip-old", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5k entries, 1 ms, ranks 1,4,16")
    args = parser.parse_args()
    if args.quick:
        args.entries, args.latencies, args.ranks = 5_000, [1.0], [1, 4, 16]
        args.capacity_ranks, args.stat_thread_ranks, args.stat_threads = [4, 16], [4], [4]
        args.ingest_files, args.ingest_ranks, args.old_workers, args.full_ranks = 500, [1, 4], [4], 8
        args.full_entries, args.unbound = 5_000, [(4, 5.0)]
    reason = latfs.unavailable_reason()
    if reason:
        print(f"pfs.py: latfs cannot run here: {reason}", file=sys.stderr)
        return 2
    precompile()
    os.makedirs(args.workdir, exist_ok=True)
    sections = set(args.sections.split(","))
    print(f"# hpcingest on latfs ({os.cpu_count()} cores), command: {shlex.join(['python', *sys.argv])}; {load()}")
    tree = os.path.join(args.workdir, "balanced")
    entries = make_tree(tree, args.entries, "balanced")
    print(f"tree: {entries:,} entries (walk.py's balanced layout)", flush=True)
    if "walk" in sections:
        for latency in args.latencies:
            walk_section(args, tree, entries, latency)
    if "capacity" in sections:
        capacity_section(args, tree, entries)
    if "threads" in sections:
        stat_threads_section(args, tree)
    ok = True
    if "full" in sections:
        big = os.path.join(args.workdir, "balanced-full")
        print(f"full-scale tree: {make_tree(big, args.full_entries, 'balanced'):,} entries", flush=True)
        ok = full_scale_section(args, big)
    if "unbound" in sections:
        entries = args.unbound_entries or args.full_entries
        big = os.path.join(args.workdir, "balanced-full" if entries == args.full_entries else f"balanced-{entries}")
        make_tree(big, entries, "balanced")
        unbound_section(args, tree, big)
    if "ingest" in sections:
        ingest_section(args, args.ingest_files)
    print(f"\n{load()} at the end")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
