"""The job lock: exclusive while held, released by the kernel when its holder dies, and the
O_EXCL lock file (where flock is missing) broken only when provably stale."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hpcingest.joblock import STALE_AFTER_S, JobLock, JobLocked, LockOwner

HOLD = """
import sys, time
from hpcingest.joblock import JobLock
JobLock(sys.argv[1], "j", sys.argv[2]).acquire()
print("held", flush=True)
time.sleep(600)
"""


def hold_in_child(job_path, mode):
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(job_path), mode], stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"held\n"
    return child


@pytest.mark.parametrize("mode", ["flock", "file"])
def test_a_held_lock_refuses_others_until_its_holder_is_killed(tmp_path, mode):
    job = tmp_path / "j"
    job.mkdir(mode=0o700)
    child = hold_in_child(job, mode)
    try:
        with pytest.raises(JobLocked, match=f"already running \\(pid {child.pid} on "):
            JobLock(str(job), "j", mode).acquire()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    lock = JobLock(str(job), "j", mode)
    lock.acquire()  # at once: the kernel dropped the flock; the lock file's process is gone
    with pytest.raises(JobLocked):
        JobLock(str(job), "j", mode).acquire()
    lock.release()
    JobLock(str(job), "j", mode).acquire()


def test_a_lock_file_from_another_host_is_broken_only_once_it_is_stale(tmp_path):
    job = tmp_path / "j"
    job.mkdir(mode=0o700)
    owner = LockOwner("other-node", 12345, "999", time.time(), "token")
    path = job / "lock.owner"
    path.write_text(json.dumps(owner.__dict__))
    with pytest.raises(JobLocked, match="pid 12345 on other-node"):
        JobLock(str(job), "j", "file").acquire()
    old = time.time() - STALE_AFTER_S - 5
    os.utime(path, (old, old))
    lock = JobLock(str(job), "j", "file")
    lock.acquire()
    assert LockOwner.parse(path.read_text()) == lock.owner
    assert not [name for name in os.listdir(job) if ".stale." in name]


def test_a_lock_file_of_a_reused_pid_is_stale(tmp_path):
    """Same host, the pid alive but started at another time: another process now."""
    job = tmp_path / "j"
    job.mkdir(mode=0o700)
    (job / "lock.owner").write_text(json.dumps(LockOwner(os.uname().nodename, os.getpid(), "1", 0.0, "t").__dict__))
    JobLock(str(job), "j", "file").acquire()


def test_a_lock_file_being_written_is_not_taken_for_stale(tmp_path):
    job = tmp_path / "j"
    job.mkdir(mode=0o700)
    (job / "lock.owner").write_text("")  # a racer created it and has not written it yet
    with pytest.raises(JobLocked):
        JobLock(str(job), "j", "file").acquire()
