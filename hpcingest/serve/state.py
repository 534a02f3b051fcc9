"""A job's state as the service reports it, read from the job directory and from Slurm.

Nothing comes from the service's memory: the job's record, progress reports, failure report
and summary (what `hpcingest list`, `watch` and `report` read, through
:func:`hpcingest.jobctl.describe`), the service's ``serve.json`` and a chain's ``slurm.json``,
and Slurm's word on the batch jobs.  So a restarted service reports every job as before.

The five states: ``pending`` (queued, not yet running), ``running`` (a pass runs, or a
periodic job waits for its next pass), ``done``, ``failed`` (with the reason) and ``stopped``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from hpcingest.escaping import json_display, json_safe
from hpcingest.ingest.display import WalkCompletion
from hpcingest.ingest.monitor import read_rank_progress, sum_progress
from hpcingest.jobdir import JobDirectory, JobError, list_jobs
from hpcingest.serve.launchers import local_run_alive
from hpcingest.serve.slurm import SlurmJob
from hpcingest.serve.submission import Submission, load_submission
from hpcingest.slurmchain import Chain, load_chain

STATES = ("pending", "running", "done", "failed", "stopped")
_RECORDED = {"finished": "done", "failed": "failed", "stopped": "stopped"}
_OUTPUT_TAIL_BYTES = 16384


@dataclass
class SlurmView:
    """What Slurm said of the jobs being viewed (``known``), or that it could not be asked."""

    known: dict[str, SlurmJob]
    available: bool = True

    def job(self, job_id: str | None) -> SlurmJob | None:
        return self.known.get(job_id) if job_id else None

    def queued(self, job_id: str | None) -> bool:
        """Whether the job is still to run or running; when Slurm cannot be asked, assumed so."""
        if not job_id:
            return False
        if not self.available:
            return True
        found = self.known.get(job_id)
        return found is not None and found.phase != "ended"


def slurm_ids(job: JobDirectory) -> list[str]:
    """The Slurm jobs the service asks about for a job: its first, and its chain's current and next."""
    submission, chain = _submission(job), _chain(job)
    ids = [submission.slurm_job_id if submission else None]
    if chain is not None:
        ids += [chain.slurm_job_id, chain.next_slurm_job_id]
    return [i for i in ids if i]


def _submission(job: JobDirectory) -> Submission | None:
    try:
        return load_submission(job)
    except JobError:
        return None


def _chain(job: JobDirectory) -> Chain | None:
    try:
        return load_chain(job)
    except JobError:
        return None


class JobViews:
    """Builds job views; keeps, per job, only what makes a percentage possible before a first
    pass's total is known (hpcingest.ingest.display.WalkCompletion needs two readings)."""

    def __init__(self) -> None:
        self._completions: dict[str, WalkCompletion] = {}

    def view(self, job: JobDirectory, slurm: SlurmView | None) -> dict:
        """The job as GET /job/<name> shows it (``slurm`` None: Slurm is not asked)."""
        from hpcingest.jobctl import describe

        submission, chain = _submission(job), _chain(job)
        slurm = slurm or SlurmView({}, available=False)
        chain_goes_on = chain is not None and not chain.stopped and slurm.queued(chain.next_slurm_job_id)
        info = record = None
        if job.exists():
            try:
                record = job.load()
                info = describe(job, chain if chain_goes_on else None)
            except JobError as err:
                return self._unreadable(job, submission, str(err))
        slurm_job_id = chain.slurm_job_id if chain is not None else (submission.slurm_job_id if submission else None)
        state, reason = _state(info, submission, slurm, slurm_job_id, job)
        view = {
            "job_name": job.name, "state": state, "reason": reason,
            "waiting": bool(info and info["status"] == "waiting"),  # a periodic job between passes
            "launcher": submission.launcher if submission else None,
            "periodic": bool(chain is not None or (record and record.periodic) or (submission and submission.interval)),
            "interval": (chain.interval if chain else None) or (submission.interval if submission else None)
            or (record.options.get("interval") if record else None),
            "pass": info["pass"] if info else 0,
            "source": record.source if record else None, "target": record.target if record else None,
            "submitted": submission.submitted if submission else None,
            "start_time": record.start_time if record else None, "end_time": record.end_time if record else None,
            "stop_requested": submission.stop_requested if submission else None,
            "ignored": submission.ignored if submission else {},
            "progress": self._progress(job, record, info),
            "failures": info["failures"] if info else 0,
            "summary": _summary(job) if record else None,
            "profile": bool(record and record.options.get("profile")),
        }
        if submission is None or submission.launcher == "slurm" or chain is not None:
            found = slurm.job(slurm_job_id)
            view.update(slurm_job_id=slurm_job_id, slurm_state=found.state if found else None,
                        next_slurm_job_id=chain.next_slurm_job_id if chain_goes_on else None,
                        next_run=chain.next_run if chain_goes_on else None)
        if submission is not None and submission.launcher == "mpiexec":
            view.update(pid=submission.pid, host=submission.host)
        return json_safe(view)

    def _progress(self, job: JobDirectory, record, info: dict | None) -> dict:
        """The pass's counts: those `hpcingest list` shows (describe), split by outcome from the
        ranks' reports while the pass runs and from the job record once it ended."""
        if info is None:
            return {"entries": 0, "created": 0, "updated": 0, "unchanged": 0, "failed": 0, "skipped": 0,
                    "too_young": 0, "retries": 0, "bytes_uploaded": 0, "bytes_registered": 0, "rate": 0.0,
                    "elapsed": 0.0, "ranks": 0, "total": None, "percent": None}
        reports = read_rank_progress(job.path)
        live = sum_progress(reports)
        reported = record.status in ("running", "waiting")  # as describe: the ranks' reports hold the counts
        counters = record.counters or {}
        split = {name: getattr(live, name) if reported else counters.get(name, 0)
                 for name in ("created", "updated", "unchanged", "skipped")}
        total = self._total(job, live, reports, record) if reported else (info["files"] if record.pass_complete
                                                                          else None)
        return {"entries": info["files"], **split, "failed": info["failures"], "too_young": info["too_young"],
                "retries": info["retries"], "bytes_uploaded": info["bytes"],
                "bytes_registered": info["bytes_registered"], "rate": info["rate"], "elapsed": info["elapsed_s"],
                "ranks": info["ranks"], "total": total,
                "percent": round(min(100.0, 100.0 * info["files"] / total), 1) if total else None}

    def _total(self, job: JobDirectory, live, reports, record) -> int | None:
        """The pass's total: the walk's, once it is over; before that, the last complete pass's
        while this one is below it (as `watch` shows it)."""
        completion = self._completions.setdefault(job.name, WalkCompletion())
        total = completion.update(live, reports)
        if total is None and record.last_pass_entries and live.entries < record.last_pass_entries:
            total = record.last_pass_entries
        return total

    @staticmethod
    def _unreadable(job: JobDirectory, submission: Submission | None, why: str) -> dict:
        return json_safe({"job_name": job.name, "state": "failed", "reason": why,
                          "launcher": submission.launcher if submission else None})


