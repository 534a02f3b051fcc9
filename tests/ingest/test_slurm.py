"""The Slurm batch scripts in jobs/slurm, submitted with sbatch to the local one-node cluster.

Every test submits the shipped scripts as they are (the node has 2 CPUs); options given on
the sbatch command line stand for what a user would give.  Jobs are polled until Slurm says
they ended; a job Slurm can never start fails the test at once instead of pending forever.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time

import pytest

from hpcingest import sample
from tests.conftest import slurm
from tests.ingest.conftest import catalog, source_view
from tests.launchers import HANG_GUARD_S, hpcingest_argv

pytestmark = pytest.mark.skipif(not slurm(), reason="no local Slurm running (.ci/slurm-up.sh)")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROOT, "jobs", "slurm")
SIGNAL_TASK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slurm_task.py")
_NEVER_STARTS = ("PartitionConfig", "BadConstraints", "PartitionNodeLimit", "PartitionTimeLimit",
                 "ReqNodeNotAvail", "DependencyNeverSatisfied")


# -- helpers --------------------------------------------------------------------------------
def environment(zone, tmp_path, extra=None) -> dict:
    return {**os.environ, **zone.environ(), "HPCINGEST_PYTHON": sys.executable, "PYTHONPATH": ROOT,
            "HPCINGEST_HOME": str(tmp_path / "home"), **(extra or {})}


def submit(env, tmp_path, script, *args, options=()) -> str:
    """sbatch a script (its own #SBATCH defaults, ``options`` on top); the Slurm job id."""
    command = ["sbatch", "--parsable", f"--output={tmp_path}/slurm-%j.out", f"--chdir={ROOT}", *options,
               os.path.join(SCRIPTS, script), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(";")[0]


def show_job(job_id: str) -> dict[str, str]:
    from hpcingest.slurmchain import scontrol_fields

    result = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True)
    return scontrol_fields(result.stdout) if result.returncode == 0 else {}


def wait_for_state(job_id: str, wanted: tuple[str, ...]) -> dict[str, str]:
    """Poll the job until its state is one of ``wanted`` (a job Slurm cannot start fails the test)."""
    deadline = time.monotonic() + HANG_GUARD_S  # a hung job fails the test; not a performance limit
    while time.monotonic() < deadline:
        fields = show_job(job_id)
        assert fields, f"Slurm job {job_id} is gone"
        assert fields.get("Reason") not in _NEVER_STARTS, f"Slurm job {job_id} can never start: {fields['Reason']}"
        if fields.get("JobState") in wanted:
            return fields
        time.sleep(0.3)
    raise AssertionError(f"Slurm job {job_id} not in {wanted} after {HANG_GUARD_S} s")


def wait_for_end(job_id: str) -> dict[str, str]:
    return wait_for_state(job_id, ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"))


def output(tmp_path, job_id: str) -> str:
    path = tmp_path / f"slurm-{job_id}.out"
    return path.read_text() if path.exists() else ""


def queued(slurm_name: str) -> list[tuple[str, str]]:
    """(job id, state) of the jobs named ``slurm_name`` that Slurm has not finished."""
    out = subprocess.run(["squeue", "-h", "--name", slurm_name, "-o", "%i %T"], capture_output=True,
                         text=True).stdout
    return [tuple(line.split()) for line in out.splitlines() if line.strip()]


def hpcingest(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(hpcingest_argv(*args), capture_output=True, text=True, env=env, timeout=300)


def listing(env) -> dict:
    result = hpcingest(env, "list")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def chain_name():
    """A job name no other test run on this cluster uses; its chain is cancelled afterwards."""
    name = f"chain{os.getpid()}x{time.monotonic_ns() % 10**6}"
    yield name
    subprocess.run(["scancel", "--name", f"hpcingest-{name}"])


def small_tree(tmp_path, files=20):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for i in range(files):
        (src / "d" / f"f{i}").write_bytes(b"x" * i)
    return src


def signal_recording_python(tmp_path, extra=""):
    """HPCINGEST_PYTHON for the signal tests: `-m hpcingest start` runs a task that records the
    signals it gets (hpcingest's own TERM handling is tested with hpcingest); anything else
    runs the real python."""
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nif [ "$1 $2 $3" = "-m hpcingest start" ]; then\n'
                       f'    exec {sys.executable} {SIGNAL_TASK} {tmp_path}/ranks {extra}\nfi\n'
                       f'exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    (tmp_path / "ranks").mkdir()
    return str(wrapper)


def rank_records(tmp_path) -> dict[str, list[str]]:
    return {p.name: p.read_text().split() for p in sorted((tmp_path / "ranks").iterdir())}


# -- one-shot ------------------------------------------------------------------------------
def test_one_shot_batch_script(zone, target, tmp_path):
    src = small_tree(tmp_path)
    env = environment(zone, tmp_path, {"HPCINGEST_JOB_NAME": "batch1"})
    job_id = submit(env, tmp_path, "ingest.sbatch", str(src), target)
    end = wait_for_end(job_id)
    out = output(tmp_path, job_id)
    assert end["JobState"] == "COMPLETED", out
    assert "entries 21" in out and "failed 0" in out
    assert catalog(zone, target).objects == source_view(src).objects
    assert (tmp_path / "home" / "jobs" / "batch1" / "job.json").exists()


@pytest.mark.parametrize("script", ["ingest.sbatch", "periodic.sbatch"])
def test_scripts_start_as_shipped_on_a_two_cpu_node(zone, target, tmp_path, chain_name, script):
    """No --ntasks on the command line: the scripts' own default must fit the CI node."""
    src = small_tree(tmp_path, files=3)
    env = environment(zone, tmp_path, {"HPCINGEST_JOB_NAME": chain_name})
    args = [str(src), target] + (["3600"] if script == "periodic.sbatch" else [])
    job_id = submit(env, tmp_path, script, *args)
    end = wait_for_end(job_id)
    assert end["JobState"] == "COMPLETED", output(tmp_path, job_id)
    assert int(end["NumTasks"]) >= 2  # still a parallel run
    assert catalog(zone, target).objects == source_view(src).objects


def test_scrontab_line_in_the_header_keeps_the_sync_state(zone, target, tmp_path):
    """Run the header's scrontab entry twice the way scrontab does (a /bin/sh batch script of
    its command, with the #SCRON options): the second pass finds the first one's sync state."""
    header = open(os.path.join(SCRIPTS, "ingest.sbatch")).read()
    options = shlex.split(re.search(r"^#[ \t]+#SCRON (.*)$", header, re.M).group(1))
    command = re.search(r"^#[ \t]+(?:\S+[ \t]+){5}(.*ingest\.sbatch SRC DEST)$", header, re.M).group(1)
    src = small_tree(tmp_path, files=5)
    command = command.replace("/path/to/jobs/slurm", SCRIPTS).replace("SRC DEST", f"{src} {target}")
    entry = tmp_path / "scron-entry.sh"
    entry.write_text(f"#!/bin/sh\n# This job was submitted through scrontab\n{command}\n")
    options = [o for o in options if not o.startswith("--time")] + ["--time=5"]
    env = environment(zone, tmp_path)
    env.pop("HPCINGEST_JOB_NAME", None)
    outputs = []
    for _ in range(2):
        job_id = subprocess.run(["sbatch", "--parsable", f"--output={tmp_path}/slurm-%j.out", f"--chdir={ROOT}",
                                 *options, str(entry)], capture_output=True, text=True, env=env,
                                check=True).stdout.strip()
        assert wait_for_end(job_id)["JobState"] == "COMPLETED", output(tmp_path, job_id)
        outputs.append(output(tmp_path, job_id))
    assert "unchanged 0" in outputs[0]
    assert "unchanged 6" in outputs[1], outputs[1]  # 5 files and a directory, all from the sync state
    assert catalog(zone, target).objects == source_view(src).objects


# -- the periodic chain ----------------------------------------------------------------------
def test_periodic_chain_carries_the_job_shape_and_its_name(zone, target, tmp_path, chain_name):
    src = small_tree(tmp_path, files=3)
    env = environment(zone, tmp_path, {"HPCINGEST_JOB_NAME": chain_name})
    first = submit(env, tmp_path, "periodic.sbatch", str(src), target, "3600",
                   options=["--ntasks=1", "--cpus-per-task=2", "--time=00:07:00", "--mem=300M"])
    began = time.time()
    assert wait_for_end(first)["JobState"] == "COMPLETED", output(tmp_path, first)
    assert catalog(zone, target).objects == source_view(src).objects
    (successor, state), = queued(f"hpcingest-{chain_name}")
    assert state == "PENDING"
    shape = show_job(successor)
    assert (shape["NumTasks"], shape["CPUs/Task"], shape["TimeLimit"], shape["MinMemoryNode"]) == \
        ("1", "2", "00:07:00", "300M")
    assert shape["JobName"] == f"hpcingest-{chain_name}"
    assert shape["StdOut"] == f"{tmp_path}/slurm-{successor}.out"
    assert shape["Dependency"] in ("(null)", f"afterany:{first}(unfulfilled),singleton(unfulfilled)")
    assert show_job(first).get("JobName") == f"hpcingest-{chain_name}"  # the first pass was renamed too

    (periodic,) = listing(env)["periodic"]
    assert periodic["job_name"] == chain_name and periodic["status"] == "waiting"
    assert periodic["slurm_job_id"] == first and periodic["next_slurm_job_id"] == successor
    assert began + 3590 < periodic["next_run"] < time.time() + 3600

    stop = hpcingest(env, "stop", chain_name)
    assert stop.returncode == 0, stop.stderr
    assert f"Slurm job {successor}" in stop.stdout
    assert queued(f"hpcingest-{chain_name}") == []
    jobs = listing(env)
    assert jobs["periodic"] == [] and [j["job_name"] for j in jobs["stopped"]] == [chain_name]


def test_periodic_pass_cut_off_still_has_its_successor(slow_zone, tmp_path, chain_name):
    """The next pass is queued before this one starts, depends on it (no overlap), and
    finishes the pass that was killed."""
    zone, target = slow_zone, f"{slow_zone.home}/cut"
    src = tmp_path / "src"
    sample.generate(src, files=1500, seed=3, max_file_size=16)
    env = environment(zone, tmp_path, {"HPCINGEST_JOB_NAME": chain_name})
    first = submit(env, tmp_path, "periodic.sbatch", str(src), target, "2")
    deadline = time.monotonic() + HANG_GUARD_S
    while len(catalog(zone, target).objects) < 100 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert show_job(first)["JobState"] == "RUNNING", output(tmp_path, first)
    (successor, state), = [q for q in queued(f"hpcingest-{chain_name}") if q[0] != first]
    assert state == "PENDING" and show_job(successor)["Reason"] in ("Dependency", "BeginTime")
    subprocess.run(["scancel", "--signal=KILL", "--full", first], check=True)  # as the time limit would
    wait_for_end(first)
    assert len(catalog(zone, target).objects) < len(source_view(src).objects)
    assert wait_for_end(successor)["JobState"] == "COMPLETED", output(tmp_path, successor)
    # the successor finished the pass that was cut off (Slurm's cancel sends TERM first, so the
    # ranks stopped with a checkpoint) instead of starting a pass of its own: still pass 1
    record = json.loads((tmp_path / "home" / "jobs" / chain_name / "job.json").read_text())
    assert record["pass_number"] == 1 and record["status"] == "finished", output(tmp_path, successor)
    assert catalog(zone, target).objects == source_view(src).objects
    stop = hpcingest(env, "stop", chain_name)
    assert stop.returncode == 0, stop.stderr


def test_submitting_a_chain_again_takes_it_over(zone, target, tmp_path, chain_name):
    src = small_tree(tmp_path, files=2)
    env = environment(zone, tmp_path, {"HPCINGEST_JOB_NAME": chain_name})
    for _ in range(2):
        job_id = submit(env, tmp_path, "periodic.sbatch", str(src), target, "3600")
        assert wait_for_end(job_id)["JobState"] == "COMPLETED", output(tmp_path, job_id)
    (successor, state), = queued(f"hpcingest-{chain_name}")  # one chain, one queued pass
    assert state == "PENDING"
    assert listing(env)["periodic"][0]["next_slurm_job_id"] == successor


# -- signals and dead ranks --------------------------------------------------------------
@pytest.mark.parametrize("script", ["ingest.sbatch", "periodic.sbatch"])
def test_time_limit_warning_reaches_every_rank(zone, target, tmp_path, chain_name, script):
    """A one-minute limit with the warning 55 s before it: the script passes the TERM Slurm
    sends it on to every rank, waits for them to finish, and ends normally."""
    header = open(os.path.join(SCRIPTS, script)).read()
    assert re.search(r"^#SBATCH --signal=B:TERM@\d+$", header, re.M)
    env = environment(zone, tmp_path, {"HPCINGEST_JOB_NAME": chain_name,
                                       "HPCINGEST_PYTHON": signal_recording_python(tmp_path)})
    args = [str(tmp_path), target] + (["3600"] if script == "periodic.sbatch" else [])
    job_id = submit(env, tmp_path, script, *args, options=["--time=1", "--signal=B:TERM@55"])
    end = wait_for_end(job_id)
    records = rank_records(tmp_path)
    assert sorted(records) == ["rank0", "rank1"], output(tmp_path, job_id)
    for events in records.values():
        assert events == ["started", "TERM", "checkpointed"], (events, output(tmp_path, job_id))
    assert end["JobState"] == "COMPLETED" and end["ExitCode"] == "0:0", output(tmp_path, job_id)


def test_a_rank_that_dies_ends_the_step(zone, target, tmp_path, chain_name):
    env = environment(zone, tmp_path, {"HPCINGEST_JOB_NAME": chain_name,
                                       "HPCINGEST_PYTHON": signal_recording_python(tmp_path, "--die 1")})
    job_id = submit(env, tmp_path, "ingest.sbatch", str(tmp_path), target)
    end = wait_for_end(job_id)
    records = rank_records(tmp_path)
    assert records["rank1"] == ["started", "died"]
    assert "finished" not in records["rank0"], output(tmp_path, job_id)  # killed, not left waiting
    assert end["JobState"] == "FAILED"
