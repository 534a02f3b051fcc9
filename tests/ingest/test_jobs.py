"""Jobs without Redis: stop, list, watch, resume after a kill -9, periodic passes, job names."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from hpcingest import sample
from hpcingest.zone.testing import start_zone
from tests.ingest.conftest import HANDLERS, catalog, hooks, source_view, start
from tests.launchers import Launcher, hpcingest_argv, run
from tests.test_syncstate import corrupt_middle_page


@pytest.fixture
def slow_zone(tmp_path):
    """A zone of its own that serves 8 ms per request and connection, so jobs last long enough
    to be interrupted (a network latency alone would not do: pipelined requests hide it)."""
    zone = start_zone(tmp_path / "zone", subprocess_mode=True, service_ms=8.0)
    yield zone
    zone.stop()


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "src"
    sample.generate(root, files=3000, seed=9, max_file_size=64)
    return root


def hpcingest(zone, *args, launcher=None, check=False, timeout=300):
    command = launcher.command(hpcingest_argv(*args)) if launcher else hpcingest_argv(*args)
    result = subprocess.run(command, capture_output=True, env={**os.environ, **zone.environ()}, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stderr.decode(errors="replace") + result.stdout.decode()
    return result


def launch(zone, tree, target, jobs, *extra, ranks=4):
    command = Launcher("mpiexec", ranks).command(hpcingest_argv(
        "start", str(tree), target, "--job_dir", str(jobs), "--job_name", "j", "--synchronous", *extra))
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **zone.environ()}, start_new_session=True)


def wait_for_objects(zone, target, count, job, limit=120):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if job.poll() is not None:
            return False
        if len(catalog(zone, target).objects) >= count:
            return True
        time.sleep(0.1)
    return False


def registers(zone) -> int:
    return sum(v["count"] for v in zone.api_stats().values() if v["name"] == "PHY_PATH_REG_AN")


def test_stop_list_watch_then_resume(slow_zone, tree, tmp_path):
    zone, jobs, target = slow_zone, tmp_path / "jobs", f"{slow_zone.home}/stopped"
    job = launch(zone, tree, target, jobs)
    assert wait_for_objects(zone, target, 300, job)
    for _ in range(50):  # progress files are rewritten every 2 s
        listing = json.loads(hpcingest(zone, "list", "--job_dir", str(jobs), check=True).stdout)
        (running,) = listing["singlepass"]
        if running["files"] > 0:
            break
        time.sleep(0.2)
    assert running["job_name"] == "j" and running["status"] == "running" and running["files"] > 0
    assert {"pass", "bytes", "failures", "retries", "elapsed_time", "start_time", "rate"} <= set(running)
    duplicate = hpcingest(zone, "start", str(tree), target, "--job_dir", str(jobs), "--job_name", "j")
    assert duplicate.returncode == 2 and b"already running" in duplicate.stderr
    watcher = subprocess.Popen(hpcingest_argv("watch", "j", "--job_dir", str(jobs), "--interval", "0.3"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **zone.environ()})
    time.sleep(1.5)
    started = time.monotonic()
    hpcingest(zone, "stop", "j", "--job_dir", str(jobs), check=True)
    out, err = job.communicate(timeout=60)
    watched, _ = watcher.communicate(timeout=60)
    lines = watched.decode().splitlines()
    assert len(lines) >= 3 and "entries" in lines[0] and "ingested" in lines[0]  # periodic lines off a tty
    assert "job j: stopped" in lines[-1]
    assert time.monotonic() - started < 15
    assert job.returncode == 0, err.decode(errors="replace")
    assert b"was stopped" in out
    listing = json.loads(hpcingest(zone, "list", "--job_dir", str(jobs), check=True).stdout)
    assert [j["job_name"] for j in listing["stopped"]] == ["j"]
    partial = len(catalog(zone, target).objects)
    assert 0 < partial < len(source_view(tree).objects)
    hpcingest(zone, "resume", "j", "--job_dir", str(jobs), launcher=Launcher("mpiexec", 2), check=True)
    assert catalog(zone, target).objects == source_view(tree).objects
    watch = hpcingest(zone, "watch", "j", "--job_dir", str(jobs), "--interval", "0.2", timeout=30)
    assert watch.returncode == 0 and b"finished" in watch.stdout


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_kill_9_of_one_rank_then_rerun_finishes_the_pass(slow_zone, tree, tmp_path, fraction):
    zone, jobs, target = slow_zone, tmp_path / "jobs", f"{slow_zone.home}/killed"
    total = len(source_view(tree).objects)
    job = launch(zone, tree, target, jobs)
    assert wait_for_objects(zone, target, int(total * fraction), job)
    ranks = subprocess.run(["pgrep", "-f", f"hpcingest start {tree}"], capture_output=True, text=True).stdout.split()
    os.kill(int(ranks[-1]), signal.SIGKILL)
    job.communicate(timeout=120)
    assert job.returncode != 0
    done_before = len(catalog(zone, target).objects)
    result = hpcingest(zone, "start", str(tree), target, "--job_dir", str(jobs), "--job_name", "j", "--synchronous",
                       launcher=Launcher("mpiexec", 3), timeout=600)
    assert result.returncode == 0, result.stderr.decode(errors="replace") + result.stdout.decode()
    assert b"died during pass" in result.stderr
    assert catalog(zone, target).objects == source_view(tree).objects
    if done_before > 500:  # the directories the dead run finished are not statted again
        assert b"directories finished before the resume" in result.stdout
    # nothing registered twice: every object was registered once, plus at most the requests in
    # flight when the rank died (their replies were lost; the rerun found them in the catalog)
    assert registers(zone) <= total + 4
    assert done_before <= total


def test_checkpoints_survive_kills_during_commits(slow_zone, tmp_path):
    zone, jobs, target = slow_zone, tmp_path / "jobs", f"{slow_zone.home}/commits"
    tree = tmp_path / "small"
    sample.generate(tree, files=400, seed=2, max_file_size=16)
    for attempt in range(8):
        job = launch(zone, tree, target, jobs, ranks=2)
        time.sleep(0.6 + 0.15 * attempt)
        os.killpg(job.pid, signal.SIGKILL)
        job.communicate(timeout=60)
        for shard in (jobs / "j" / "state").glob("shard-*.sqlite"):
            with sqlite3.connect(shard) as db:
                assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    result = hpcingest(zone, "start", str(tree), target, "--job_dir", str(jobs), "--job_name", "j", "--synchronous",
                       launcher=Launcher("mpiexec", 2))
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert catalog(zone, target).objects == source_view(tree).objects


def test_periodic_passes_detect_changes_and_run_job_hooks_each_pass(slow_zone, tmp_path):
    zone, jobs, target = slow_zone, tmp_path / "jobs", f"{slow_zone.home}/periodic"
    tree = tmp_path / "p"
    tree.mkdir()
    for i in range(5):
        (tree / f"f{i}").write_bytes(b"x" * i)
    log = tmp_path / "hooks"
    command = Launcher("mpiexec", 2).command(hpcingest_argv(
        "start", str(tree), target, "--job_dir", str(jobs), "--job_name", "per", "--interval", "3",
        "--event_handler", os.path.join(HANDLERS, "counting.py")))
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env={**os.environ, **zone.environ(), "HOOK_LOG": str(log)})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Counter(h[0] for h in hooks(log))["post_job"] < 1:
            time.sleep(0.1)
        listing = json.loads(hpcingest(zone, "list", "--job_dir", str(jobs), check=True).stdout)
        assert [j["job_name"] for j in listing["periodic"]] == ["per"]
        time.sleep(1.1)
        (tree / "f0").write_bytes(b"changed")
        os.chmod(tree / "f1", 0o600)
        (tree / "new").write_bytes(b"new file")
        while time.monotonic() < deadline and Counter(h[0] for h in hooks(log))["post_job"] < 2:
            time.sleep(0.1)
        hpcingest(zone, "stop", "per", "--job_dir", str(jobs), check=True)
        job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
    events = Counter(hooks(log))
    assert events[("pre_job", target)] >= 2 and events[("post_job", target)] >= 2
    assert events[("pre_data_obj_modify", f"{target}/f0")] == 1  # content
    assert events[("pre_data_obj_modify", f"{target}/f1")] == 1  # chmod: ctime only
    assert events[("pre_data_obj_create", f"{target}/new")] == 1
    assert catalog(zone, target).objects == source_view(tree).objects


@pytest.mark.parametrize("command", ["stop", "watch", "report", "resume"])
def test_unknown_job_is_a_clear_error(zone, tmp_path, command):
    result = hpcingest(zone, command, "nosuchjob", "--job_dir", str(tmp_path / "jobs"))
    assert result.returncode == 2
    assert b"does not exist" in result.stderr and b"Traceback" not in result.stderr


def test_report_shows_the_failure_table(zone, tmp_path, monkeypatch):
    tree = tmp_path / "few"
    tree.mkdir()
    (tree / "a").write_bytes(b"1")
    flaky = tmp_path / "flaky"
    flaky.mkdir()
    monkeypatch.setenv("FLAKY_DIR", str(flaky))
    target = f"{zone.home}/report{os.getpid()}"
    hpcingest(zone, "start", str(tree), target, "--job_dir", str(tmp_path / "jobs"), "--job_name", "r",
              "--event_handler", os.path.join(HANDLERS, "flaky.py"), launcher=Launcher("mpiexec", 2))
    table = hpcingest(zone, "report", "r", "--job_dir", str(tmp_path / "jobs"), check=True).stdout.decode()
    assert "RuntimeError" in table and "injected first-attempt failure" in table and "1 entries (1 failed" in table
    as_json = json.loads(hpcingest(zone, "report", "r", "--job_dir", str(tmp_path / "jobs"), "--json",
                                   check=True).stdout)
    assert as_json[0]["path"].endswith("/few/a") and as_json[0]["attempts"] == 1


def test_start_progress_prints_a_progress_line(zone, tmp_path):
    tree = tmp_path / "few"
    tree.mkdir()
    for i in range(30):
        (tree / f"f{i}").write_bytes(b"1")
    result = hpcingest(zone, "start", str(tree), f"{zone.home}/progress{os.getpid()}", "--job_dir",
                       str(tmp_path / "jobs"), "--synchronous", "--progress", launcher=Launcher("mpiexec", 2),
                       check=True)
    progress = [line for line in result.stdout.decode().splitlines() if line.startswith("pass 1")]
    assert progress and "30 entries" in progress[-1] and "30 ingested" in progress[-1]


@pytest.mark.parametrize("lock_mode", ["flock", "file"])
def test_two_starts_at_the_same_instant_one_runs_the_other_is_refused(zone, tmp_path, lock_mode):
    tree = tmp_path / "same"
    sample.generate(tree, files=200, seed=4, max_file_size=16)
    jobs = tmp_path / "jobs"
    for attempt in range(3):
        target, name, barrier = f"{zone.home}/same{os.getpid()}_{lock_mode}_{attempt}", f"s{attempt}", tmp_path / f"b{attempt}"
        barrier.mkdir()
        env = {**os.environ, **zone.environ(), "BARRIER_DIR": str(barrier), "HPCINGEST_JOB_LOCK": lock_mode}
        command = hpcingest_argv("start", str(tree), target, "--job_dir", str(jobs), "--job_name", name,
                                 "--synchronous", "--event_handler", os.path.join(HANDLERS, "barrier.py"))
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for _ in range(2)]
        results = [(run.returncode, *outputs) for run, outputs in [(run, run.communicate(timeout=300)) for run in runs]]
        codes = sorted(code for code, _, _ in results)
        assert codes[0] == 0 and codes[1] != 0, results
        (_, _, refused), = [r for r in results if r[0] != 0]
        assert b"already running" in refused and b"Traceback" not in refused, refused
        assert catalog(zone, target).objects == source_view(tree).objects
        record = json.loads((jobs / name / "job.json").read_text())
        assert (record["status"], record["pass_number"], record["counters"]["failures"]) == ("finished", 1, 0)


def _tree(base, names) -> None:
    for name in names:
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())


def test_resume_resolves_relative_paths_where_the_job_started(zone, target, tmp_path):
    """A job started with a relative SRC, --job_dir and --event_handler, resumed from another
    directory: its paths named another tree there, and with a delete mode the resume unregistered
    every object that tree lacked, exit 0.  They are resolved where the job started."""
    first, other = tmp_path / "first", tmp_path / "other"
    _tree(first / "src", ["a", "b", "sub/c"])
    _tree(other / "src", ["zzz/OTHER"])
    for base in (first, other):
        (base / "h").mkdir()
        (base / "h" / "handler.py").write_bytes((Path(HANDLERS) / "counting.py").read_bytes())
    env = {**zone.environ(), "DELETE_MODE": "UNREGISTER", "HOOK_LOG": str(tmp_path / "hooks")}
    started = run(Launcher("mpiexec", 2), hpcingest_argv("start", "src", target, "--job_name", "rel", "--job_dir",
                                                         "jobs", "--event_handler", "h/handler.py", "--synchronous"),
                  env=env, cwd=str(first))
    assert started.returncode == 0, started.stderr.decode(errors="replace")
    registered = catalog(zone, target)
    assert set(registered.objects) == {"a", "b", "sub/c"}
    resumed = run(Launcher("mpiexec", 2), hpcingest_argv("resume", "rel", "--job_dir", str(first / "jobs")),
                  env=env, cwd=str(other))
    out = resumed.stdout.decode()
    assert resumed.returncode == 0, resumed.stderr.decode(errors="replace") + out
    assert catalog(zone, target) == registered and "unchanged 4" in out
    assert json.loads((first / "jobs" / "rel" / "job.json").read_text())["source"] == os.path.realpath(first / "src")
    assert not (other / "jobs").exists()


def test_resume_refuses_a_source_that_now_names_another_tree(zone, target, tmp_path):
    """SRC given through a link that has moved since: resuming would walk the other tree, and a
    delete mode would take everything the job registered for gone."""
    _tree(tmp_path / "one", ["a"])
    _tree(tmp_path / "two", ["b"])
    (tmp_path / "src").symlink_to(tmp_path / "one")
    env = {**zone.environ(), "DELETE_MODE": "UNREGISTER", "HOOK_LOG": str(tmp_path / "hooks")}
    jobs = tmp_path / "jobs"
    started = run(Launcher("mpiexec", 2), hpcingest_argv("start", str(tmp_path / "src"), target, "--job_name", "moved",
                                                         "--job_dir", str(jobs), "--event_handler",
                                                         os.path.join(HANDLERS, "counting.py"), "--synchronous"),
                  env=env)
    assert started.returncode == 0, started.stderr.decode(errors="replace")
    (tmp_path / "src").unlink()
    (tmp_path / "src").symlink_to(tmp_path / "two")
    resumed = run(Launcher("mpiexec", 2), hpcingest_argv("resume", "moved", "--job_dir", str(jobs)), env=env)
    stderr = resumed.stderr.decode()
    assert resumed.returncode == 2 and "a link that moved" in stderr and "Traceback" not in stderr
    assert set(catalog(zone, target).objects) == {"a"}


@pytest.mark.parametrize("damage", ["truncated", "shards", "middle"])
def test_a_damaged_sync_state_ends_start_in_one_line(zone, target, tmp_path, damage):
    """A checkpoint cut short, a shard count that is not a number, and a damaged page inside a
    shard gave a sqlite3/ValueError traceback from one rank, and the job stayed "running".
    The first two are found on rank 0 before any rank works; the third by the rank that reads
    the page, which records the job as failed and ends every rank.  Either way: one line
    naming the file and the way out, exit 2."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3000):  # at the top: every record in one directory of shard 0 (rank 0's), over many pages
        (src / f"file-with-a-longer-name-{i:05d}").write_bytes(b"")
    jobs = tmp_path / "jobs"
    first = start(zone, src, target, "--job_name", "s", job_dir=jobs, launcher=Launcher("mpiexec", 2))
    assert first.returncode == 0, first.stderr
    state = jobs / "s" / "state"
    damaged = state / ("shards" if damage == "shards" else "shard-0000.sqlite")
    if damage == "truncated":
        os.truncate(damaged, 1000)
    elif damage == "shards":
        damaged.write_text("abc\n")
    else:
        corrupt_middle_page(str(damaged))
    result = start(zone, src, target, "--job_name", "s", job_dir=jobs, launcher=Launcher("mpiexec", 2))
    errors = [line for line in result.stderr.splitlines() if b"error:" in line]
    assert result.returncode == 2 and b"Traceback" not in result.stderr and len(errors) == 1, result.stderr
    assert f"sync state {damaged} is damaged".encode() in errors[0]
    assert f"mv {state} {state}.damaged".encode() in errors[0]
    status = json.loads((jobs / "s" / "job.json").read_text())["status"]
    assert status == ("failed" if damage == "middle" else "finished")  # never "running"
