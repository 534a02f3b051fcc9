"""The live progress display of `watch JOB` and `start --progress`.

Reads the per-rank progress files (hpcingest.ingest.monitor), so it works from any node that
sees the job directory.  On a terminal it redraws one line; otherwise it prints a line every
few seconds, which reads well in a Slurm output file.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from hpcingest.ingest.monitor import Progress, read_progress
from hpcingest.jobdir import JobDirectory


def render(progress: Progress, ranks: int, expected: int | None, rate: float) -> str:
    elapsed = max(0.0, progress.time - progress.pass_start) if progress.pass_start else 0.0
    parts = [f"pass {progress.pass_number}", f"{elapsed:6.0f} s", f"{progress.entries:,} entries",
             f"{progress.ingested:,} ingested", f"{progress.unchanged:,} unchanged",
             f"{progress.bytes / 2**20:,.1f} MiB", f"{rate:,.0f} entries/s",
             f"{progress.failed:,} failed", f"{progress.skipped:,} skipped", f"{ranks} ranks"]
    if expected and rate > 0 and progress.entries < expected:
        parts.append(f"ETA {(expected - progress.entries) / rate:,.0f} s")
    return "  ".join(parts)


class ProgressDisplay:
    """A thread that shows a job's progress until stopped (or until the job reports done)."""

    def __init__(self, jobdir: JobDirectory, out: TextIO | None = None, period_s: float | None = None) -> None:
        self.jobdir = jobdir
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self.period_s = period_s or (1.0 if self.tty else 10.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hpcingest-progress", daemon=True)
        self._last: tuple[float, int] | None = None

    def __enter__(self) -> "ProgressDisplay":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self.tty:
            self.out.write("\n")
            self.out.flush()

    def show_once(self) -> Progress:
        progress, ranks, _ = read_progress(self.jobdir.path)
        now = time.time()
        rate = 0.0
        if self._last is not None and now > self._last[0]:
            rate = max(0.0, (progress.entries - self._last[1]) / (now - self._last[0]))
        elif progress.pass_start and progress.time > progress.pass_start:
            rate = progress.entries / (progress.time - progress.pass_start)
        self._last = (now, progress.entries)
        try:
            expected = self.jobdir.load().last_pass_entries
        except Exception:  # noqa: BLE001 - the record is being replaced; no ETA this time
            expected = None
        line = render(progress, ranks, expected, rate)
        self.out.write(("\r\033[K" + line) if self.tty else (line + "\n"))
        self.out.flush()
        return progress

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.show_once()
