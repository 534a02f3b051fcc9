"""An upload that did not finish is never taken for an object that exists: a rank killed in the
middle of a PUT, a client that dropped its connection mid-write, a parallel put cut short by a
source that shrank.  The next pass (or the next attempt) uploads the file again, whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from irods.models import Collection, DataObject

from hpcingest.zone.testing import start_zone
from tests.ingest.conftest import HANDLERS, OLD_HANDLERS, start
from tests.ingest.test_put import read_object
from tests.ingest.test_register import ok
from tests.launchers import hpcingest_argv

BIG = 40 * 1024 * 1024  # past the 32 MiB single-buffer limit: PRC's parallel put


def replicas(zone, target: str, name: str) -> list[tuple[int, str]]:
    """(size, status) of each replica of ``target/name``."""
    with zone.session() as session:
        rows = session.query(DataObject.size, DataObject.replica_status).filter(
            Collection.name == target, DataObject.name == name)
        return [(int(row[DataObject.size]), row[DataObject.replica_status]) for row in rows]


def same_content(zone, path: str, data: bytes) -> bool:
    """The server's checksum of the object against the bytes (reading 40 MiB back through a
    zone that serves 100 ms per request would take minutes)."""
    from hpcingest.ingest.content import Digests

    with zone.session() as session:
        stored = session.data_objects.chksum(path)
    digests = Digests.like_stored(stored)
    digests.update(data)
    return digests.like(stored) == stored


def put_with(zone, src, target, jobs, operation, *extra, job="u"):
    return start(zone, src, target, "--event_handler", os.path.join(HANDLERS, "counting.py"), "--job_name", job,
                 *extra, launcher=None, job_dir=jobs, env={"OPERATION": operation, "HOOK_LOG": os.devnull})


_DROP_MID_WRITE = """
import os, sys
from irods.session import iRODSSession
from hpcingest.zone.clientenv import read_client_files
env, password = read_client_files(os.environ["IRODS_ENVIRONMENT_FILE"], os.environ["IRODS_AUTHENTICATION_FILE"])
session = iRODSSession(host=env.host, port=env.port, user=env.user, zone=env.zone, password=password)
handle = session.data_objects.open(sys.argv[1], "w")
handle.write(b"p" * int(sys.argv[2]))
handle.flush()
os._exit(0)  # the connection drops with the object open for writing
"""


@pytest.mark.parametrize("operation", ["PUT", "PUT_SYNC", "PUT_APPEND"])
def test_an_object_left_by_a_dropped_upload_is_uploaded_again(zone, target, tmp_path, operation):
    src = tmp_path / "src"
    src.mkdir()
    content = os.urandom(200_000)
    (src / "f").write_bytes(content)
    with zone.session() as session:
        session.collections.create(target)
    subprocess.run([sys.executable, "-c", _DROP_MID_WRITE, f"{target}/f", "70000"], check=True,
                   env={**os.environ, **zone.environ()}, timeout=120)
    [(size, status)] = replicas(zone, target, "f")
    assert status != "1", "the interrupted write left a good replica"
    out = ok(put_with(zone, src, target, tmp_path / "jobs", operation))
    assert "failed 0" in out and "existing left alone (PUT) 0" in out
    assert read_object(zone, f"{target}/f") == content
    assert replicas(zone, target, "f") == [(len(content), "1")]


def test_a_short_good_object_nothing_vouches_for_is_uploaded_again_by_put(zone, target, tmp_path):
    """A good replica shorter than the source, which no earlier pass of the job recorded (a
    transfer cut short and closed): PUT finishes it instead of leaving it alone.  Once the job
    has synced the file, a later change of size is the source's own, which PUT leaves alone."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"complete content")
    with zone.session() as session:
        session.collections.create(target)
        with session.data_objects.open(f"{target}/f", "w") as f:
            f.write(b"compl")
    jobs = tmp_path / "jobs"
    ok(put_with(zone, src, target, jobs, "PUT"))
    assert read_object(zone, f"{target}/f") == b"complete content"
    time.sleep(1.1)
    (src / "f").write_bytes(b"changed later, longer")
    out = ok(put_with(zone, src, target, jobs, "PUT"))
    assert "existing left alone (PUT) 1" in out
    assert read_object(zone, f"{target}/f") == b"complete content"


