"""REGISTER_SYNC end to end: real ranks, the unmodified PRC, a real zone over TCP."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from hpcingest import sample
from tests.ingest.conftest import HANDLERS, OLD_HANDLERS, catalog, hooks, source_view, start
from tests.launchers import Launcher, collectives_after_walk, mpi_script, run


def make_tree(root):
    sample.generate(root, files=400, seed=3, max_file_size=2000)
    os.makedirs(root / "empty" / "nested-empty")
    return root


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path / "src")


@pytest.fixture
def readable_tree(world_dir):
    """The tree where the server's account can read it too (registering with checksums)."""
    return make_tree(Path(world_dir) / "src")


READ_ONLY_APIS = {"GEN_QUERY_AN", "AUTHENTICATION_APN", "AUTH_REQUEST_AN", "AUTH_RESPONSE_AN",
                  "GET_MISC_SVR_INFO_AN", "RODS_CONNECT", "RODS_DISCONNECT"}


def ok(result):
    assert result.returncode == 0, result.stderr.decode(errors="replace") + result.stdout.decode(errors="replace")
    return result.stdout.decode()


@pytest.mark.parametrize("ranks", [1, 2, 8])
def test_catalog_equals_tree_whatever_the_rank_count(zone, target, tree, tmp_path, ranks):
    ok(start(zone, tree, target, launcher=Launcher("mpiexec", ranks), job_dir=tmp_path / "jobs"))
    expected, got = source_view(str(tree)), catalog(zone, target)
    assert got.collections == expected.collections  # empty directories included
    assert got.objects == expected.objects  # size, int(mtime), physical path, one replica


def test_second_pass_over_unchanged_tree_writes_nothing(zone, target, tree, tmp_path):
    jobs = tmp_path / "jobs"
    ok(start(zone, tree, target, "--job_name", "again", job_dir=jobs))
    before = zone.api_stats() if zone.builtin else None
    out = ok(start(zone, tree, target, "--job_name", "again", job_dir=jobs))
    assert "created 0; updated 0;" in out
    if before is not None:
        after = zone.api_stats()
        changed = {after[api]["name"] for api in after
                   if after[api]["count"] != before.get(api, {}).get("count", 0)}
        assert changed <= READ_ONLY_APIS, changed - READ_ONLY_APIS


def test_append_rewrite_and_chmod_between_passes(zone, target, tree, tmp_path):
    jobs, log = tmp_path / "jobs", tmp_path / "hooks.log"
    env = {"HOOK_LOG": str(log)}
    handler = os.path.join(HANDLERS, "counting.py")
    ok(start(zone, tree, target, "--job_name", "j", "--event_handler", handler, job_dir=jobs, env=env))
    files = sorted(p for p in tree.rglob("*.bin") if not p.is_symlink())
    appended, rewritten, chmodded = files[0], files[1], files[2]
    time.sleep(1.1)  # mtimes are compared in whole seconds by iRODS
    with open(appended, "ab") as f:
        f.write(b"more data")
    rewritten.write_bytes(b"new content entirely")
    os.chmod(chmodded, 0o600)
    log.unlink()
    ok(start(zone, tree, target, "--job_name", "j", "--event_handler", handler, job_dir=jobs, env=env))
    events = Counter(hooks(log))
    rel = lambda p: f"{target}/{os.path.relpath(p, tree)}"  # noqa: E731
    for path in (appended, rewritten, chmodded):
        assert events[("pre_data_obj_modify", rel(path))] == 1
        assert events[("post_data_obj_modify", rel(path))] == 1
    assert not [e for e in events if e[0].endswith("data_obj_create")]
    assert catalog(zone, target).objects == source_view(str(tree)).objects


def test_hooks_fire_once_per_object_and_collection(zone, target, tree, tmp_path):
    log = tmp_path / "hooks.log"
    ok(start(zone, tree, target, "--event_handler", os.path.join(HANDLERS, "counting.py"),
             job_dir=tmp_path / "jobs", env={"HOOK_LOG": str(log)}))
    events = Counter(hooks(log))
    expected = source_view(str(tree))
    for rel in expected.objects:
        assert events[("pre_data_obj_create", f"{target}/{rel}")] == 1
        assert events[("post_data_obj_create", f"{target}/{rel}")] == 1
    for rel in expected.collections - {""}:
        assert events[("pre_coll_create", f"{target}/{rel}")] == 1, rel
        assert events[("post_coll_create", f"{target}/{rel}")] == 1, rel
    assert sum(1 for e in events.elements() if e[0] == "pre_job") == 1
    assert sum(1 for e in events.elements() if e[0] == "post_job") == 1
    assert not [e for e in events if "modify" in e[0] and e[1] != target]


