"""How the service runs a job: a Slurm batch job (the scripts in jobs/slurm), or a local
``mpiexec`` run (the embedded default, like the README's demo).

Both run the same `hpcingest start`; neither passes a secret on a command line (``ps`` and
``scontrol show job`` show every argument): the handler travels as a 0600 file in the job
directory, and iRODS and S3 credentials stay in the files and variables the service has.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import hpcingest
from hpcingest.jobdir import JobDirectory
from hpcingest.launch import mpiexec_path
from hpcingest.serve.spec import JobSpec
from hpcingest.serve.submission import Submission, handler_path

DEFAULT_LOCAL_RANKS = 2
LOCAL_OUTPUT = "output.log"


class LaunchError(RuntimeError):
    """The job could not be submitted or started; the message says why."""


def start_options(spec: JobSpec, job: JobDirectory) -> list[str]:
    """The `start` options every launcher passes after SRC and TARGET (no job name: the
    Slurm scripts add it from HPCINGEST_JOB_NAME)."""
    options = [f"--job_dir={job.root}", *spec.start_options]
    if spec.handler_text is not None:
        options.append(f"--event_handler={handler_path(job)}")
    elif spec.handler_path:
        options.append(f"--event_handler={spec.handler_path}")
    return options


def default_scripts_dir() -> str:
    """jobs/slurm of the source tree hpcingest runs from."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(hpcingest.__file__))), "jobs", "slurm")


class SlurmLauncher:
    """Each job is ``sbatch jobs/slurm/ingest.sbatch`` (one pass) or ``periodic.sbatch`` (a chain
    of passes, one batch job each; see hpcingest/slurmchain.py)."""

    kind = "slurm"

    def __init__(self, scripts_dir: str, sbatch_options: list[str], ranks: int | None = None) -> None:
        self.scripts_dir = scripts_dir
        self.sbatch_options = list(sbatch_options)
        self.ranks = ranks
        for script in ("ingest.sbatch", "periodic.sbatch"):
            if not os.path.isfile(os.path.join(scripts_dir, script)):
                raise LaunchError(f"no {script} in {scripts_dir}: give the directory of hpcingest's "
                                  "jobs/slurm scripts with --slurm_scripts")
        if not shutil.which("sbatch"):
            raise LaunchError("sbatch is not on PATH: use --launcher mpiexec, or run the service where Slurm is")

    def submit(self, spec: JobSpec, job: JobDirectory) -> Submission:
        ranks = spec.ranks or self.ranks
        script = "periodic.sbatch" if spec.interval else "ingest.sbatch"
        arguments = [spec.source, spec.target, *([str(spec.interval)] if spec.interval else []),
                     *start_options(spec, job)]
        output = os.path.join(job.path.replace("%", "%%"), "slurm-%j.out")
        command = ["sbatch", "--parsable", *self.sbatch_options,
                   *([f"--ntasks={ranks}"] if ranks else []),
                   *([f"--time={math.ceil(spec.timeout_s / 60)}"] if spec.timeout_s else []),
                   f"--job-name=hpcingest-{spec.name}", f"--output={output}",
                   os.path.join(self.scripts_dir, script), *arguments]
        env = {**os.environ, "HPCINGEST_JOB_NAME": spec.name, "HPCINGEST_PYTHON": sys.executable}
        try:
            result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=job.path, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise LaunchError(f"sbatch could not be run: {err}") from None
        if result.returncode != 0:
            why = result.stderr.strip() or f"sbatch exit status {result.returncode}"
            raise LaunchError(f"Slurm refused the job: {why}")
        job_id = result.stdout.strip().split(";")[0]
        return Submission(job_name=spec.name, launcher=self.kind, submitted=time.time(), interval=spec.interval,
                          ranks=ranks, slurm_job_id=job_id, output=os.path.join(job.path, f"slurm-{job_id}.out"))

    @staticmethod
    def cancel(slurm_job_id: str) -> None:
        try:
            subprocess.run(["scancel", slurm_job_id], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise LaunchError(f"scancel could not be run: {err}") from None


class LocalLauncher:
    """Each job is ``mpiexec -n N hpcingest start ...`` on this host, in a process group of
    its own: it outlives the service, which finds it again by its pid after a restart."""

    kind = "mpiexec"

    def __init__(self, ranks: int | None = None) -> None:
        self.mpiexec = mpiexec_path()
        if not self.mpiexec:
            raise LaunchError("mpiexec not found: install hpcingest[mpich] or load your site's MPI")
        self.ranks = ranks or DEFAULT_LOCAL_RANKS

    def submit(self, spec: JobSpec, job: JobDirectory) -> Submission:
        ranks = spec.ranks or self.ranks
        command = [self.mpiexec, "-n", str(ranks), sys.executable, "-m", "hpcingest", "start", spec.source,
                   spec.target, f"--job_name={spec.name}", *([f"--interval={spec.interval}"] if spec.interval else []),
                   "--synchronous", *start_options(spec, job)]
        output = os.path.join(job.path, LOCAL_OUTPUT)
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
                                       cwd=job.path, start_new_session=True)
        except OSError as err:
            raise LaunchError(f"mpiexec could not be started: {err}") from None
        finally:
            os.close(fd)
        threading.Thread(target=process.wait, name=f"reap-{spec.name}", daemon=True).start()
        return Submission(job_name=spec.name, launcher=self.kind, submitted=time.time(), interval=spec.interval,
                          ranks=ranks, host=socket.gethostname(), pid=process.pid, output=output)

    @staticmethod
    def cancel(pid: int) -> None:
        """TERM to the run's process group: mpiexec and every rank (a rank stops as on `stop`)."""
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass


def local_run_alive(submission: Submission) -> bool | None:
    """Whether the local run of a submission still runs (None: it ran on another host)."""
    if submission.pid is None or submission.host != socket.gethostname():
        return None
    try:
        with open(f"/proc/{submission.pid}/cmdline", "rb") as f:
            command = f.read()
        with open(f"/proc/{submission.pid}/stat") as f:
            zombie = f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    # a pid reused by another program after a reboot is not the run
    return not zombie and f"--job_name={submission.job_name}".encode() in command


def choose_launcher(name: str | None) -> str:
    """The launcher asked for, or Slurm when sbatch is here and a controller answers."""
    if name:
        return name
    from hpcingest.serve.slurm import controller_answers

    return "slurm" if shutil.which("sbatch") and controller_answers() else "mpiexec"
