"""Job control against job directories the running user does not own or that others can write."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess

import pytest

from tests.launchers import hpcingest_argv

NOBODY = pwd.getpwnam("nobody").pw_uid

# at import, before anything it defines could be called: what a planted handler would do
MARKING_HANDLER = """\
import os
open(os.environ["MARKER"], "a").write("ran as uid %d\\n" % os.getuid())
from irods_capability_automated_ingest.core import Core


class event_handler(Core):
    pass
"""

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give files to another user")


def hpcingest(zone, *args, env=None):
    return subprocess.run(hpcingest_argv(*args), capture_output=True, timeout=300,
                          env={**os.environ, **zone.environ(), **(env or {})})


def chown_tree(path, uid):
    for top, dirs, files in os.walk(path):
        for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
            os.lchown(name, uid, -1)


@pytest.fixture
def planted(zone, world_dir, tmp_path):
    """A real job in a shared job root (1777, like /tmp), then handed with its handler to nobody:
    what another user could leave there for root to resume."""
    jobs = os.path.join(world_dir, "jobs")
    os.mkdir(jobs)
    os.chmod(jobs, 0o1777)
    src = os.path.join(world_dir, "src")
    os.mkdir(src)
    open(os.path.join(src, "f"), "w").close()
    handler = os.path.join(world_dir, "handler.py")
    with open(handler, "w") as f:
        f.write(MARKING_HANDLER)
    marker = str(tmp_path / "marker")
    target = f"{zone.home}/planted{os.getpid()}"
    result = hpcingest(zone, "start", src, target, "--job_dir", jobs, "--job_name", "j", "--event_handler", handler,
                       env={"MARKER": marker})
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    os.unlink(marker)
    return jobs, os.path.join(jobs, "j"), handler, marker, src, target


@root_only
@pytest.mark.parametrize("command", ["resume", "start", "stop", "profile"])
def test_a_job_directory_of_another_user_is_refused(zone, planted, command):
    jobs, job, handler, marker, src, target = planted
    chown_tree(job, NOBODY)
    os.lchown(handler, NOBODY, -1)
    args = ["start", src, target, "--event_handler", handler] if command == "start" else [command]
    result = hpcingest(zone, *args, *(["j"] if command != "start" else ["--job_name", "j"]), "--job_dir", jobs,
                       env={"MARKER": marker})
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 2, stderr
    assert f"job directory {job} belongs to nobody, not to you (root)" in stderr and "Traceback" not in stderr
    assert not os.path.exists(marker)  # nobody's handler never ran as root
    assert json.load(open(os.path.join(job, "job.json")))["status"] == "finished"  # and nothing was changed


@root_only
def test_the_handler_a_job_record_names_must_be_yours(zone, planted):
    jobs, job, handler, marker, _, _ = planted
    os.lchown(handler, NOBODY, -1)
    result = hpcingest(zone, "resume", "j", "--job_dir", jobs, env={"MARKER": marker})
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 2 and f"event handler {handler} belongs to nobody" in stderr, stderr
    assert not os.path.exists(marker)


@pytest.mark.parametrize("what", ["job", "job.json", "state", "jobs"])
def test_job_files_others_can_write_are_refused(zone, planted, what):
    jobs, job, handler, marker, _, _ = planted
    path = {"job": job, "job.json": os.path.join(job, "job.json"), "state": os.path.join(job, "state"),
            "jobs": jobs}[what]
    os.chmod(path, 0o777 if what == "jobs" else 0o720)  # the job root: writable by all without the sticky bit
    result = hpcingest(zone, "resume", "j", "--job_dir", jobs, env={"MARKER": marker})
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 2 and f"{path} can be written by other users" in stderr, stderr
    assert not os.path.exists(marker)


@root_only
def test_report_and_watch_show_another_users_job_read_only(zone, planted):
    jobs, job, _, _, _, _ = planted
    chown_tree(job, NOBODY)
    for command in ("report", "watch"):
        result = hpcingest(zone, command, "j", "--job_dir", jobs)
        assert result.returncode == 0, result.stderr
        assert b"belongs to nobody; showing it read-only" in result.stderr
    assert {os.stat(os.path.join(top, n)).st_uid for top, _, names in os.walk(job) for n in names} == {NOBODY}
    shutil.rmtree(job)
