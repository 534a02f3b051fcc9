"""Periodic passes as a chain of Slurm batch jobs (jobs/slurm/periodic.sbatch).

Each pass is one batch job.  Before its pass starts, the job queues the next one
(``python -m hpcingest.slurmchain next``):

* with the resources this job really holds, read from Slurm (``scontrol show job``), so what
  was given on the sbatch command line carries over to every later pass;
* named ``hpcingest-<job name>`` (this job is renamed too), so each chain has its own name;
* with ``--begin`` INTERVAL seconds after this pass began and ``--dependency=afterany:<this
  job>,singleton``: a pass cut off at the time limit still has its successor, and two passes
  of one chain never run at once.

The chain lives in ``<job_dir>/<job>/slurm.json`` (:class:`Chain`): the Slurm job of the
current pass, the queued next one and when it begins.  `hpcingest list` shows it under
"periodic" and `hpcingest stop` ends it.  Only the queued job the record names runs a pass,
so the chain never multiplies: a fresh ``sbatch periodic.sbatch`` of the same job takes the
chain over (the pass that was queued is cancelled), and a job the record no longer names
exits without running.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass

from hpcingest.jobdir import JobDirectory, JobError, check_job_name, job_root, read_record, write_record
from hpcingest.joblock import JobLock

PREVIOUS_VARIABLE = "HPCINGEST_CHAIN_PREVIOUS"  # set in the environment of a pass the chain queued
RUN, SKIP, REFUSED = 0, 3, 4  # exit codes of `next`: run the pass / not this chain's pass / another runs
_QUEUED_STATES = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING")
_FIELD = re.compile(r"(?:^|\s)([A-Za-z][\w/:.]*)=")
_UNSET = ("", "(null)", "N/A", "None", "NONE")


class ChainError(RuntimeError):
    """A Slurm command failed; the message says which and why."""


@dataclass
class Chain:
    """What a periodic job's chain of Slurm jobs needs for `list` and `stop` (slurm.json)."""

    interval: int
    slurm_job_id: str  # the job of the current (or last) pass
    next_slurm_job_id: str | None = None  # the queued next pass
    next_run: float | None = None  # when it begins (epoch seconds), or as soon as the current one ends
    stopped: bool = False  # `hpcingest stop` ended the chain
    slurm_job_name: str = ""


def chain_path(job: JobDirectory) -> str:
    return os.path.join(job.path, "slurm.json")


def load_chain(job: JobDirectory) -> Chain | None:
    return read_record(chain_path(job), Chain, "chain")


def save_chain(job: JobDirectory, chain: Chain) -> None:
    write_record(chain_path(job), chain)


@contextlib.contextmanager
def chain_lock(job: JobDirectory):
    """Serializes the chain's read-change-write between a starting pass and `stop`, which
    run on different nodes: a stop landing as a pass starts was otherwise overwritten by the
    pass's record, and the chain went on.  The job lock's kinds (hpcingest.joblock): flock,
    or where the shared filesystem has none (Lustre without ``-o flock``, or with
    ``localflock`` and ``HPCINGEST_JOB_LOCK=file``) an O_EXCL lock file, waited for."""
    lock = JobLock(job.path, job.name, name="slurm.lock")
    lock.wait()
    try:
        yield
    finally:
        lock.release()


def slurm_job_name(job_name: str) -> str:
    return f"hpcingest-{job_name}"


# -- the running job's shape ------------------------------------------------------------
def scontrol_fields(text: str) -> dict[str, str]:
    """``scontrol show job -o`` output as a dict (values may hold spaces, e.g. paths)."""
    matches = list(_FIELD.finditer(text))
    return {m.group(1): text[m.end():(following.start() if following else len(text))].strip()
            for m, following in zip(matches, [*matches[1:], None])}