def test_retries_per_file_and_failures_without_retries(zone, target, tree, tmp_path):
    flaky = tmp_path / "flaky"
    flaky.mkdir()
    handler = os.path.join(HANDLERS, "flaky.py")
    result = start(zone, tree, target, "--event_handler", handler, job_dir=tmp_path / "jobs",
                   env={"FLAKY_DIR": str(flaky), "MAX_RETRIES": "3"})
    out = ok(result)
    n = len(source_view(str(tree)).objects)
    assert f"failed 0  skipped 0  retries {n:,}" in out
    assert catalog(zone, target).objects == source_view(str(tree)).objects


def test_no_retries_means_one_failure_per_file_and_nonzero_exit(zone, target, tree, tmp_path):
    flaky = tmp_path / "flaky"
    flaky.mkdir()
    jobs = tmp_path / "jobs"
    result = start(zone, tree, target, "--event_handler", os.path.join(HANDLERS, "flaky.py"), "--job_name", "nr",
                   job_dir=jobs, env={"FLAKY_DIR": str(flaky), "MAX_RETRIES": "0"})
    n = len(source_view(str(tree)).objects)
    assert result.returncode != 0
    out = result.stdout.decode()
    assert f"failed {n:,}" in out and "failure report:" in out
    report = (jobs / "nr" / "failures.jsonl").read_text().splitlines()
    assert len(report) == n


