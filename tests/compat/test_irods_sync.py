"""`python -m irods_capability_automated_ingest.irods_sync`: old command lines run hpcingest.

Each test runs the old module exactly as a cron line or wrapper script would, against the zone,
and checks what such a script relies on: the job ran (all of it), `list` prints the old fields
in the old formats, and the exit status is the old one.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys

from hpcingest.sample import generate
from tests.ingest.conftest import HANDLERS, catalog, source_view
from tests.launchers import Launcher, hpcingest_argv, run

OLD = [sys.executable, "-m", "irods_capability_automated_ingest.irods_sync"]
OLD_ONLY = ["--redis_host", "localhost", "--redis_port", "6379", "--redis_db", "0", "--file_queue", "file",
            "--path_queue", "path", "--restart_queue", "restart", "--log_interval", "1"]


def old(zone, *args, launcher=None):
    return run(launcher, [*OLD, *args], env=zone.environ())


def test_an_old_cron_line_runs_the_job_as_one_process(zone, tmp_path):
    tree = generate(str(tmp_path / "tree"), files=120, seed=3, max_file_size=64)
    target, jobs = f"{zone.home}/old_cron{os.getpid()}", str(tmp_path / "jobs")
    result = old(zone, "start", os.fsdecode(tree.root), target, "--synchronous", "--job_name", "nightly",
                 "--job_dir", jobs, "--files_per_task", "10", *OLD_ONLY)
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, err
    assert "with 1 rank(s)" in out
    view = source_view(tree.root)
    assert catalog(zone, target).objects == view.objects
    entries = len(view.objects) + len(view.collections) - 1  # the root is the target, not an entry
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 2  # one line per kind of ignored option, each naming them
    assert "--redis_host, --redis_port, --redis_db, --file_queue, --path_queue, --restart_queue" in warnings[0]
    assert "--log_interval has no effect without --log_when" in warnings[1]

    listed = old(zone, "list", "--job_dir", jobs, "--redis_host", "localhost")
    assert listed.returncode == 0 and b"--redis_host" in listed.stderr
    (job,) = json.loads(listed.stdout)["singlepass"]
    assert job["job_name"] == "nightly" and job["files"] == entries
    # a task is a stat batch of up to --files_per_task entries
    assert job["total_tasks"] >= entries // 10 and job["remaining_tasks"] == 0
    assert job["failed_tasks"] == 0 and job["retried_tasks"] == 0
    assert re.fullmatch(r"\d+:\d\d:\d\d(\.\d{6})?", job["elapsed_time"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", job["start_time"])
    started = datetime.datetime.fromisoformat(job["start_time"]).timestamp()
    assert abs(started - job["start_epoch_s"]) < 0.001 and job["elapsed_s"] > 0


def test_under_a_launcher_every_rank_works(zone, tmp_path):
    tree = generate(str(tmp_path / "tree"), files=200, seed=5, max_file_size=64)
    target = f"{zone.home}/old_mpi{os.getpid()}"
    result = old(zone, "start", os.fsdecode(tree.root), target, "--synchronous", "--job_dir",
                 str(tmp_path / "jobs"), launcher=Launcher("mpiexec", 2))
    assert result.returncode == 0, result.stderr.decode()
    assert "with 2 rank(s)" in result.stdout.decode()
    assert catalog(zone, target).objects == source_view(tree.root).objects


def test_failures_exit_255_as_the_old_tool_did(zone, tmp_path):
    tree = generate(str(tmp_path / "tree"), files=6, seed=7, max_file_size=16)
    jobs = str(tmp_path / "jobs")
    common = ["--synchronous", "--job_dir", jobs, "--event_handler", os.path.join(HANDLERS, "failing.py")]
    result = old(zone, "start", os.fsdecode(tree.root), f"{zone.home}/old_fail{os.getpid()}", "--job_name", "f",
                 *common)
    assert result.returncode == 255, result.stderr.decode()
    assert old(zone, "watch", "f", "--job_dir", jobs).returncode == 255
    (job,) = json.loads(old(zone, "list", "--job_dir", jobs).stdout)["singlepass"]
    assert 1 <= job["failed_tasks"] <= job["total_tasks"] and job["failures"] == len(source_view(tree.root).objects)
    native = run(None, hpcingest_argv("start", os.fsdecode(tree.root), f"{zone.home}/new_fail{os.getpid()}",
                                      *common), env=zone.environ())
    assert native.returncode == 1  # hpcingest's own status for "the job had failures"
    usage = old(zone, "start")
    assert usage.returncode == 2 and b"usage: python -m irods_capability_automated_ingest.irods_sync" in usage.stderr


def test_a_target_the_old_framework_filled_is_not_duplicated(zone, tmp_path):
    """The old framework's Redis sync times are not imported: the first hpcingest run finds the
    objects in the catalog (one query per batch) and registers nothing again."""
    tree = generate(str(tmp_path / "tree"), files=40, seed=9, max_file_size=64)
    target = f"{zone.home}/old_filled{os.getpid()}"
    view = source_view(tree.root)
    with zone.session() as session:  # what the old framework's REGISTER_SYNC did, one call per file
        for relpath in sorted(view.collections):
            session.collections.create(f"{target}/{relpath}".rstrip("/"))
        for relpath, (size, mtime, physical, _) in view.objects.items():
            session.data_objects.register(physical, f"{target}/{relpath}", dataSize=str(size),
                                          dataModify=str(mtime))
    before = catalog(zone, target)
    result = old(zone, "start", os.fsdecode(tree.root), target, "--synchronous", "--job_dir", str(tmp_path / "jobs"))
    assert result.returncode == 0, result.stderr.decode()
    assert catalog(zone, target) == before  # same objects, sizes, times, paths, one replica each
    summary = json.loads(open(os.path.join(tmp_path, "jobs", os.listdir(tmp_path / "jobs")[0], "summary.json")).read())
    assert summary["created"] == {} and summary["updated"] == {}
    assert summary["metadata_only"] == len(view.objects) and summary["collections_created"] == 0