def _state(info: dict | None, submission: Submission | None, slurm: SlurmView, slurm_job_id: str | None,
           job: JobDirectory) -> tuple[str, str | None]:
    """One of STATES and why (None when the state says it all)."""
    stopping = submission is not None and submission.stop_requested is not None
    status = info["status"] if info else None
    slurm_job = slurm.job(slurm_job_id)
    if status in ("running", "waiting"):
        if slurm_job is not None and slurm_job.phase == "ended" and status == "running":
            return _ended(stopping, f"Slurm job {slurm_job_id} ended ({slurm_job.state}) while its pass ran", job,
                          submission)
        if stopping:
            return "running", "stopping: the ranks finish their current item and record what they did"
        return "running", "waiting for the next pass" if status == "waiting" else None
    if status == "died":
        return _ended(stopping, "the ranks stopped reporting (killed, or a node was lost): "
                                f"`hpcingest resume {job.name}` finishes the pass", job, submission)
    if status in ("finished", "failed") and periodic_run_goes_on(job):
        return "running", "between passes"  # the moment between a pass's end and the wait for the next
    if status is not None:
        if stopping:
            return "stopped", "stopped on request"
        if status == "failed":
            return "failed", (f"{info['failures']} entries failed: see /job/{job.name}/failures" if info["failures"]
                              else _output_error(job, submission) or "the pass failed")
        return _RECORDED.get(status, "failed"), None
    # no record yet: the run has not begun its first pass
    if submission is None:
        return "failed", "no job record"
    if submission.launcher == "slurm":
        if not slurm.available:
            return "pending", "Slurm cannot be asked right now"
        if slurm_job is not None and slurm_job.phase == "pending":
            return ("stopped", "cancelled before it ran") if stopping else \
                ("pending", None if slurm_job.reason in ("None", "") else f"Slurm: {slurm_job.reason}")
        if slurm_job is not None and slurm_job.phase == "running":
            return "running", "the batch job runs; the ingest has not begun yet"
        ended = f"Slurm job {slurm_job_id} ended" + (f" ({slurm_job.state}, {slurm_job.reason})" if slurm_job else "")
        return _ended(stopping, f"{ended} before the ingest began", job, submission)
    if local_run_alive(submission):
        return "running", "starting"
    return _ended(stopping, "the local run ended before the ingest began", job, submission)


def periodic_run_goes_on(job: JobDirectory) -> bool:
    """Whether a periodic job's run (`start --interval`, all passes in one process) is still
    alive although its record says the last pass ended: it records the end of a pass before it
    records that it waits for the next."""
    from hpcingest.ingest.job import job_is_alive

    try:
        return job.load().periodic and job_is_alive(job)
    except JobError:
        return False


def _ended(stopping: bool, why: str, job: JobDirectory, submission: Submission | None) -> tuple[str, str]:
    if stopping:
        return "stopped", "stopped on request"
    error = _output_error(job, submission)
    return "failed", f"{why}: {error}" if error else why


def _output_error(job: JobDirectory, submission: Submission | None) -> str | None:
    """The last error line of the run's output (a Slurm job's output file, or the local run's)."""
    if submission is None or not submission.output:
        return None
    chain = _chain(job)
    path = os.path.join(job.path, f"slurm-{chain.slurm_job_id}.out") if chain is not None else submission.output
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - _OUTPUT_TAIL_BYTES))
            lines = f.read().decode("utf-8", "surrogateescape").splitlines()
    except OSError:
        return None
    errors = [line for line in lines if "error" in line.lower()]
    return json_display(errors[-1].strip()[:500]) if errors else None


def _summary(job: JobDirectory) -> dict | None:
    try:
        with open(job.summary_path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def listed_jobs(root: str) -> list[JobDirectory]:
    """Every job in the job root: those `start` recorded and those the service submitted."""
    jobs = {job.name: job for job in list_jobs(root)}
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    for name in names:
        if name not in jobs and os.path.exists(os.path.join(root, name, "serve.json")):
            try:
                jobs[name] = JobDirectory(root, name)
            except JobError:
                continue
    return [jobs[name] for name in sorted(jobs)]
