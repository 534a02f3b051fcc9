"""What each call of the job API does, apart from HTTP: submit, list, show, stop and remove
jobs, page through failures, render timelines, gather metrics.

Plain blocking functions (they read job directories and run Slurm commands); the web layer
(hpcingest.serve.app) runs them in worker threads.  Every answer is read again from the job
directory and from Slurm, so nothing is lost when the service restarts.
"""

from __future__ import annotations

import glob
import os
import shutil
import threading
import time
import uuid
from itertools import islice

from hpcingest.ingest.failures import read_report
from hpcingest.ingest.monitor import request_stop
from hpcingest.jobctl import _last_profiled_pass, _mtime, _remove_job_directory, stop_records_idle_job
from hpcingest.jobdir import JobDirectory, JobError, check_job_name, check_private
from hpcingest.joblock import JobLock, JobLocked
from hpcingest.serve import slurm
from hpcingest.serve.launchers import LaunchError, LocalLauncher, SlurmLauncher, local_run_alive
from hpcingest.serve.metrics import exposition, registry_for
from hpcingest.serve.spec import SpecError, build_spec, check_with_start, parse_body
from hpcingest.serve.state import JobViews, SlurmView, listed_jobs, slurm_ids
from hpcingest.serve.submission import load_submission, save_submission, write_handler
from hpcingest.slurmchain import ChainError, load_chain, stop_chain

MAX_PAGE = 1000  # failures per page at most
ACTIVE = ("pending", "running")


