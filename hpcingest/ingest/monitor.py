"""Live job state in files: per-rank progress (which doubles as a heartbeat) and the stop request.

Each rank runs one small thread during a pass.  Every ``period`` seconds it writes its counters
to ``progress/rank<N>.json`` (atomically) and looks for the job's ``stop`` file; when that
appears it sets the event the engine checks, so the rank finishes its current item and the
pass ends everywhere within a few seconds.  The thread never calls MPI.  `list`, `watch` and
`start --progress` read these files from any node that sees the job directory.

A report names its pass (the pass token) and how many ranks its run has; rank 0 removes the
reports of earlier runs before a run starts, and readers leave out any report that is not of
the newest run (an older pass, or a rank beyond the newest run's count), so a rerun with
fewer ranks never counts the reports an earlier, wider run left behind.

A report also says when the rank's counts last changed and what the rank waits for (an iRODS
call, logins the server refuses, a connected rank that does not take its batches: see
hpcingest.waits), so a job whose ranks all write fresh reports but make no progress is seen as
stalled, with the reason (:func:`job_stall`): in `watch`, in `list`, and once in the log
(``job_stalled``, written by rank 0).
"""

from __future__ import annotations

import json
import os
import re
import stat
import threading
import time
from dataclasses import asdict, astuple, dataclass, field, fields
from operator import attrgetter
from typing import Callable

from hpcingest import waits
from hpcingest.jobdir import write_private

PERIOD_S = 2.0
STALE_AFTER_S = 30.0  # a running job whose rank 0 has not written progress for this long has died
STALL_AFTER_S = 300.0  # a running job none of whose ranks has made progress for this long is stalled
_STALL_CHECK_S = 10.0  # how often rank 0 reads every report while its own counts stand still
_REPORT = re.compile(r"^rank(\d+)\.json$")
_MODE = attrgetter("st_mode")


@dataclass
class WalkCounts:
    """What the walk itself (listing and statting, ahead of the ingest) did on one rank.

    Summed over ranks they tell when the walk is over: every directory found has been listed
    and every batch a listing made has been statted.  The entries walked are then the pass's
    total, known while batches may still wait for their registrations (see
    hpcingest.ingest.display.WalkCompletion for how a reader decides it from files written
    at different moments)."""

    directories_listed: int = 0
    directories_found: int = 0  # subdirectories statted; each is listed in turn
    directories_resumed: int = 0  # finished by an earlier run of the pass: walked without counting
    batches_made: int = 0
    batches_statted: int = 0
    entries: int = 0  # entries statted (excluded and unreadable names are not entries)

    def add(self, other: "WalkCounts") -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def balanced(self) -> bool:
        """Whether these counts, summed over every rank, describe a walk with nothing left:
        the root and every directory found listed, every batch made statted.  A resumed pass
        walks finished directories without counting their subdirectories, so it never is."""
        return (self.directories_resumed == 0 and self.batches_made == self.batches_statted
                and self.directories_listed == self.directories_found + 1)


@dataclass
class Progress:
    """What one rank (or, summed, the job) has done so far in the current pass."""

    entries: int = 0
    ingested: int = 0  # created + updated
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    skipped: int = 0
    too_young: int = 0  # --min_age: left for a later pass
    retries: int = 0
    bytes: int = 0  # uploaded (the PUT operations)
    bytes_registered: int = 0  # sizes of the files registered in place
    batches: int = 0  # stat batches ingested (the old framework's tasks)
    failed_batches: int = 0
    walk: WalkCounts = field(default_factory=WalkCounts)
    time: float = 0.0
    pass_number: int = 0
    pass_start: float = 0.0
    done: bool = False
    pass_token: str = ""  # the pass this report belongs to
    ranks: int = 0  # how many ranks the run that wrote it has
    last_change: float = 0.0  # when this rank's counts last changed (wall clock)
    waiting_for: str = ""  # what the rank waits for outside itself, if anything (hpcingest.waits)
    waiting_since: float = 0.0

    @classmethod
    def from_counters(cls, counters, walk: WalkCounts, pass_number: int, pass_start: float, pass_token: str,
                      ranks: int, done: bool = False) -> "Progress":
        created, updated = sum(counters.created.values()), sum(counters.updated.values())
        return cls(entries=counters.entries, ingested=created + updated, created=created, updated=updated,
                   unchanged=counters.unchanged, failed=counters.failed, skipped=counters.skipped,
                   too_young=counters.too_young,
                   retries=counters.retries, bytes=counters.bytes_put, bytes_registered=counters.bytes_registered,
                   batches=counters.batches, failed_batches=counters.failed_batches, walk=WalkCounts(**asdict(walk)), time=time.time(), pass_number=pass_number,
                   pass_start=pass_start, done=done, pass_token=pass_token, ranks=ranks)

    @classmethod
    def from_json(cls, data: dict) -> "Progress":
        return cls(**{**data, "walk": WalkCounts(**data.get("walk", {}))})

    def counts(self) -> tuple:
        """What changes when the rank makes progress (retries alone are none)."""
        return (self.entries, self.ingested, self.unchanged, self.failed, self.skipped, self.bytes,
                self.bytes_registered, astuple(self.walk))


