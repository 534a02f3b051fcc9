"""A Slurm task for the batch-script tests: records in RECORD_DIR/rank<N> what happens to it.

It stands where the scripts start `hpcingest start`, to see what the scripts deliver to the
ranks (a TERM before the time limit, a kill when another rank dies), apart from what
hpcingest does with it.  On TERM it takes a moment (as a checkpoint would) and exits 0;
``--die N`` makes rank N exit 3 at once, as a crashed rank would.

    slurm_task.py RECORD_DIR [--die N]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("record_dir")
    parser.add_argument("--die", type=int, default=None)
    args, _ = parser.parse_known_args()
    rank = int(os.environ.get("SLURM_PROCID", "0"))
    path = os.path.join(args.record_dir, f"rank{rank}")

    def record(event: str) -> None:
        with open(path, "a") as f:
            f.write(event + "\n")

    def on_term(signum, frame) -> None:
        record("TERM")
        time.sleep(2)
        record("checkpointed")
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    record("started")
    if args.die == rank:
        time.sleep(1)
        record("died")
        return 3
    time.sleep(60)
    record("finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
