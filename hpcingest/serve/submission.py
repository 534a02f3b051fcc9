"""What the service did with a job request, kept in the job directory (``serve.json``, 0600).

The service keeps nothing a restart would lose: what it submitted, and how to find the run
again (the Slurm job id, or the local process), is in this file beside the job's own record,
and a job's state is always read back from the job directory and from Slurm.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from hpcingest.jobdir import JobDirectory, read_record, write_private, write_record

HANDLER_FILE = "handler.py"  # event_handler_data, 0600: the job runs it, nothing shows it


@dataclass
class Submission:
    job_name: str
    launcher: str  # "slurm" or "mpiexec"
    submitted: float
    interval: int | None = None
    ranks: int | None = None
    slurm_job_id: str | None = None  # the first Slurm job (a chain's later passes are in slurm.json)
    host: str | None = None  # where a local run was started
    pid: int | None = None  # the local run's mpiexec (the leader of its process group)
    output: str | None = None  # the run's output file (a Slurm job's: slurm-<id>.out in the job directory)
    ignored: dict[str, str] = field(default_factory=dict)
    stop_requested: float | None = None  # when DELETE asked the job to stop


def submission_path(job: JobDirectory) -> str:
    return os.path.join(job.path, "serve.json")


def handler_path(job: JobDirectory) -> str:
    return os.path.join(job.path, HANDLER_FILE)


def load_submission(job: JobDirectory) -> Submission | None:
    return read_record(submission_path(job), Submission, "submission")


def save_submission(job: JobDirectory, submission: Submission) -> None:
    write_record(submission_path(job), submission)


def write_handler(job: JobDirectory, text: str) -> str:
    """The request's handler text, readable by this user only."""
    path = handler_path(job)
    write_private(path, text)
    return path
