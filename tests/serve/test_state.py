"""Job states read from job directories (no service process): the moments a naive reading gets wrong."""

from __future__ import annotations

import os
import socket
import time

from hpcingest.jobdir import JobDirectory, JobRecord
from hpcingest.joblock import JobLock
from hpcingest.serve.launchers import LocalLauncher
from hpcingest.serve.service import JobService
from hpcingest.serve.state import JobViews, SlurmView
from hpcingest.serve.submission import Submission, save_submission


def recorded_job(tmp_path, status: str, periodic: bool) -> JobDirectory:
    """A job whose record says ``status``, launched by this (live) process."""
    job = JobDirectory(str(tmp_path / "jobs"), "j")
    job.create()
    job.save(JobRecord(job_name="j", source="/src", target="/z/t", options={"interval": 5 if periodic else None},
                       status=status, periodic=periodic, pass_number=3, start_time=time.time() - 10,
                       end_time=time.time(), launch={"host": socket.gethostname(), "pid": os.getpid()},
                       counters={"files": 4, "created": 4}, pass_complete=True))
    return job


def test_a_periodic_run_between_passes_is_running_not_done(tmp_path):
    """`start --interval` records a pass's end before it records that it waits: in between, the
    job (whose process lives on) is running, never done or failed."""
    for status in ("finished", "failed"):
        job = recorded_job(tmp_path / status, status, periodic=True)
        view = JobViews().view(job, SlurmView({}))
        assert (view["state"], view["pass"]) == ("running", 3), view


def test_a_finished_single_pass_is_done_and_a_stopped_one_stopped(tmp_path):
    assert JobViews().view(recorded_job(tmp_path / "a", "finished", periodic=False), None)["state"] == "done"
    assert JobViews().view(recorded_job(tmp_path / "b", "stopped", periodic=True), None)["state"] == "stopped"


def test_delete_never_removes_a_job_whose_run_holds_its_lock(tmp_path):
    job = recorded_job(tmp_path, "finished", periodic=False)
    save_submission(job, Submission(job_name="j", launcher="mpiexec", submitted=time.time(), pid=None))
    service = JobService(job.root, LocalLauncher(2))
    lock = JobLock(job.path, "j")
    lock.acquire()  # a run of the job that has not yet recorded itself (or is between passes)
    try:
        view = service.delete("j")
        assert view is not None and os.path.exists(job.record_path)
    finally:
        lock.release()
    assert service.delete("j") is None and not os.path.exists(job.path)  # once nothing holds it: removed


def test_delete_leaves_a_finished_single_pass_finished_as_stop_does(tmp_path):
    """DELETE of a job whose run still held its lock recorded a finished one-pass job as stopped;
    `hpcingest stop` leaves it finished (and records a periodic job between passes stopped)."""
    for periodic, expected in ((False, "finished"), (True, "stopped")):
        job = recorded_job(tmp_path / str(periodic), "finished", periodic=periodic)
        save_submission(job, Submission(job_name="j", launcher="mpiexec", submitted=time.time(), pid=None))
        lock = JobLock(job.path, "j")
        lock.acquire()  # the run that finished has not let go of the job yet
        try:
            assert JobService(job.root, LocalLauncher(2)).delete("j") is not None
        finally:
            lock.release()
        assert job.load().status == expected, periodic