def successor_options(fields: dict[str, str], job_id: str) -> list[str]:
    """sbatch options that ask for what the job of ``fields`` holds: tasks, nodes, CPUs per
    task, partition, account, QOS, time limit, memory, constraints, GRES, reservation,
    licenses, exclusivity, working directory and output files (their job id made ``%j``)."""
    options: list[str] = []

    def given(key: str) -> str | None:
        value = fields.get(key, "")
        return None if value in _UNSET else value

    for key, flag in (("NumTasks", "--ntasks"), ("NumNodes", "--nodes"), ("CPUs/Task", "--cpus-per-task"),
                      ("Partition", "--partition"), ("Account", "--account"), ("QOS", "--qos"),
                      ("Features", "--constraint"), ("Reservation", "--reservation"),
                      ("Licenses", "--licenses"), ("WorkDir", "--chdir")):
        if given(key):
            options.append(f"{flag}={given(key)}")
    per_node = (given("NtasksPerN:B:S:C") or "0").split(":")[0]
    if per_node.isdigit() and int(per_node) > 0:
        options.append(f"--ntasks-per-node={per_node}")
    limit = given("TimeLimit")
    if limit and limit not in ("UNLIMITED", "Partition_Limit", "NOT_SET", "INVALID"):
        options.append(f"--time={limit}")
    for key, flag in (("MinMemoryNode", "--mem"), ("MinMemoryCPU", "--mem-per-cpu")):
        if given(key) and given(key) != "0":
            options.append(f"{flag}={given(key)}")
    gres = given("TresPerNode")
    if gres:
        options.append("--gres=" + ",".join(re.sub(r"^gres[:/]", "", g) for g in gres.split(",")))
    exclusive = {"NO": "--exclusive", "USER": "--exclusive=user", "MCS": "--exclusive=mcs"}.get(
        given("OverSubscribe") or "")
    if exclusive:
        options.append(exclusive)
    out, err = given("StdOut"), given("StdErr")
    if out:
        options.append(f"--output={_as_pattern(out, job_id)}")
    if err and err != out:
        options.append(f"--error={_as_pattern(err, job_id)}")
    return options


def _as_pattern(path: str, job_id: str) -> str:
    """An output file of this job as the pattern it came from: the job id in its name becomes
    %j (in the directories it is taken as written: Slurm creates no directory for %j)."""
    directory, name = os.path.split(path.replace("%", "%%"))
    return os.path.join(directory, re.sub(rf"(?<!\d){re.escape(job_id)}(?!\d)", "%j", name))


# -- Slurm commands -----------------------------------------------------------------------
def slurm(*argv: str) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ChainError(f"{argv[0]}: {err}") from None
    if result.returncode != 0:
        raise ChainError(f"{' '.join(argv[:2])}: {result.stderr.strip() or f'exit status {result.returncode}'}")
    return result.stdout.strip()


def job_state(job_id: str | None) -> str | None:
    """The Slurm state of a job (PENDING, RUNNING, ...), None when Slurm no longer knows it,
    "unknown" when Slurm cannot be asked from here."""
    if not job_id:
        return None
    try:
        return slurm("squeue", "-h", "-j", job_id, "-o", "%T").split("\n")[0] or None
    except ChainError as err:
        return None if "Invalid job id" in str(err) else "unknown"


def queued(job_id: str | None) -> bool:
    state = job_state(job_id)
    return state == "unknown" or state in _QUEUED_STATES


def cancel(job_id: str) -> None:
    slurm("scancel", job_id)


# -- a pass begins ----------------------------------------------------------------------
@dataclass
class PassRequest:
    """What `next` is told by the periodic script: who runs, and how to run the next pass."""

    job: JobDirectory
    slurm_job_id: str
    interval: int
    began: float
    script: list[str]  # the batch script and its arguments, for the next pass
    previous: str | None  # the job that queued this one (None: submitted by hand)


