"""Scale benchmark (issue #7): real runs at 16/32/64 oversubscribed ranks, the --max_rate check,
and a model calibrated by those runs that predicts 256-4,096 ranks on a real metadata server.

Usage:  python benchmarks/scale.py [--entries 200000] [--repeats 3] [--ranks 16,32,64]
                                   [--rates 2000,5000,10000] [--rate-ranks 4,16,64] [--rate-entries 40000]
                                   [--mds-capacity 300000] [--per-rank-rate 1100] [--registration-target 5000]
                                   [--quick]

1. Real runs: `hpcingest scan` under `mpiexec -n P` on walk.py's skewed and balanced trees,
   --repeats times (medians): balance (max/mean entries per rank), steal requests and
   successful steals per 1,000 entries, termination waves, termination latency (last entry
   handled -> every rank knows), peak RSS per rank, entries/s per rank, CPU per entry.
2. --max_rate at 4, 16 and 64 ranks: achieved entries/s against the configured rate and the
   unthrottled one, as a mean over the walk and in the worst 1 s and 0.25 s windows.
3. The model (benchmarks/scale_model.py) calibrated by 1: walk time of 1e9 files, messages
   per entry, memory per rank for 256-4,096 ranks, iRODS connections for a registration
   rate; the plot goes to benchmarks/scale_walk_time.png.

Why a probe: `scan --json` has no termination-wave count, CPU time or per-batch times, so
each rank runs the real `hpcingest scan` command line with run_walk wrapped to write its
EngineStats (and those extras) to a file; nothing in hpcingest changes.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields, replace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import precompile  # noqa: E402
from benchmarks.scale_model import (  # noqa: E402
    Calibration, FieldParameters, connection_plan, per_rank_rate, plot_walk_time, predict, tree_depth)
from benchmarks.walk import make_tree, run_scan  # noqa: E402

PROBE_FLAG = "--engine-stats-to"
PLOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scale_walk_time.png")
PREDICT_RANKS = (256, 512, 1024, 2048, 4096)


# -- the per-rank probe (runs under mpiexec) ---------------------------------------------------
def probe(out_dir: str, argv: list[str]) -> int:
    """Run `hpcingest <argv>` on this rank with run_walk observed; write what it saw."""
    import hpcingest.scan as scan_module
    from hpcingest.cli import main

    record: dict = {}
    original = scan_module.run_walk

    def observed_walk(comm, source, sink, *args, **kwargs):
        batches: list[tuple[float, int]] = record.setdefault("batches", [])
        consume = sink.consume

        def timed_consume(batch, ctx=None):
            consume(batch, ctx)
            batches.append((time.time(), len(batch.stats)))

        sink.consume = timed_consume
        record["rss_before_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        record["start"] = time.time()
        cpu = time.process_time()
        stats = original(comm, source, sink, *args, **kwargs)
        record["cpu_s"] = time.process_time() - cpu
        record["rank"] = comm.Get_rank()
        record["stats"] = asdict(stats)
        return stats

    scan_module.run_walk = observed_walk
    code = main(argv)
    with open(os.path.join(out_dir, f"rank-{record['rank']}.json"), "w") as f:
        json.dump(record, f)
    return code


# -- one measured run ----------------------------------------------------------------------------
@dataclass
class Run:
    """One `hpcingest scan` run: scan's JSON summary plus the probe's per-rank records."""

    tree: str
    ranks: int
    max_rate: float  # 0: no limit
    entries: int
    elapsed_s: float  # scan's own: first barrier to summary
    wall_s: float  # the whole mpiexec command
    entries_per_s: float
    balance: float
    steal_requests: int
    steals: int
    items_stolen: int
    waves: int
    termination_latency_s: float
    rss_before_mb: float  # max over ranks, before the walk
    rss_peak_mb: float  # max over ranks, at the end
    cpu_s: float  # all ranks' CPU during the walk
    idle_fraction: float  # rank-time with an empty queue
    walk_window_s: float  # first rank's start to the last entry handled
    peak_1s_rate: float  # most entries handled in any 1 s window
    peak_250ms_rate: float  # most entries handled in any 0.25 s window, per second
    throttled_share: float  # rank-time spent waiting in throttle()

    @property
    def per_rank_rate(self) -> float:
        return self.entries_per_s / self.ranks

    @property
    def steal_messages_per_1k(self) -> float:
        return 1000 * 2 * self.steal_requests / self.entries  # request + reply, as walk.py counts

    @property
    def requests_per_1k(self) -> float:
        return 1000 * self.steal_requests / self.entries

    @property
    def steals_per_1k(self) -> float:
        return 1000 * self.steals / self.entries

    @property
    def cpu_us_per_entry(self) -> float:
        return 1e6 * self.cpu_s / self.entries

    @property
    def window_rate(self) -> float:
        return self.entries / self.walk_window_s if self.walk_window_s > 0 else 0.0

    @property
    def outside_walk_s(self) -> float:
        return max(0.0, self.wall_s - self.elapsed_s)


def peak_window_rate(batches: list[tuple[float, int]], window: float) -> float:
    """Most entries finished in any ``window`` seconds, per second: what a metadata server
    sees at its worst moment, which a mean over the whole walk hides."""
    batches = sorted(batches)
    times = [t for t, _ in batches]
    prefix = [0]
    for _, n in batches:
        prefix.append(prefix[-1] + n)
    best = 0
    for i, t in enumerate(times):
        j = bisect.bisect_right(times, t + window)
        best = max(best, prefix[j] - prefix[i])
    span = times[-1] - times[0] if times else 0.0
    return best / min(window, span) if span > 0 else 0.0


def measure(path: str, tree: str, ranks: int, max_rate: float = 0.0) -> Run:
    scan_args = ("--max_rate", str(max_rate)) if max_rate else ()
    with tempfile.TemporaryDirectory(prefix="hpcingest-scale-") as out:
        launch = (os.path.abspath(__file__), PROBE_FLAG, out, "scan", *scan_args)
        data, wall = run_scan(path, ranks, launch=launch)
        records = []
        for name in sorted(os.listdir(out)):
            with open(os.path.join(out, name)) as f:
                records.append(json.load(f))
    if len(records) != ranks:
        raise RuntimeError(f"{len(records)} probe records for {ranks} ranks")
    stats = [r["stats"] for r in records]
    busy = sum(s["busy_s"] for s in stats)
    idle = sum(s["idle_s"] for s in stats)
    start = min(r["start"] for r in records)
    window = max(s["last_item_end"] for s in stats) - start
    entries = sum(data["entries_per_rank"])
    batches = [(t, n) for r in records for t, n in r["batches"]]
    return Run(
        tree=tree, ranks=ranks, max_rate=max_rate, entries=entries,
        elapsed_s=data["elapsed_s"], wall_s=wall, entries_per_s=data["entries_per_s"],
        balance=data["balance_max_over_mean"], steal_requests=data["steal_requests"], steals=data["steals"],
        items_stolen=data["items_stolen"], waves=sum(s["termination_waves"] for s in stats),
        termination_latency_s=data["termination_latency_s"],
        rss_before_mb=max(r["rss_before_mb"] for r in records), rss_peak_mb=max(data["peak_rss_mb_per_rank"]),
        cpu_s=sum(r["cpu_s"] for r in records), idle_fraction=idle / (busy + idle) if busy + idle else 0.0,
        walk_window_s=window, peak_1s_rate=peak_window_rate(batches, 1.0),
        peak_250ms_rate=peak_window_rate(batches, 0.25),
        throttled_share=sum(s["throttled_s"] for s in stats) / (ranks * window) if window > 0 else 0.0,
    )


def median_run(runs: list[Run]) -> Run:
    """Field-wise median of repeated runs (medians resist the other benchmark's bursts)."""
    values = {}
    for f in fields(Run):
        column = [getattr(r, f.name) for r in runs]
        values[f.name] = statistics.median(column) if isinstance(column[0], (int, float)) else column[0]
    return Run(**values)


# -- the funnel's payload (memory on ranks holding iRODS connections) ----------------------------
def funnel_bytes_per_entry(root: str) -> float:
    """Bytes per entry of a batch forwarded to a connected rank, from the real Funnel code on
    50 real lstat results: what a connected rank queues per entry waiting for iRODS."""
    from hpcingest.ingest.funnel import Funnel
    from hpcingest.records import EntryBatch

    directory = next(d for d, _, files in os.walk(root) if len(files) >= 50)
    names = sorted(os.listdir(directory))[:50]
    batch = EntryBatch(os.fsencode(os.path.relpath(directory, root)), [os.fsencode(n) for n in names],
                       [os.lstat(os.path.join(directory, n)) for n in names])
    sizes: list[int] = []

    class Capture:
        """Stands in for the engine context: the window is never full, sends are recorded."""

        def wait_until(self, done) -> None:
            assert done()

        def send(self, payload: bytes, dest: int, tag: int) -> None:
            sizes.append(len(payload) + 1)  # the connected rank queues it behind a one-byte kind

    Funnel(None, rank=1, size=2, connected=1).consume(batch, Capture())
    return sizes[0] / len(names)


# -- printing ------------------------------------------------------------------------------------
def machine_description() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    mpi = subprocess.run([sys.executable, "-c", "from mpi4py import MPI; "
                          "print(' '.join(MPI.Get_library_version().split()[:3]))"],
                         capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, {platform.platform()}, "
            f"Python {platform.python_version()}, {mpi}")


def load() -> str:
    return "load average " + " / ".join(f"{v:.2f}" for v in os.getloadavg())


def print_scale_table(runs: list[Run], repeats: int) -> None:
    print(f"\n## Real runs (median of {repeats}; ranks oversubscribed on {os.cpu_count()} cores)")
    print("| tree | ranks | entries | entries/s | entries/s per rank | max/mean entries per rank "
          "| steal requests / 1k entries | successful steals / 1k entries | steal messages / 1k entries "
          "| termination waves | last entry → all ranks know (s) | idle rank-time | CPU µs per entry "
          "| peak RSS per rank (MB) | RSS before walk (MB) | command minus walk (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {r.tree} | {r.ranks} | {r.entries:,} | {r.entries_per_s:,.0f} | {r.per_rank_rate:,.0f} "
              f"| {r.balance:.3f} | {r.requests_per_1k:.2f} | {r.steals_per_1k:.2f} | {r.steal_messages_per_1k:.2f} "
              f"| {r.waves:.0f} | {r.termination_latency_s:.3f} | {100 * r.idle_fraction:.0f}% "
              f"| {r.cpu_us_per_entry:.1f} | {r.rss_peak_mb:.1f} | {r.rss_before_mb:.1f} | {r.outside_walk_s:.1f} |")


def print_rate_table(rows: list[tuple[list[Run], Run]]) -> bool:
    """(throttled repeats, unthrottled run at the same rank count); returns whether every row
    holds.  The highest of the repeats is what the "at most" check uses."""
    print("\n## --max_rate: achieved against configured (balanced tree)")
    print("| ranks | configured (entries/s) | unthrottled rate | achieved, walk window (median) "
          "| achieved / configured (median) | highest achieved / configured | achieved over scan's elapsed_s "
          "| rank-time throttled | one rank's batch period (s) | peak 1 s window | peak 0.25 s window, per s "
          "| mean at most configured | mean ≥ 90% |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    ok = True
    for repeats, free in rows:
        run = median_run(repeats)
        ratio = run.window_rate / run.max_rate
        highest = max(r.window_rate / r.max_rate for r in repeats)
        at_most = highest <= 1.0
        close = ratio >= 0.9 or free.window_rate < 2 * run.max_rate
        ok = ok and at_most
        period = FieldParameters.files_per_task * run.ranks / run.max_rate
        print(f"| {run.ranks} | {run.max_rate:,.0f} | {free.window_rate:,.0f} | {run.window_rate:,.0f} | {ratio:.3f} "
              f"| {highest:.3f} | {run.entries_per_s:,.0f} | {100 * run.throttled_share:.0f}% | {period:.2f} "
              f"| {run.peak_1s_rate:,.0f} ({run.peak_1s_rate / run.max_rate:.2f}×) "
              f"| {run.peak_250ms_rate:,.0f} ({run.peak_250ms_rate / run.max_rate:.2f}×) "
              f"| {'yes' if at_most else '**no**'} | {'yes' if close else '**no**'} |")
    print(f"({len(rows[0][0])} runs each, medians; walk window: the first rank's start to the last entry handled; "
          "elapsed_s adds the summary; 'at most': no run's mean above the configured rate; 'mean ≥ 90%' is checked "
          "when the unthrottled walk is more than twice as fast; the peak windows are the worst moment a metadata "
          "server sees: each rank spends its share 50 entries (one stat batch) at a time, once per batch period)")
    return ok


def calibrate(skewed: list[Run], funnel_bytes: float) -> Calibration:
    return Calibration(
        ranks=[r.ranks for r in skewed],
        entries=statistics.median(r.entries for r in skewed),
        cpu_s_per_entry=[r.cpu_s / r.entries for r in skewed],
        steal_requests_per_rank=[r.steal_requests / r.ranks for r in skewed],
        waves=[max(r.waves, 1) for r in skewed],
        termination_latency_s=[r.termination_latency_s for r in skewed],
        rss_before_mb=[r.rss_before_mb for r in skewed],
        rss_peak_mb=[r.rss_peak_mb for r in skewed],
        startup_s=[r.outside_walk_s for r in skewed],
        funnel_bytes_per_entry=funnel_bytes,
    )


def print_model(params: FieldParameters, calib: Calibration, registration_rates: list[float],
                registration_target: float, capacities: list[float]) -> None:
    a, b = calib.steal_fit()
    wa, wb = calib.waves_fit()
    m0, m_local = calib.rss_fit()
    hops = calib.hop_latency_s(int(params.tree_width), params.waves_to_detect)
    print("\n## Calibration (skewed tree, the harder case)")
    print(f"- hpcingest CPU per entry (least oversubscribed run): {1e6 * calib.cpu_per_entry():.1f} µs "
          f"(per rank count: {', '.join(f'{1e6 * c:.1f}' for c in calib.cpu_s_per_entry)})")
    print(f"- per-rank field rate with it: 1 / (1/{params.per_rank_stat_rate:,.0f} + "
          f"{1e6 * calib.cpu_per_entry():.1f} µs) = {per_rank_rate(params, calib):,.0f} entries/s")
    print(f"- steal requests per rank per job S(P) = {a:.3g} · P^{b:.2f} "
          f"(measured {', '.join(f'{s:.0f}' for s in calib.steal_requests_per_rank)} on {calib.entries:,.0f} entries)")
    print(f"- termination waves per job W(P) = {wa:.3g} · P^{wb:.2f} (measured {', '.join(f'{w:.0f}' for w in calib.waves)})")
    print(f"- per-hop latency here = termination latency / ((2·{params.waves_to_detect:.0f} + 1) · depth): "
          f"{', '.join(f'{1e3 * h:.1f} ms' for h in hops)} (depth {tree_depth(calib.ranks[-1], int(params.tree_width))}; "
          f"field: {1e3 * (params.idle_hop_s + params.network_hop_s):.2f} ms)")
    print(f"- peak RSS per rank = {m0:.1f} MB + {1e3 * m_local:.0f} kB × local ranks (measured "
          f"{', '.join(f'{m:.1f}' for m in calib.rss_peak_mb)} MB; before the walk "
          f"{', '.join(f'{m:.1f}' for m in calib.rss_before_mb)} MB)")
    print(f"- funnel payload: {calib.funnel_bytes_per_entry:.0f} bytes per entry queued on a connected rank")
    print(f"- command minus walk here (mpiexec, imports, MPI init, summary): "
          f"{', '.join(f'{s:.1f} s' for s in calib.startup_s)}")

    print("\n## Parameters (field) and their sources")
    print("| parameter | value | source |")
    print("|---|---:|---|")
    for name, value, source in params.sources():
        print(f"| `{name}` | {value:,.6g} | {source} |")

    plan = connection_plan(registration_target, params)
    print(f"\n## Predictions: {params.files:.0e} files, MDS {params.mds_capacity:,.0f} stats/s; the ingest "
          f"columns assume {plan.connections} iRODS connections ({registration_target:,.0f} registrations/s)")
    print("| ranks | job rate (entries/s) | limited by | walk time | ramp-up (s) | termination, field (s) "
          "| termination at this machine's hop latency (s) | messages / entry, scan | messages / entry, ingest "
          "| RSS per walker rank (MB) | RSS per connected rank (MB) |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in PREDICT_RANKS:
        pr = predict(p, params, calib, plan.connections)
        print(f"| {p:,} | {pr.job_rate:,.0f} | {pr.limited_by} | {pr.walk_time_s / 3600:.2f} h ({pr.walk_time_s:,.0f} s) "
              f"| {pr.ramp_s:.2f} | {pr.termination_s:.3f} | {pr.termination_s_this_machine:.2f} "
              f"| {pr.messages_per_entry_scan:.2g} | {pr.messages_per_entry_ingest:.2g} "
              f"| {pr.rss_walker_mb:.0f} | {pr.rss_connected_mb:,.0f} |")

    print("\n## Walk time (hours) by MDS capacity")
    print("| ranks | " + " | ".join(f"MDS {c / 1000:,.0f} k/s" for c in capacities) + " | ranks only |")
    print("|---:|" + "---:|" * (len(capacities) + 1))
    for p in PREDICT_RANKS:
        cells = [predict(p, replace(params, mds_capacity=c), calib, plan.connections).walk_time_s / 3600
                 for c in capacities]
        free = predict(p, replace(params, mds_capacity=float("inf")), calib, plan.connections).walk_time_s / 3600
        print(f"| {p:,} | " + " | ".join(f"{c:.2f}" for c in cells) + f" | {free:.2f} |")

    print("\n## iRODS connections for a target registration rate")
    print("| target (registrations/s) | per connection (/s) | connections | catalog CPU cores needed "
          f"| feasible ({params.catalog_cores:.0f} cores, ≤ {params.max_connections:.0f} connections) "
          f"| days for {params.files:.0e} files |")
    print("|---:|---:|---:|---:|---|---:|")
    for rate in registration_rates:
        c = connection_plan(rate, params)
        print(f"| {rate:,.0f} | {c.per_connection_rate:.0f} | {c.connections:,} | {c.catalog_cores_needed:.1f} "
              f"| {'yes' if c.feasible else 'no'} | {c.days_for_files:.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=200_000, help="entries per tree (walk.py's default)")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "hpcingest-scale"),
                        help="where the trees are kept (not walk.py's, whose trees other runs may be using)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ranks", default="16,32,64")
    parser.add_argument("--rates", default="2000,5000,10000", help="--max_rate values to check")
    parser.add_argument("--rate-ranks", default="4,16,64")
    parser.add_argument("--rate-entries", type=int, default=40_000, help="balanced tree for the --max_rate check")
    parser.add_argument("--mds-capacity", type=float, default=FieldParameters.mds_capacity)
    parser.add_argument("--capacities", default="100000,300000,1000000", help="MDS capacities to plot")
    parser.add_argument("--per-rank-rate", type=float, default=FieldParameters.per_rank_stat_rate)
    parser.add_argument("--registration-rates", default="1000,2000,5000,10000,50000")
    parser.add_argument("--registration-target", type=float, default=5000,
                        help="registrations/s the ingest columns of the prediction are sized for")
    parser.add_argument("--plot", default=PLOT)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20k-entry trees, one repeat, ranks 4,8,16, rates at 4 ranks")
    args = parser.parse_args()
    precompile()  # time the code, not its compilation
    if args.quick:
        args.entries, args.repeats, args.ranks = 20_000, 1, "4,8,16"
        args.rates, args.rate_ranks, args.rate_entries = "2000,10000", "4", 10_000
    ranks = [int(n) for n in args.ranks.split(",")]
    rates = [float(r) for r in args.rates.split(",")]
    rate_ranks = [int(n) for n in args.rate_ranks.split(",")]
    if shutil.which("find") is None:
        raise SystemExit("find(1) is needed to count the trees")
    os.makedirs(args.workdir, exist_ok=True)
    print(f"# hpcingest scale benchmark, command: {' '.join(sys.argv)}")
    print(f"machine: {machine_description()}; {load()} at the start")

    trees = {layout: os.path.join(args.workdir, layout) for layout in ("skewed", "balanced")}
    sizes = {layout: make_tree(path, args.entries, layout) for layout, path in trees.items()}
    print("trees: " + ", ".join(f"{layout} {n:,} entries" for layout, n in sizes.items()))
    runs: dict[tuple[str, int], list[Run]] = {}
    for repeat in range(args.repeats):
        for layout, path in trees.items():
            for n in ranks:
                run = measure(path, layout, n)
                assert run.entries == sizes[layout], (run.entries, sizes[layout])
                runs.setdefault((layout, n), []).append(run)
                print(f"  run {repeat + 1}/{args.repeats} {layout:8s} -n {n:3d}: {run.entries_per_s:10,.0f} entries/s, "
                      f"max/mean {run.balance:.3f}, end known after {run.termination_latency_s:.3f} s ({load()})",
                      flush=True)
    medians = [median_run(runs[(layout, n)]) for layout in trees for n in ranks]
    print_scale_table(medians, args.repeats)

    rate_tree = os.path.join(args.workdir, "rate")
    rate_size = make_tree(rate_tree, args.rate_entries, "balanced")
    print(f"\n--max_rate runs on a balanced tree of {rate_size:,} entries ({load()})")
    rate_rows: list[tuple[list[Run], Run]] = []
    for n in rate_ranks:
        free = measure(rate_tree, "balanced", n)
        print(f"  -n {n:2d} unthrottled: {free.window_rate:,.0f} entries/s", flush=True)
        for rate in rates:
            repeats = [measure(rate_tree, "balanced", n, max_rate=rate) for _ in range(args.repeats)]
            print(f"  -n {n:2d} --max_rate {rate:,.0f}: "
                  f"{', '.join(f'{r.window_rate:,.0f}' for r in repeats)} entries/s ({load()})", flush=True)
            rate_rows.append((repeats, free))
    holds = print_rate_table(rate_rows)

    calib = calibrate([r for r in medians if r.tree == "skewed"], funnel_bytes_per_entry(trees["balanced"]))
    params = FieldParameters(mds_capacity=args.mds_capacity, per_rank_stat_rate=args.per_rank_rate)
    capacities = [float(c) for c in args.capacities.split(",")]
    print_model(params, calib, [float(r) for r in args.registration_rates.split(",")], args.registration_target,
                capacities)
    plot_walk_time(args.plot, params, calib, capacities)
    print(f"\nplot: {args.plot} ({os.path.getsize(args.plot):,} bytes); {load()} at the end")
    return 0 if holds else 1


if __name__ == "__main__":
    if sys.argv[1:2] == [PROBE_FLAG]:
        sys.exit(probe(sys.argv[2], sys.argv[3:]))
    sys.exit(main())
