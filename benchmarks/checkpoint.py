"""Checkpoint cost: bytes on disk per file and the share of a pass spent in the sync-state sqlite.

Usage:  python benchmarks/checkpoint.py [--files 200000] [--ranks 4] [--workdir DIR]

Runs `hpcingest start` with a NO_OP handler and --initial_ingest, so the pass is the walk plus
the checkpoint and nothing else (the worst case for the checkpoint's share), then a second pass
over the unchanged tree (every lookup hits the checkpoint).  Reports the state directory's size
per file, and the time the ranks spent in sqlite against the ranks' total pass time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import handler_file, precompile  # noqa: E402
from hpcingest import sample  # noqa: E402
from hpcingest.launch import mpiexec_path  # noqa: E402
from hpcingest.zone.testing import start_zone  # noqa: E402

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--ranks", type=int, default=4)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "hpcingest-checkpoint-bench"))
    args = parser.parse_args()
    precompile()  # time the code, not its compilation
    os.makedirs(args.workdir, exist_ok=True)
    src = os.path.join(args.workdir, f"tree{args.files}")
    if not os.path.exists(src + ".complete"):
        shutil.rmtree(src, ignore_errors=True)
        sample.generate(src, files=args.files, seed=4, max_file_size=0)
        open(src + ".complete", "w").close()
    handler = handler_file(args.workdir, "NO_OP")
    jobs = os.path.join(args.workdir, f"jobs-{int(time.time())}")
    print(f"# checkpoint benchmark ({os.cpu_count()} cores), command: {' '.join(sys.argv)}")
    zone = start_zone(os.path.join(jobs, "zone"), subprocess_mode=True)
    try:
        env = {**os.environ, **zone.environ()}
        for label, extra in (("first pass (NO_OP, --initial_ingest)", ["--initial_ingest"]),
                             ("unchanged pass", [])):
            subprocess.run([mpiexec_path(), "-n", str(args.ranks), sys.executable, "-m", "hpcingest", "start", src,
                            f"{zone.home}/ck", "--job_dir", jobs, "--job_name", "ck", "--event_handler", handler,
                            *extra], check=True, env=env, stdout=subprocess.DEVNULL)
            summary = json.load(open(os.path.join(jobs, "ck", "summary.json")))
            state = os.path.join(jobs, "ck", "state")
            size = sum(os.path.getsize(os.path.join(state, f)) for f in os.listdir(state))
            share = summary["state_seconds"] / (summary["elapsed_s"] * summary["ranks"])
            cpu_share = summary["state_cpu_seconds"] / summary["cpu_seconds"]
            print(f"{label}: {summary['entries']:,} entries in {summary['elapsed_s']:.2f} s; state on disk "
                  f"{size:,} bytes = {size / summary['entries']:.1f} bytes/entry; in sqlite: wall "
                  f"{summary['state_seconds']:.2f} of {summary['elapsed_s'] * summary['ranks']:.2f} rank-s "
                  f"= {100 * share:.1f}%, CPU {summary['state_cpu_seconds']:.2f} of {summary['cpu_seconds']:.2f} "
                  f"CPU-s = {100 * cpu_share:.1f}%")
    finally:
        zone.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