def test_timeout_fails_each_file(zone, target, tmp_path):
    src = tmp_path / "few"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}").write_bytes(b"x" * i)
    result = start(zone, src, target, "--event_handler", os.path.join(HANDLERS, "slow.py"),
                   launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs")
    assert result.returncode != 0
    assert "failed 3" in result.stdout.decode()


@pytest.mark.parametrize("bad_target, message", [
    ("/", "Root may only contain collections which represent zones"),
    ("relative/path", "must be an absolute path"),
    ("/noSuchZone/home/rods/x", "zone 'noSuchZone' does not exist"),
])
def test_bad_targets_are_refused_before_work(zone, tree, tmp_path, bad_target, message):
    result = start(zone, tree, bad_target, launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs")
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert message in stderr and "Traceback" not in stderr


def test_an_empty_job_name_is_refused_not_taken_for_a_new_job(zone, tree, target, tmp_path):
    """``--job_name "$NAME"`` with NAME unset started a new job under a random name: the pass
    meant to resume an earlier job began from scratch, its checkpoint never used."""
    result = start(zone, tree, target, "--job_name", "", launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs")
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "invalid job name ''" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "jobs").exists() or not os.listdir(tmp_path / "jobs")


def test_deep_nonexistent_target_is_created(zone, tree, tmp_path):
    deep = f"{zone.home}/deep{os.getpid()}/a/b/c/d/e"
    ok(start(zone, tree, deep, launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs"))
    assert catalog(zone, deep).objects == source_view(str(tree)).objects


def test_irods_connections_caps_the_ranks_that_connect(zone, target, tree, tmp_path):
    out = ok(start(zone, tree, target, "--irods_connections", "1", launcher=Launcher("mpiexec", 4),
                   job_dir=tmp_path / "jobs"))
    assert "ranks with iRODS connections 1" in out
    assert catalog(zone, target).objects == source_view(str(tree)).objects


def test_target_with_a_backtick_and_checksums_on_register(zone, readable_tree, tmp_path):
    tree = readable_tree
    grave = f"{zone.home}/grave`name{os.getpid()}"
    ok(start(zone, tree, grave, "--checksum", "--event_handler", os.path.join(OLD_HANDLERS, "metadata.py"),
             launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs"))
    assert catalog(zone, grave).objects == source_view(str(tree)).objects
    with zone.session() as session:
        first_file = next(rel for rel in source_view(str(tree)).objects if rel.endswith(".bin"))
        obj = session.data_objects.get(f"{grave}/{first_file}")
        assert obj.checksum
        assert obj.metadata.get_one("filesystem::mode").value.isdigit()


def test_a_rodsuser_refused_path_registration_stops_the_job_once_and_resumes_as_an_admin(zone, tree, tmp_path):
    """iRODS's default policy refuses a rodsuser path registration (PATH_REG_NOT_ALLOWED): the
    job stops on every rank with one message instead of one failure per file, and the same
    command finishes the pass once the user may register."""
    user, password = f"reg{os.getpid()}", f"Pw-{os.urandom(8).hex()}"
    target = f"/{zone.zone}/home/{user}/refused"
    jobs = tmp_path / "jobs"
    as_user = {"IRODS_ENVIRONMENT_FILE": "", "IRODS_AUTHENTICATION_FILE": "", "IRODS_HOST": zone.host,
               "IRODS_PORT": str(zone.port), "IRODS_USER_NAME": user, "IRODS_ZONE_NAME": zone.zone,
               "IRODS_PASSWORD": password}
    with zone.session() as admin:
        admin.users.create(user, "rodsuser")
        admin.users.modify(user, "password", password)
    try:
        before = zone.api_stats().get("630", {}).get("count", 0) if zone.builtin else 0
        result = start(zone, tree, target, "--job_name", "refused", job_dir=jobs, env=as_user)
        if result.returncode == 0 and not zone.builtin:
            pytest.skip("this zone's policy lets a rodsuser register in place")
        stderr = result.stderr.decode(errors="replace")
        assert result.returncode == 1 and "Traceback" not in stderr, stderr
        errors = [line for line in stderr.splitlines() if line.startswith("hpcingest start: error:")]
        assert len(errors) == 1 and "PATH_REG_NOT_ALLOWED" in errors[0] and "rodsadmin" in errors[0], stderr
        report = jobs / "refused" / "failures.jsonl"
        assert "failed 0" in result.stdout.decode() and (not report.exists() or report.read_text() == "")
        if zone.builtin:  # a few refused requests per rank, not one per file
            assert zone.api_stats()["630"]["count"] - before <= 4 * 64
        assert catalog(zone, target).objects == {}
        with open(jobs / "refused" / "job.json") as f:
            record = json.load(f)
        assert record["status"] == "failed" and not record["pass_complete"]
        with zone.session() as admin:
            admin.users.modify(user, "type", "rodsadmin")
        ok(start(zone, tree, target, "--job_name", "refused", job_dir=jobs, env=as_user))
        assert catalog(zone, target).objects == source_view(str(tree)).objects
    finally:
        with zone.session() as admin:
            home = f"/{zone.zone}/home/{user}"
            if admin.collections.exists(home):
                for sub in admin.collections.get(home).subcollections:
                    sub.remove(recurse=True, force=True)
            admin.users.remove(user)


def test_stat_threads_register_the_same_catalog(zone, target, tree, tmp_path):
    """--stat_threads K (K lstats of a batch in flight per rank) changes how fast, not what."""
    ok(start(zone, tree, target, "--stat_threads", "4", launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs"))
    expected, got = source_view(str(tree)), catalog(zone, target)
    assert got.collections == expected.collections
    assert got.objects == expected.objects


def test_a_one_pass_job_waits_for_no_collective_after_the_walk(zone, target, tree, tmp_path):
    """Each collective after the walk waits for the last rank to be scheduled (about a second at
    256 ranks on two cores); a pass ended with five (the stop flag's broadcast, the summary's
    two gathers, the next-pass broadcast).  The walk's closing round now carries every rank's
    part of the summary to rank 0, and a job without --interval has no next pass to agree on."""
    result = run(Launcher("mpiexec", 3), mpi_script("collectives_after_walk") + [
        "hpcingest.ingest.job", "start", str(tree), target, "--synchronous", "--job_dir", str(tmp_path / "jobs")],
        env=zone.environ())
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert collectives_after_walk(result.stderr) == [0, 0, 0]
    with open(tmp_path / "jobs" / os.listdir(tmp_path / "jobs")[0] / "summary.json") as f:
        summary = json.load(f)
    view = source_view(tree)
    assert summary["entries"] == len(view.objects) + len(view.collections) - 1  # the root is not an entry
    assert catalog(zone, target) == view
