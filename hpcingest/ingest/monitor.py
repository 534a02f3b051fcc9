"""Live job state in files: per-rank progress (which doubles as a heartbeat) and the stop request.

Each rank runs one small thread during a pass.  Every ``period`` seconds it writes its counters
to ``progress/rank<N>.json`` (atomically) and looks for the job's ``stop`` file; when that
appears it sets the event the engine checks, so the rank finishes its current item and the
pass ends everywhere within a few seconds.  The thread never calls MPI.  `list`, `watch` and
`start --progress` read these files from any node that sees the job directory.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, fields
from typing import Callable

from hpcingest.jobdir import write_private

PERIOD_S = 2.0
STALE_AFTER_S = 30.0  # a running job whose rank 0 has not written progress for this long has died


@dataclass
class Progress:
    """What one rank (or, summed, the job) has done so far in the current pass."""

    entries: int = 0
    ingested: int = 0  # created + updated
    unchanged: int = 0
    failed: int = 0
    skipped: int = 0
    retries: int = 0
    bytes: int = 0
    time: float = 0.0
    pass_number: int = 0
    pass_start: float = 0.0
    done: bool = False

    @classmethod
    def from_counters(cls, counters, pass_number: int, pass_start: float, done: bool = False) -> "Progress":
        return cls(entries=counters.entries, ingested=sum(counters.created.values()) + sum(counters.updated.values()),
                   unchanged=counters.unchanged, failed=counters.failed, skipped=counters.skipped,
                   retries=counters.retries, bytes=counters.bytes_put, time=time.time(),
                   pass_number=pass_number, pass_start=pass_start, done=done)


def progress_dir(job_path: str) -> str:
    return os.path.join(job_path, "progress")


def stop_path(job_path: str) -> str:
    return os.path.join(job_path, "stop")


def read_progress(job_path: str) -> tuple[Progress, int, float]:
    """The job's progress summed over ranks, the number of ranks reporting, and the age (s)
    of the freshest report (infinite when none)."""
    total = Progress()
    directory = progress_dir(job_path)
    ranks, newest = 0, 0.0
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return total, 0, float("inf")
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(directory, name)) as f:
                part = Progress(**json.load(f))
        except (OSError, ValueError, TypeError):
            continue  # being replaced right now
        ranks += 1
        newest = max(newest, part.time)
        for f_ in fields(Progress):
            if f_.name in ("time", "pass_number", "pass_start", "done"):
                continue
            setattr(total, f_.name, getattr(total, f_.name) + getattr(part, f_.name))
        total.pass_number = max(total.pass_number, part.pass_number)
        total.pass_start = part.pass_start or total.pass_start
        total.done = part.done if ranks == 1 else (total.done and part.done)
    total.time = newest
    return total, ranks, (time.time() - newest) if ranks else float("inf")


class PassMonitor:
    """The per-rank thread: writes progress, watches for `stop`."""

    def __init__(self, job_path: str, rank: int, snapshot: Callable[[bool], Progress],
                 stop: threading.Event, period_s: float = PERIOD_S) -> None:
        self.path = os.path.join(progress_dir(job_path), f"rank{rank:05d}.json")
        self.stop_file = stop_path(job_path)
        self.snapshot = snapshot
        self.stop = stop
        self.period_s = period_s
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hpcingest-monitor", daemon=True)

    def __enter__(self) -> "PassMonitor":
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        self._write(False)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._finished.set()
        self._thread.join()
        self._write(True)

    def _write(self, done: bool) -> None:
        try:
            write_private(self.path, json.dumps(asdict(self.snapshot(done))), durable=False)
        except OSError:
            pass  # progress is best effort; the pass itself must not fail for it

    def _run(self) -> None:
        while not self._finished.wait(self.period_s):
            if os.path.exists(self.stop_file):
                self.stop.set()
            self._write(False)