class ServiceError(Exception):
    """An HTTP error status and a message for the client (never a secret, never a traceback)."""

    def __init__(self, status: int, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.key = status, message, key


class JobService:
    def __init__(self, job_root: str, launcher: SlurmLauncher | LocalLauncher) -> None:
        self.job_root = os.path.abspath(job_root)
        self.launcher = launcher
        self._views = JobViews()
        self._views_lock = threading.Lock()  # a view updates its job's walk-completion reading
        self._render_lock = threading.Lock()
        self.registry = registry_for(self.list)

    # -- reading ----------------------------------------------------------------------------
    def list(self) -> list[dict]:
        return self._view_all(listed_jobs(self.job_root))

    def status(self, name: str) -> dict:
        return self._view_all([self._job(name)])[0]

    def _view_all(self, jobs: list[JobDirectory]) -> list[dict]:
        ids = [job_id for job in jobs for job_id in slurm_ids(job)]
        try:
            known = SlurmView(slurm.query(ids))
        except slurm.SlurmUnavailable:
            known = SlurmView({}, available=False)
        with self._views_lock:
            return [self._views.view(job, known) for job in jobs]

    def _job(self, name: str) -> JobDirectory:
        try:
            job = JobDirectory(self.job_root, check_job_name(name))
        except JobError as err:
            raise ServiceError(400, str(err), "name") from None
        if not (job.exists() or os.path.exists(os.path.join(job.path, "serve.json"))):
            raise ServiceError(404, f"no job {name!r}")
        return job

    def metrics(self) -> bytes:
        return exposition(self.registry)

    # -- submitting -------------------------------------------------------------------------
    def submit(self, name: str | None, body: bytes, content_type: str) -> dict:
        """Check the request completely, then claim the job directory and submit; on any
        refusal nothing is left behind."""
        name = name if name is not None else str(uuid.uuid1())
        try:
            spec = build_spec(name, parse_body(body, content_type), self.launcher.kind)
            job = JobDirectory(self.job_root, name)
            if os.path.lexists(job.path):
                raise ServiceError(409, f"job {name!r} exists: DELETE /job/{name} removes it once it has ended")
            check_with_start(spec, self.job_root)
        except SpecError as err:
            raise ServiceError(400, str(err), err.key) from None
        self._claim(job)
        try:
            job.create()
            if spec.handler_text is not None:
                write_handler(job, spec.handler_text)
            submission = self.launcher.submit(spec, job)
        except (LaunchError, JobError, OSError) as err:
            shutil.rmtree(job.path, ignore_errors=True)
            raise ServiceError(502 if isinstance(err, LaunchError) else 500, str(err)) from None
        submission.ignored = spec.ignored
        save_submission(job, submission)
        return self.status(name)

    def _claim(self, job: JobDirectory) -> None:
        """The job directory, made by this request or refused (two requests for one name: one wins)."""
        os.makedirs(job.root, mode=0o700, exist_ok=True)
        try:
            check_private(job.root, "job root", directory=True, shared=True)
            os.mkdir(job.path, 0o700)
        except FileExistsError:
            raise ServiceError(409, f"job {job.name!r} exists: DELETE /job/{job.name} removes it once it has ended") \
                from None
        except JobError as err:
            raise ServiceError(500, str(err)) from None

    # -- stopping and removing --------------------------------------------------------------
    def delete(self, name: str) -> dict | None:
        """A pending or running job is stopped (its view is returned; its state becomes
        stopped once its ranks have recorded what they did); an ended one is removed (None)."""
        job = self._job(name)
        try:
            job.check_trusted()
        except JobError as err:
            raise ServiceError(403, str(err)) from None
        view = self.status(name)
        if view["state"] not in ACTIVE and self._remove(job):
            return None
        self._stop(job)
        return self.status(name)

    @staticmethod
    def _remove(job: JobDirectory) -> bool:
        """Removes an ended job's directory, unless a run holds its lock (then it is not ended)."""
        lock = JobLock(job.path, job.name)
        try:
            lock.acquire()
        except JobLocked:
            return False
        try:
            if not _remove_job_directory(job, _mtime(job.record_path)):
                raise ServiceError(409, f"job {job.name!r} changed while it was being removed; try again")
        finally:
            lock.release()
        return True

    def _stop(self, job: JobDirectory) -> None:
        submission = load_submission(job)
        if submission is not None:
            submission.stop_requested = submission.stop_requested or time.time()
            save_submission(job, submission)
        chain = load_chain(job)
        if chain is not None:
            try:
                stop_chain(job)  # the queued pass is cancelled
            except ChainError as err:
                raise ServiceError(502, f"cannot end the chain of Slurm jobs: {err}") from None
        record = job.load() if job.exists() else None
        if record is not None and record.status in ("running", "waiting"):
            # the pass is under way: its ranks finish their current item, checkpoint and record it
            request_stop(job.path, "DELETE")
            return
        if record is not None and stop_records_idle_job(job, record, record.status):
            job.update(status="stopped")  # as `hpcingest stop` records a job that was not running
        # not begun yet (a queued batch job, a run still starting, a chain's next pass): cancel it outright
        slurm_job_id = chain.slurm_job_id if chain is not None else (submission.slurm_job_id if submission else None)
        if slurm_job_id:
            try:
                SlurmLauncher.cancel(slurm_job_id)
            except LaunchError as err:
                raise ServiceError(502, str(err)) from None
        elif submission is not None and local_run_alive(submission):
            LocalLauncher.cancel(submission.pid)

    # -- failures and timelines ---------------------------------------------------------------
    def failures(self, name: str, offset: int, limit: int) -> dict:
        """A page of the failure report: the running pass's (its ranks' files), else the last pass's."""
        job = self._job(name)
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise ServiceError(400, f"offset must be 0 or more and limit 1 to {MAX_PAGE}")
        running = sorted(glob.glob(os.path.join(glob.escape(job.path), "failures.rank*.jsonl")))
        paths = running or [job.failures_path]
        total, page, unreadable = 0, [], 0
        for path in paths:
            try:
                report = read_report(path)  # a running rank's file may end in a half-written line
            except FileNotFoundError:
                continue
            wanted = islice(report.failures, max(0, offset - total), max(0, offset + limit - total))
            page += [failure.to_record() for failure in wanted]
            total += len(report.failures)
            unreadable += report.unreadable
        return {"job_name": name, "pass_running": bool(running), "total": total, "offset": offset, "limit": limit,
                "failures": page[:limit], "unreadable": unreadable}

    def profile_page(self, name: str, pass_number: int | None) -> str:
        """The timeline page of a pass run with ``profile`` (rendered once, again when the
        recording is newer), as a file in the job directory."""
        from hpcingest.profile.render import render_html
        from hpcingest.profile.timeline import ProfileError, load_timeline

        job = self._job(name)
        try:
            number = pass_number or _last_profiled_pass(job)
        except JobError:
            raise ServiceError(404, f"job {name!r} has no timeline: submit it with `profile: true`") from None
        directory = job.profile_dir(number)
        recorded = [os.path.join(directory, n) for n in (os.listdir(directory) if os.path.isdir(directory) else [])]
        if not recorded:
            raise ServiceError(404, f"job {name!r} has no timeline of pass {number} (yet): a pass's timeline is "
                                    "written when the pass ends, for jobs run with profile")
        page = os.path.join(job.path, f"profile-{name}-pass{number}.html")
        with self._render_lock:
            if _mtime(page) < max(map(_mtime, recorded)):
                try:
                    timeline = load_timeline(directory)
                except ProfileError as err:
                    raise ServiceError(404, f"pass {number}: {err}") from None
                render_html(timeline, page, mode=0o600)
        return page

