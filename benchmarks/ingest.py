"""Ingest benchmark against the built-in zone, with baselines from the same invocation.

Usage:  python benchmarks/ingest.py [--files 100000] [--ranks 4] [--latency-ms 0.5] [--put-files 10000]
                                    [--big-mib 1024] [--big-repeats 3] [--workdir /tmp/hpcingest-ingest-bench] [--skip-big]
                                    [--repeats 5]

Prints files/s and the zone's count of iRODS API requests per file for:
  an initial REGISTER_SYNC of the tree, a second pass over the unchanged tree (and its time against
  `hpcingest scan` of the same tree), a pass with 1% of the files modified;
  PUT of --put-files 4 KiB files (0 skips it) against a loop of python-irodsclient's data_objects.put run by the
  same number of processes; and one --big-mib file against PRC's own (parallel) put.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import handler_file, precompile  # noqa: E402
from hpcingest import sample  # noqa: E402
from hpcingest.launch import mpiexec_path  # noqa: E402
from hpcingest.zone.testing import start_zone  # noqa: E402

def api_calls(zone) -> dict[str, int]:
    return {v["name"]: v["count"] for v in zone.api_stats().values()}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def per_file(calls: dict[str, int], files: int, skip=("AUTHENTICATION_APN", "RODS_CONNECT", "RODS_DISCONNECT")) -> float:
    return sum(v for k, v in calls.items() if k not in skip) / files


def run_start(zone, src, target, ranks, workdir, *extra) -> float:
    env = {**os.environ, **zone.environ()}
    t = time.perf_counter()
    subprocess.run([mpiexec_path(), "-n", str(ranks), sys.executable, "-m", "hpcingest", "start", src, target,
                    "--synchronous", "--job_dir", os.path.join(workdir, "jobs"), "--job_name",
                    target.rsplit("/", 1)[1], *extra], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def run_scan(src, ranks) -> float:
    t = time.perf_counter()
    subprocess.run([mpiexec_path(), "-n", str(ranks), sys.executable, "-m", "hpcingest", "scan", src, "--quiet"],
                   check=True)
    return time.perf_counter() - t


def count_files(src) -> int:
    return int(subprocess.run(["find", src, "-mindepth", "1", "-not", "-type", "d"], capture_output=True,
                              check=True).stdout.count(b"\n"))


def register_section(zone, args, workdir) -> None:
    src = os.path.join(workdir, f"tree{args.files}")
    if not os.path.exists(src + ".complete"):
        shutil.rmtree(src, ignore_errors=True)
        sample.generate(src, files=args.files, seed=11, max_file_size=512)
        open(src + ".complete", "w").close()
    files = count_files(src)
    target = f"{zone.home}/bench_register_{int(time.time())}"
    print(f"\n## REGISTER_SYNC, {files:,} files, mpiexec -n {args.ranks}, zone latency {args.latency_ms} ms")
    before = api_calls(zone)
    t_initial = run_start(zone, src, target, args.ranks, workdir)
    initial = delta(before, api_calls(zone))
    before = api_calls(zone)
    unchanged_times, scan_times = [run_start(zone, src, target, args.ranks, workdir)], [run_scan(src, args.ranks)]
    unchanged = delta(before, api_calls(zone))
    for _ in range(args.repeats - 1):  # alternating, so both see the same noise
        unchanged_times.append(run_start(zone, src, target, args.ranks, workdir))
        scan_times.append(run_scan(src, args.ranks))
    t_unchanged, t_scan = statistics.median(unchanged_times), statistics.median(scan_times)
    rng = random.Random(1)
    all_files = [os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs if not os.path.islink(os.path.join(d, f))]
    changed = rng.sample(all_files, max(1, len(all_files) // 100))
    time.sleep(1.1)
    for path in changed:
        with open(path, "ab") as f:
            f.write(b"+")
    before = api_calls(zone)
    t_modified = run_start(zone, src, target, args.ranks, workdir)
    modified = delta(before, api_calls(zone))
    print(f"{'pass':34s} {'seconds':>8s} {'files/s':>10s} {'API calls/file':>15s}  calls")
    for label, t, calls in (("initial register", t_initial, initial), ("unchanged tree", t_unchanged, unchanged),
                            (f"1% modified ({len(changed)} files)", t_modified, modified)):
        print(f"{label:34s} {t:8.2f} {files / t:10,.0f} {per_file(calls, files):15.4f}  {json.dumps(calls)}")
    print(f"hpcingest scan of the same tree: {t_scan:.2f} s; unchanged pass / scan = {t_unchanged / t_scan:.2f} "
          f"(medians of {args.repeats} alternating runs; per-run ratios "
          f"{', '.join(f'{u / c:.2f}' for u, c in zip(unchanged_times, scan_times))})")
    print("(times are whole commands: mpiexec, Python start-up, login, walk, summary)")


def prc_put_worker(job) -> None:
    env, paths, collection = job
    os.environ.update(env)  # IRODS_ENVIRONMENT_FILE and IRODS_AUTHENTICATION_FILE
    from irods.session import iRODSSession

    with iRODSSession(irods_env_file=env["IRODS_ENVIRONMENT_FILE"]) as session:
        for path in paths:
            session.data_objects.put(path, f"{collection}/{os.path.basename(path)}")


def put_section(zone, args, workdir) -> None:
    src = os.path.join(workdir, f"put{args.put_files}")
    if not os.path.exists(src + ".complete"):
        shutil.rmtree(src, ignore_errors=True)
        os.makedirs(src)
        block = os.urandom(4096)
        for i in range(args.put_files):
            with open(os.path.join(src, f"f{i:06d}"), "wb") as f:
                f.write(block)
        open(src + ".complete", "w").close()
    handler = handler_file(workdir, "PUT")
    print(f"\n## PUT of {args.put_files:,} files of 4 KiB, {args.ranks} processes each")
    stamp = int(time.time())
    before = api_calls(zone)
    t_ours = run_start(zone, src, f"{zone.home}/bench_put_{stamp}", args.ranks, workdir, "--event_handler", handler)
    ours = delta(before, api_calls(zone))
    collection = f"{zone.home}/bench_prcput_{stamp}"
    with zone.session() as session:
        session.collections.create(collection)
    paths = sorted(os.path.join(src, p) for p in os.listdir(src))
    jobs = [(zone.environ(), paths[i::args.ranks], collection) for i in range(args.ranks)]
    before = api_calls(zone)
    t = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.ranks) as pool:
        pool.map(prc_put_worker, jobs)
    t_prc = time.perf_counter() - t
    prc = delta(before, api_calls(zone))
    n = args.put_files
    print(f"{'method':40s} {'seconds':>8s} {'files/s':>10s} {'API calls/file':>15s}")
    print(f"{'hpcingest start (PUT)':40s} {t_ours:8.2f} {n / t_ours:10,.0f} {per_file(ours, n):15.3f}")
    print(f"{'PRC data_objects.put loop':40s} {t_prc:8.2f} {n / t_prc:10,.0f} {per_file(prc, n):15.3f}")
    print(f"ratio hpcingest / PRC loop: {t_prc / t_ours:.2f}x files/s")


def big_section(zone, args, workdir) -> None:
    src = os.path.join(workdir, "big")
    path = os.path.join(src, "big.bin")
    size = args.big_mib << 20
    if not os.path.exists(path) or os.path.getsize(path) != size:
        os.makedirs(src, exist_ok=True)
        chunk = os.urandom(1 << 20)
        with open(path, "wb") as f:
            for _ in range(args.big_mib):
                f.write(chunk)
    handler = handler_file(workdir, "PUT")
    print(f"\n## PUT of one {args.big_mib} MiB file, {args.big_repeats} alternating runs (sync before each)")
    ours, inside, prc = [], [], []
    for run in range(args.big_repeats):
        stamp = f"{int(time.time())}_{run}"
        for first in ((True, False) if run % 2 == 0 else (False, True)):
            os.sync()  # the vault's writeback of the previous run must not land on this one
            if first:
                target = f"{zone.home}/bench_big_{stamp}"
                ours.append(run_start(zone, src, target, 1, workdir, "--event_handler", handler))
                with open(os.path.join(workdir, "jobs", target.rsplit("/", 1)[1], "summary.json")) as f:
                    inside.append(json.load(f)["elapsed_s"])
            else:
                with zone.session() as session:
                    t = time.perf_counter()
                    session.data_objects.put(path, f"{zone.home}/bench_big_prc_{stamp}")
                    prc.append(time.perf_counter() - t)
    t_ours, t_inside, t_prc = (statistics.median(x) for x in (ours, inside, prc))
    print(f"hpcingest start (PUT, 1 rank): {t_ours:.2f} s whole command, {t_inside:.2f} s inside the pass "
          f"({args.big_mib / t_inside:.0f} MiB/s); PRC put: {t_prc:.2f} s ({args.big_mib / t_prc:.0f} MiB/s); "
          f"ratio PRC / hpcingest: {t_prc / t_ours:.2f}x whole command, {t_prc / t_inside:.2f}x inside the pass "
          f"(medians; per run inside the pass: {', '.join(f'{p / i:.2f}' for p, i in zip(prc, inside))})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--big-repeats", type=int, default=3, help="alternating runs of the big PUT")
    parser.add_argument("--ranks", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=0.5)
    parser.add_argument("--put-files", type=int, default=10_000)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--repeats", type=int, default=5, help="alternating unchanged passes and scans (medians)")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "hpcingest-ingest-bench"))
    args = parser.parse_args()
    precompile()  # time the code, not its compilation
    os.makedirs(args.workdir, exist_ok=True)
    print(f"# hpcingest ingest benchmark ({os.cpu_count()} cores), command: {' '.join(sys.argv)}")
    zone_root = os.path.join(args.workdir, f"zone-{int(time.time())}")
    zone = start_zone(zone_root, subprocess_mode=True, latency_ms=args.latency_ms)
    try:
        register_section(zone, args, args.workdir)
        if args.put_files:
            put_section(zone, args, args.workdir)
        if not args.skip_big:
            big_section(zone, args, args.workdir)
    finally:
        zone.stop()
        shutil.rmtree(zone_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
