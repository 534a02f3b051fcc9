"""The live progress display of `watch JOB` and `start --progress`.

Reads the per-rank progress files (hpcingest.ingest.monitor), so it works from any node that
sees the job directory.  On a terminal it redraws one line; otherwise it prints a line every
few seconds, which reads well in a Slurm output file.

Everything shown is computed from the reports and the times the ranks wrote them, never from
when the display happened to redraw: each rank rewrites its report every 2 s, so a rate taken
between two redraws a second apart would be 0 one time and twice the truth the next.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from dataclasses import astuple
from typing import TextIO

from hpcingest.ingest.monitor import (Progress, Stall, WalkCounts, job_stall, read_rank_progress, stall_threshold,
                                      sum_progress)
from hpcingest.jobdir import JobDirectory

RATE_WINDOW_S = 10.0  # the rate is taken over the reports of about this many seconds


class RateMeter:
    """Entries per second, summed over ranks, each rank's taken over its own reports of the
    last RATE_WINDOW_S seconds (before a rank's second report: its average since the pass began)."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: dict[int, deque[tuple[float, int]]] = {}
        self._token = ""

    def update(self, reports: dict[int, Progress]) -> float:
        token = next((p.pass_token for p in reports.values()), "")
        if token != self._token:
            self._samples.clear()
            self._token = token
        rate = 0.0
        for rank, report in reports.items():
            samples = self._samples.setdefault(rank, deque())
            if not samples or report.time > samples[-1][0]:
                samples.append((report.time, report.entries))
            while len(samples) > 2 and samples[-1][0] - samples[1][0] >= self.window_s:
                samples.popleft()
            if report.done:
                continue  # a rank that has finished adds nothing any more
            (first_time, first_entries), (last_time, last_entries) = samples[0], samples[-1]
            if last_time > first_time:
                rate += max(0, last_entries - first_entries) / (last_time - first_time)
            elif report.pass_start and report.time > report.pass_start:
                rate += report.entries / (report.time - report.pass_start)
        return rate


class WalkCompletion:
    """The pass's total, once the walk is over (None until then).

    The ranks write their counts at different moments, so one reading that balances (every
    directory found listed, every batch made statted) may still miss work a late report has
    not shown yet.  As in the counting termination test the engine itself uses, the walk is
    over when the balanced counts are read again, unchanged, from reports that every rank
    wrote after the first reading's newest one."""

    def __init__(self) -> None:
        self._token = ""
        self._candidate: tuple[tuple, float] | None = None
        self.total: int | None = None

    def update(self, progress: Progress, reports: dict[int, Progress]) -> int | None:
        if progress.pass_token != self._token:
            self._token, self._candidate, self.total = progress.pass_token, None, None
        if self.total is not None or not reports or len(reports) < progress.ranks:
            return self.total
        walk: WalkCounts = progress.walk
        if not walk.balanced():
            self._candidate = None
            return None
        counts = astuple(walk)
        oldest = min(p.time for p in reports.values())
        if self._candidate is not None and self._candidate[0] == counts and oldest > self._candidate[1]:
            self.total = walk.entries
        elif self._candidate is None or self._candidate[0] != counts:
            self._candidate = (counts, max(p.time for p in reports.values()))
        if progress.done and len(reports) >= progress.ranks:
            self.total = walk.entries  # every rank has finished: nothing is left to find
        return self.total


def render(progress: Progress, ranks: int, rate: float, total: int | None, stall: Stall | None = None) -> str:
    """One progress line: the pass, its counts, bytes, rate, and, once the total is known,
    the percentage done and the time left; for a stalled job, what its ranks wait for."""
    elapsed = max(0.0, progress.time - progress.pass_start) if progress.pass_start else 0.0
    parts = [f"pass {progress.pass_number}", f"{elapsed:6.0f} s", f"{progress.entries:,} entries",
             f"{progress.ingested:,} ingested", f"{progress.unchanged:,} unchanged"]
    if progress.bytes_registered:
        parts.append(f"{progress.bytes_registered / 2**20:,.1f} MiB registered")
    if progress.bytes or not progress.bytes_registered:
        parts.append(f"{progress.bytes / 2**20:,.1f} MiB uploaded")
    parts += [f"{rate:,.0f} entries/s", f"{progress.failed:,} failed", f"{progress.skipped:,} skipped",
              *([f"{progress.too_young:,} too young"] if progress.too_young else []), f"{ranks} ranks"]
    if total:
        parts.append(f"{min(100.0, 100.0 * progress.entries / total):.1f}%")
        if progress.entries < total:
            parts.append(f"ETA {(total - progress.entries) / rate:,.0f} s" if rate > 0 else "ETA --")
    if stall is not None:
        parts.append(f"STALLED: {stall.describe()}")
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
        self._rate = RateMeter()
        self._walk = WalkCompletion()
        try:
            self.stall_after = stall_threshold(jobdir.load().options)
        except Exception:  # noqa: BLE001 - no record to read: the default
            self.stall_after = stall_threshold(None)

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
        reports = read_rank_progress(self.jobdir.path)
        progress = sum_progress(reports)
        rate = self._rate.update(reports)
        if progress.done and progress.time > progress.pass_start > 0:
            rate = progress.entries / (progress.time - progress.pass_start)  # the pass's own average
        total = self._walk.update(progress, reports) or self._expected(progress)
        stall = job_stall(reports)
        line = render(progress, len(reports), rate, total,
                      stall if stall is not None and stall.seconds >= self.stall_after else None)
        self.out.write(("\r\033[K" + line) if self.tty else (line + "\n"))
        self.out.flush()
        return progress

    def _expected(self, progress: Progress) -> int | None:
        """Before the walk is over: the last complete pass's count, while this pass is below it."""
        try:
            expected = self.jobdir.load().last_pass_entries
        except Exception:  # noqa: BLE001 - the record is being replaced; no estimate this time
            return None
        return expected if expected and progress.entries < expected else None

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.show_once()
