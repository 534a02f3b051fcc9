"""What Slurm says of the service's jobs: one ``squeue`` for all of them.

``squeue -t all`` also shows jobs that ended less than ``MinJobAge`` ago (5 minutes by
default), with their final state and reason; a job it no longer knows has ended longer ago
(or never existed), and the job directory then says how it went.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Iterable

PENDING = ("PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD")
RUNNING = ("CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "RESIZING", "SIGNALING", "STAGE_OUT")


@dataclass(frozen=True)
class SlurmJob:
    job_id: str
    state: str  # Slurm's: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
    reason: str  # Slurm's reason: Priority, Resources, BeginTime, Dependency, NonZeroExitCode, ...

    @property
    def phase(self) -> str:
        """"pending", "running" or "ended"."""
        if self.state in PENDING:
            return "pending"
        return "running" if self.state in RUNNING else "ended"


class SlurmUnavailable(RuntimeError):
    """Slurm could not be asked (controller down, squeue missing): nothing is known of any job."""


def query(job_ids: Iterable[str | None]) -> dict[str, SlurmJob]:
    """The jobs Slurm knows among ``job_ids``, by id; raises SlurmUnavailable."""
    ids = sorted({i for i in job_ids if i})
    if not ids:
        return {}
    try:
        result = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i|%T|%r"],
                                capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SlurmUnavailable(f"squeue: {err}") from None
    if result.returncode != 0:
        if "Invalid job id" in result.stderr:  # the only id asked for is no longer known
            return {}
        raise SlurmUnavailable(f"squeue: {result.stderr.strip() or f'exit status {result.returncode}'}")
    jobs = {}
    for line in result.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            jobs[parts[0]] = SlurmJob(*parts)
    return jobs


def controller_answers() -> bool:
    """Whether a Slurm controller answers here (the service's default launcher then is Slurm)."""
    try:
        result = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and "UP" in result.stdout