_SUMMED = ("entries", "ingested", "created", "updated", "unchanged", "failed", "skipped", "too_young", "retries",
           "bytes", "bytes_registered", "batches", "failed_batches")


def progress_dir(job_path: str) -> str:
    return os.path.join(job_path, "progress")


def stop_path(job_path: str) -> str:
    return os.path.join(job_path, "stop")


def request_stop(job_path: str, why: str = "") -> None:
    """Ask every rank of the job to stop (each rank's monitor looks for this file every beat)."""
    with open(os.open(stop_path(job_path), os.O_WRONLY | os.O_CREAT, 0o600), "w") as out:
        out.write(f"{time.time()} {why}".rstrip() + "\n")


def clear_progress(job_path: str) -> None:
    """Rank 0, before a run's ranks start reporting: the reports of earlier runs go."""
    directory = progress_dir(job_path)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        if name.startswith("rank"):
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass


def read_rank_progress(job_path: str) -> dict[int, Progress]:
    """Each rank's last report of the job's newest run, by rank (reports of an older pass or
    run, or of ranks beyond the newest run's rank count, are left out)."""
    directory = progress_dir(job_path)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return {}
    reports: dict[int, Progress] = {}
    for name in names:
        match = _REPORT.match(name)
        if match is None:
            continue
        try:
            with open(os.path.join(directory, name)) as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    continue
                reports[int(match.group(1))] = Progress.from_json(json.load(f))
        except (OSError, ValueError, TypeError):
            continue  # being replaced right now
    if not reports:
        return {}
    newest = max(reports.values(), key=lambda p: p.time)
    return {rank: p for rank, p in reports.items() if p.pass_token == newest.pass_token
            and p.ranks == newest.ranks and (rank < newest.ranks or not newest.ranks)}


def sum_progress(reports: dict[int, Progress]) -> Progress:
    """The job's progress: counts summed over ranks, the time of the freshest report, done
    when every rank is."""
    total = Progress()
    for part in reports.values():
        for name in _SUMMED:
            setattr(total, name, getattr(total, name) + getattr(part, name))
        total.walk.add(part.walk)
        total.pass_number = max(total.pass_number, part.pass_number)
        total.pass_start = total.pass_start or part.pass_start
        total.pass_token, total.ranks = part.pass_token, part.ranks
        total.time = max(total.time, part.time)
    total.done = bool(reports) and all(p.done for p in reports.values()) and len(reports) >= total.ranks
    return total


def read_progress(job_path: str) -> tuple[Progress, int, float]:
    """The job's progress summed over ranks, the number of ranks reporting, and the age (s)
    of the freshest report (infinite when none)."""
    reports = read_rank_progress(job_path)
    total = sum_progress(reports)
    return total, len(reports), (time.time() - total.time) if reports else float("inf")


@dataclass(frozen=True)
class Stall:
    """How long a running job's ranks have made no progress, and what they wait for."""

    seconds: float  # since any rank's counts last changed
    waiting_for: list[str]  # "27 ranks: iRODS PHY_PATH_REG_AN (for 312 s)", most ranks first

    def describe(self) -> str:
        waits = "; ".join(self.waiting_for) or "nothing they report"
        return f"no progress for {self.seconds:,.0f} s; waiting for: {waits}"


def job_stall(reports: dict[int, Progress], now: float | None = None) -> Stall | None:
    """The job's stall from its ranks' reports (None without reports, or once every rank is done)."""
    live = [p for p in reports.values() if not p.done]
    if not live:
        return None
    now = time.time() if now is None else now
    changed = max(p.last_change or p.pass_start or p.time for p in reports.values())
    groups: dict[str, list[Progress]] = {}
    for report in live:
        groups.setdefault(report.waiting_for, []).append(report)
    waiting = []
    for what, members in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
        count = f"{len(members)} rank{'s' if len(members) > 1 else ''}"
        if what:
            since = min(p.waiting_since for p in members)
            waiting.append(f"{count}: {what} (for {max(0.0, now - since):,.0f} s)")
        else:
            waiting.append(f"{count}: nothing outside themselves (working, or out of work)")
    return Stall(max(0.0, now - changed), waiting)


def stall_threshold(options: dict | None) -> float:
    """The job's --stall_after, from its record's options."""
    return float((options or {}).get("stall_after") or STALL_AFTER_S)


