"""What the next pass of a periodic Slurm chain asks for, from `scontrol show job -o` of the running one;
and the lock that serializes a pass's start and `stop` on the chain's record.

The chain itself runs on the local Slurm in tests/ingest/test_slurm.py; these lines are as
Slurm 22.05 prints them, with the values a cluster job has and the local node lacks.
"""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
import threading

import pytest

from hpcingest.jobdir import JobDirectory
from hpcingest.slurmchain import chain_lock, scontrol_fields, successor_options

CLUSTER_JOB = (
    "JobId=4242 JobName=hpcingest-proj UserId=alice(1000) GroupId=alice(1000) MCS_label=N/A Priority=1 Nice=0 "
    "Account=proj01 QOS=normal JobState=RUNNING Reason=None Dependency=(null) Requeue=1 Restarts=0 "
    "TimeLimit=1-02:00:00 TimeMin=N/A Partition=compute AllocNode:Sid=login1:77 NodeList=n[01-04] "
    "NumNodes=4 NumCPUs=256 NumTasks=64 CPUs/Task=4 ReqB:S:C:T=0:0:*:* TRES=cpu=256,mem=64G,node=4 "
    "Socks/Node=* NtasksPerN:B:S:C=16:0:*:* CoreSpec=* MinCPUsNode=64 MinMemoryCPU=1G MinTmpDiskNode=0 "
    "Features=lustre&ib DelayBoot=00:00:00 OverSubscribe=NO Contiguous=0 Licenses=(null) Network=(null) "
    "Command=/home/alice/my jobs/periodic.sbatch WorkDir=/home/alice/my jobs "
    "StdErr=/home/alice/my jobs/ingest-4242.err StdIn=/dev/null StdOut=/home/alice/my jobs/ingest-4242.out "
    "TresPerNode=gres:gpu:2 Power=")


def test_the_next_pass_asks_for_what_the_running_job_holds():
    fields = scontrol_fields(CLUSTER_JOB)
    assert fields["WorkDir"] == "/home/alice/my jobs" and fields["TRES"] == "cpu=256,mem=64G,node=4"
    assert successor_options(fields, "4242") == [
        "--ntasks=64", "--nodes=4", "--cpus-per-task=4", "--partition=compute", "--account=proj01",
        "--qos=normal", "--constraint=lustre&ib", "--chdir=/home/alice/my jobs", "--ntasks-per-node=16",
        "--time=1-02:00:00", "--mem-per-cpu=1G", "--gres=gpu:2", "--exclusive",
        "--output=/home/alice/my jobs/ingest-%j.out", "--error=/home/alice/my jobs/ingest-%j.err"]


def test_what_the_job_did_not_ask_for_is_left_to_the_defaults():
    fields = scontrol_fields(
        "JobId=7 JobName=x Account=(null) QOS=(null) TimeLimit=UNLIMITED Partition=debug NumNodes=1 NumTasks=2 "
        "CPUs/Task=1 NtasksPerN:B:S:C=0:0:*:* MinMemoryNode=0 Features=(null) OverSubscribe=OK "
        "WorkDir=/tmp StdErr=/tmp/slurm-7.out StdOut=/tmp/slurm-7.out")
    assert successor_options(fields, "7") == ["--ntasks=2", "--nodes=1", "--cpus-per-task=1", "--partition=debug",
                                              "--chdir=/tmp", "--output=/tmp/slurm-%j.out"]


def test_an_output_path_keeps_its_other_digits_and_percent_signs():
    fields = scontrol_fields("JobId=12 StdOut=/data/run12x/100%-12.out StdErr=/data/run12x/100%-12.out")
    assert successor_options(fields, "12") == ["--output=/data/run12x/100%%-%j.out"]


HOLD_CHAIN = """
import errno, fcntl, sys
if sys.argv[3] == "no flock":
    def no_flock(fd, operation):
        raise OSError(errno.ENOSYS, "Function not implemented")  # a Lustre client mounted without flock
    fcntl.flock = no_flock
from hpcingest.jobdir import JobDirectory
from hpcingest.slurmchain import chain_lock
with chain_lock(JobDirectory(sys.argv[1], sys.argv[2])):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.mark.parametrize("filesystem", ["no flock", "HPCINGEST_JOB_LOCK=file"])
def test_a_stop_waits_for_a_starting_pass_where_the_filesystem_has_no_flock(tmp_path, monkeypatch, filesystem):
    """The chain's record is read, changed and written by the starting pass (on a compute node)
    and by `stop` (on a login node).  Where flock fails (Lustre without ``-o flock``) the lock
    went unlocked, and a stop landing as a pass started was overwritten by the pass's record:
    the chain went on.  Now the job lock's O_EXCL lock file stands in, and the other side waits."""
    job = JobDirectory(str(tmp_path), "chained")
    job.create()
    if filesystem == "no flock":
        def no_flock(fd, operation):
            raise OSError(errno.ENOSYS, "Function not implemented")
        monkeypatch.setattr(fcntl, "flock", no_flock)
    else:
        monkeypatch.setenv("HPCINGEST_JOB_LOCK", "file")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_CHAIN, str(tmp_path), "chained", filesystem],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ))
    try:
        assert holder.stdout.readline() == b"held\n"
        assert os.path.exists(os.path.join(job.path, "slurm.lock.owner"))
        entered = threading.Event()

        def stop_side() -> None:
            with chain_lock(job):
                entered.set()

        waiter = threading.Thread(target=stop_side)
        waiter.start()
        assert not entered.wait(1.0), "entered the chain's critical section while another process held it"
        holder.stdin.close()
        assert holder.wait() == 0
        waiter.join()
        assert entered.is_set()
        assert not os.path.exists(os.path.join(job.path, "slurm.lock.owner"))  # released after
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