def begin_pass(request: PassRequest, out=sys.stdout) -> int:
    """Whether this job runs its pass (RUN, SKIP, REFUSED); queues the next pass first."""
    job, me = request.job, request.slurm_job_id
    job.create()
    with chain_lock(job):
        chain = load_chain(job)
        if request.previous is not None and (chain is None or chain.stopped or chain.next_slurm_job_id != me):
            print(f"hpcingest: Slurm job {me} is no longer the next pass of job {job.name} "
                  f"({'the chain was stopped' if chain is not None and chain.stopped else 'it was replaced'});"
                  " not running", file=out)
            return SKIP
        if request.previous is None and chain is not None and chain.slurm_job_id != me and \
                job_state(chain.slurm_job_id) in ("RUNNING", "COMPLETING", "SUSPENDED"):
            print(f"hpcingest: job {job.name} already runs a pass as Slurm job {chain.slurm_job_id}; "
                  f"not starting another (`hpcingest stop {job.name}` ends that chain)", file=sys.stderr)
            return REFUSED
        if request.previous is None and chain is not None and chain.next_slurm_job_id not in (None, me) \
                and queued(chain.next_slurm_job_id):
            cancel(chain.next_slurm_job_id)  # this submission takes the chain over
            print(f"hpcingest: took over job {job.name}'s chain: cancelled its queued "
                  f"Slurm job {chain.next_slurm_job_id}", file=out)
        name = slurm_job_name(job.name)
        try:
            slurm("scontrol", "update", f"JobId={me}", f"JobName={name}")
        except ChainError as err:
            print(f"hpcingest: warning: cannot rename Slurm job {me} to {name}: {err}", file=sys.stderr)
        next_run = request.began + request.interval
        delay = max(0, round(next_run - time.time()))
        shape = successor_options(scontrol_fields(slurm("scontrol", "show", "job", "-o", me)), me)
        submitted = slurm("sbatch", "--parsable", f"--job-name={name}", f"--dependency=afterany:{me},singleton",
                          f"--begin=now+{delay}", f"--export=ALL,{PREVIOUS_VARIABLE}={me}", *shape,
                          *request.script)
        successor = submitted.split(";")[0]
        save_chain(job, Chain(request.interval, me, successor, next_run, False, name))
    print(f"hpcingest: next pass of job {job.name} queued as Slurm job {successor}, to begin at "
          f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(next_run))} (or when this one ends)", file=out)
    return RUN


def stop_chain(job: JobDirectory) -> str | None:
    """Ends the chain of a periodic job: no pass is queued any more.  Returns the Slurm job
    that was cancelled (None when the job has no chain, or it had ended)."""
    if load_chain(job) is None:
        return None
    with chain_lock(job):
        chain = load_chain(job)
        if chain is None or chain.stopped:
            return None
        chain.stopped = True
        save_chain(job, chain)
        successor = chain.next_slurm_job_id
    if successor and queued(successor):
        cancel(successor)
        return successor
    return None


def active_chain(job: JobDirectory) -> Chain | None:
    """The job's chain while it goes on: not stopped, its next pass still queued."""
    try:
        chain = load_chain(job)
    except JobError:
        return None
    if chain is None or chain.stopped or not queued(chain.next_slurm_job_id):
        return None
    return chain


# -- the command the periodic script runs --------------------------------------------------
def _request(argv: list[str]) -> PassRequest:
    parser = argparse.ArgumentParser(
        prog="python -m hpcingest.slurmchain next",
        description="Queue the next pass of a periodic job (run by jobs/slurm/periodic.sbatch).")
    parser.add_argument("job", metavar="JOB", help="the hpcingest job name")
    parser.add_argument("--began", type=float, required=True, help="when this pass began (epoch seconds)")
    parser.usage = "%(prog)s JOB --began SECONDS -- SCRIPT SRC DEST INTERVAL [start options]"
    cut = argv.index("--") if "--" in argv else len(argv)
    args, script = parser.parse_args(argv[:cut]), argv[cut + 1:]
    if len(script) < 4 or not script[3].isdigit() or int(script[3]) < 1:
        parser.error("expected -- SCRIPT SRC DEST INTERVAL [start options] with INTERVAL in whole seconds")
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--job_dir")
    job_dir = job_root(options.parse_known_args(script[4:])[0].job_dir)
    slurm_job_id = os.environ.get("SLURM_JOB_ID", "")
    if not slurm_job_id:
        parser.error("not inside a Slurm job (SLURM_JOB_ID is not set)")
    return PassRequest(JobDirectory(job_dir, check_job_name(args.job)), slurm_job_id, int(script[3]), args.began,
                       script, os.environ.get(PREVIOUS_VARIABLE) or None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] != ["next"]:
        print("usage: python -m hpcingest.slurmchain next JOB --began SECONDS -- SCRIPT SRC DEST INTERVAL "
              "[start options]", file=sys.stderr)
        return 2
    try:
        return begin_pass(_request(argv[1:]))
    except (ChainError, JobError, OSError) as err:
        print(f"hpcingest: error: cannot queue the next pass: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