def stall_report(job_path: str, stall_after: float, live: bool) -> dict:
    """`list`'s fields: ``stalled_s`` (None unless no rank has made progress for ``stall_after``
    seconds) and ``waiting_for`` (what the ranks of a running job wait for, grouped)."""
    stall = job_stall(read_rank_progress(job_path)) if live else None
    return {"stalled_s": round(stall.seconds) if stall is not None and stall.seconds >= stall_after else None,
            "waiting_for": stall.waiting_for if stall is not None else []}


class WalkTally:
    """Stands between the source and the sink on each rank and counts what the walk did
    (:class:`WalkCounts`); everything else goes to the sink unchanged."""

    def __init__(self, sink) -> None:
        self.sink = sink
        self.counts = WalkCounts()

    def consume(self, batch, ctx) -> None:
        counts = self.counts
        counts.batches_statted += 1
        counts.entries += len(batch.names)
        counts.directories_found += sum(map(stat.S_ISDIR, map(_MODE, batch.stats)))
        self.sink.consume(batch, ctx)

    def listed(self, directory: bytes, batches: int, ok: bool, ctx) -> None:
        self.counts.directories_listed += 1
        self.counts.batches_made += batches
        listed = getattr(self.sink, "listed", None)
        if listed is not None:
            listed(directory, batches, ok, ctx)

    def completed_earlier(self, directory: bytes, ctx) -> bool:
        completed = getattr(self.sink, "completed_earlier", None)
        done = bool(completed is not None and completed(directory, ctx))
        self.counts.directories_resumed += done
        return done

    def __getattr__(self, name: str):
        if name == "sink":
            raise AttributeError(name)
        return getattr(self.sink, name)  # the sink's other hooks, as the source looks them up


class PassMonitor:
    """The per-rank thread: writes progress, watches for `stop`; on rank 0 (given a logger) it
    also logs ``job_stalled`` once when no rank has made progress for ``stall_after`` seconds,
    and ``job_progressing`` when progress resumes."""

    def __init__(self, job_path: str, rank: int, snapshot: Callable[[bool], Progress],
                 stop: threading.Event, period_s: float = PERIOD_S, stall_after: float = STALL_AFTER_S,
                 logger=None) -> None:
        self.job_path = job_path
        self.path = os.path.join(progress_dir(job_path), f"rank{rank:05d}.json")
        self.stop_file = stop_path(job_path)
        self.snapshot = snapshot
        self.stop = stop
        self.period_s = period_s
        self.stall_after = stall_after
        self.logger = logger if rank == 0 else None
        self._counts: tuple | None = None
        self._changed = time.time()
        self._stalled: Stall | None = None  # the stall logged, until progress resumes
        self._stall_checked = 0.0
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hpcingest-monitor", daemon=True)

    def __enter__(self) -> "PassMonitor":
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        self._write(False)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.finish()

    def finish(self) -> None:
        """Stop the thread and write this rank's final counts: once the walk's closing round
        brings them to rank 0, its display must find them written."""
        if self._finished.is_set():
            return
        self._finished.set()
        self._thread.join()
        self._write(True)

    def _write(self, done: bool) -> None:
        progress = self.snapshot(done)
        counts = progress.counts()
        if counts != self._counts:
            self._counts, self._changed = counts, progress.time
        progress.last_change = self._changed
        wait = waits.board.current()
        if wait is not None:
            progress.waiting_for, progress.waiting_since = wait.what, wait.since
        try:
            write_private(self.path, json.dumps(asdict(progress)), durable=False)
        except OSError:
            pass  # progress is best effort; the pass itself must not fail for it

    def _run(self) -> None:
        while not self._finished.wait(self.period_s):
            if os.path.exists(self.stop_file):
                self.stop.set()
            self._write(False)
            if self.logger is not None:
                self._watch_for_a_stall()

    def _watch_for_a_stall(self) -> None:
        """Rank 0: the job is stalled only if no rank progresses, so every report is read only
        while rank 0's own counts stand still, and then every _STALL_CHECK_S."""
        now = time.time()
        if now - self._changed < self.stall_after and self._stalled is None:
            return
        if now - self._stall_checked < _STALL_CHECK_S:
            return
        self._stall_checked = now
        stall = job_stall(read_rank_progress(self.job_path), now)
        if stall is not None and stall.seconds >= self.stall_after:
            if self._stalled is None:
                self._stalled = stall
                self.logger.warning("job_stalled", stalled_s=round(stall.seconds), waiting_for=stall.waiting_for,
                                    message=stall.describe())
        elif self._stalled is not None:
            self._stalled = None
            self.logger.warning("job_progressing", message="progress resumed after a stall")