@pytest.fixture
def slow_zone(tmp_path):
    """Every request holds its connection 100 ms, so a 40 MiB parallel put lasts about a second."""
    zone = start_zone(tmp_path / "zone", subprocess_mode=True, service_ms=100.0)
    yield zone
    zone.stop()


def wait_for_a_write(zone, target: str, process: subprocess.Popen, limit: float = 300) -> str:
    """The name of the first object of ``target`` that is open for writing (intermediate)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        with zone.session() as session:
            rows = list(session.query(DataObject.name, DataObject.replica_status).filter(Collection.name == target))
        writing = [row[DataObject.name] for row in rows if row[DataObject.replica_status] == "2"]
        if writing:
            return writing[0]
        time.sleep(0.02)
    raise AssertionError(f"no upload was seen in progress (exit status {process.poll()})")


def start_put(zone, src, target: str, jobs, job: str) -> tuple[list[str], subprocess.Popen]:
    """A one-process PUT job in the background; its command, to run it again."""
    command = hpcingest_argv("start", str(src), target, "--event_handler", os.path.join(OLD_HANDLERS, "put.py"),
                             "--job_name", job, "--job_dir", str(jobs), "--synchronous")
    return command, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={**os.environ, **zone.environ()})


def test_kill_9_during_a_put_then_the_rerun_finishes_it(slow_zone, tmp_path):
    zone, target, jobs = slow_zone, f"{slow_zone.home}/killed", tmp_path / "jobs"
    src = tmp_path / "src"
    src.mkdir()
    contents = {f"big{i}": os.urandom(1024) * (BIG // 1024) for i in range(3)}
    for name, data in contents.items():
        (src / name).write_bytes(data)
    command, job = start_put(zone, src, target, jobs, "k")
    try:
        wait_for_a_write(zone, target, job)
        job.send_signal(signal.SIGKILL)
    finally:
        job.communicate(timeout=600)
    assert any(status != "1" for name in contents for _, status in replicas(zone, target, name))
    result = subprocess.run(command, capture_output=True, env={**os.environ, **zone.environ()}, timeout=600)
    out = ok(result)
    assert "failed 0" in out and "existing left alone (PUT) 0" in out
    for name, data in contents.items():
        assert replicas(zone, target, name) == [(BIG, "1")]
        assert same_content(zone, f"{target}/{name}", data)


def test_a_put_cut_short_in_a_running_job_leaves_nothing_behind(slow_zone, tmp_path):
    """The source shrinks while PRC's parallel put reads it: the put fails, and the object it
    had made is removed, so the next pass uploads the file (it used to leave a good-looking
    partial object that every later PUT accepted)."""
    zone, target, jobs = slow_zone, f"{slow_zone.home}/cut", tmp_path / "jobs"
    src = tmp_path / "src"
    src.mkdir()
    (src / "big").write_bytes(os.urandom(1024) * (BIG // 1024))
    command, job = start_put(zone, src, target, jobs, "c")
    try:
        wait_for_a_write(zone, target, job)
        os.truncate(src / "big", 1024)
    finally:
        out, err = job.communicate(timeout=600)
    assert job.returncode == 1, err.decode(errors="replace") + out.decode()
    assert b"failed 1" in out
    assert replicas(zone, target, "big") == []
    [failure] = [json.loads(line) for line in (jobs / "c" / "failures.jsonl").read_text().splitlines()]
    assert failure["error"] == "SOURCE_CHANGED" and "shrank" in failure["message"]
    ok(subprocess.run(command, capture_output=True, env={**os.environ, **zone.environ()}, timeout=600))
    assert read_object(zone, f"{target}/big") == (src / "big").read_bytes()
