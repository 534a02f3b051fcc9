"""Job control against job directories the running user does not own or that others can write."""

from __future__ import annotations

import base64
import json
import os
import pwd
import shutil
import socket
import subprocess

import pytest

from hpcingest.ingest.monitor import stop_path
from hpcingest.jobdir import JobDirectory, JobRecord
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
    own_handler = shutil.copy(handler, os.path.join(os.path.dirname(job), "..", "own_handler.py"))  # root's
    args = ["start", src, target, "--event_handler", own_handler] if command == "start" else [command]
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


HOSTILE_NAMES = [b"esc\x1b[31mred\x1b]0;title\x07", b"two\nfailed  RuntimeError  forged row", b"caf\xe9 latin-1",
                 b"back\\slash", "bidi\u202eexe.txt".encode(), "caf\u00e9 utf-8".encode()]


@pytest.fixture(scope="module")
def hostile_report(zone, tmp_path_factory):
    """A job whose every file failed, with names that attack terminals and JSON readers."""
    base = tmp_path_factory.mktemp("hostile")
    src = os.path.join(os.fsencode(base), b"src")
    os.mkdir(src)
    for name in HOSTILE_NAMES:
        with open(os.path.join(src, name), "wb") as f:
            f.write(b"x")
    jobs = str(base / "jobs")
    handler = os.path.join(os.path.dirname(__file__), "ingest", "handlers", "failing.py")
    result = hpcingest(zone, "start", os.fsdecode(src), f"{zone.home}/hostile{os.getpid()}", "--job_dir", jobs,
                       "--job_name", "h", "--event_handler", handler, "--log_filename", str(base / "log"),
                       "--log_level", "INFO")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return jobs, src, base


@pytest.mark.parametrize("env", [{}, {"LANG": "C", "LC_ALL": "C"}, {"PYTHONIOENCODING": "ascii"}],
                         ids=["utf-8", "LANG=C", "ascii"])
def test_report_escapes_names_one_line_per_entry(zone, hostile_report, env):
    jobs, _, _ = hostile_report
    result = hpcingest(zone, "report", "h", "--job_dir", jobs, env=env)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr
    out = result.stdout.decode("ascii" if env.get("PYTHONIOENCODING") else "utf-8")
    lines = out.splitlines()
    assert len(lines) == 1 + len(HOSTILE_NAMES) + 1 and lines[-1].startswith(f"{len(HOSTILE_NAMES)} entries")
    assert all(line.isprintable() for line in lines)  # no escape sequence, no bidi override reaches the terminal
    assert "esc\\u001b[31mred\\u001b]0;title\\u0007: cannot take " in out
    assert "two\\nfailed  RuntimeError  forged row" in out and "caf\\xe9 latin-1" in out
    assert "back\\\\slash" in out and "bidi\\u202eexe.txt" in out
    assert ("caf\\u00e9 utf-8" if env.get("PYTHONIOENCODING") else "caf\u00e9 utf-8") in out


def test_failure_report_and_logs_are_valid_json_text_with_exact_bytes(zone, hostile_report):
    from tests.test_escaping import strictly_valid

    jobs, src, base = hostile_report
    report_lines = open(os.path.join(jobs, "h", "failures.jsonl"), encoding="utf-8").read().splitlines()
    as_json = hpcingest(zone, "report", "h", "--job_dir", jobs, "--json").stdout.decode("utf-8")
    log_lines = open(base / "log", encoding="utf-8").read().splitlines()
    for text in [*report_lines, as_json, *log_lines]:
        assert strictly_valid(text), text
    entries = json.loads(as_json)
    exact = {base64.b64decode(e["path_b64"]) if "path_b64" in e else e["path"].encode() for e in entries}
    assert exact == {os.path.join(src, name) for name in HOSTILE_NAMES}
    (latin1,) = [e for e in entries if "path_b64" in e]
    assert latin1["path"].endswith("caf\\xe9 latin-1") and latin1["message"].endswith("caf\\xe9 latin-1")
    logged = [json.loads(line) for line in log_lines if '"failed_task"' in line]
    assert {base64.b64decode(e["path_b64"]) if "path_b64" in e else e["path"].encode() for e in logged} == exact


@pytest.fixture
def running_job(tmp_path):
    """A job recorded as running, held by this test's own process (so `watch` keeps watching
    and `stop` would ask it to stop): the state in which a bad --interval or --timeout bites."""
    job = JobDirectory(str(tmp_path / "jobs"), "r")
    job.create()
    job.save(JobRecord(job_name="r", source=str(tmp_path), target="/tempZone/home/rods/r", options={},
                       status="running", pass_number=1, launch={"host": socket.gethostname(), "pid": os.getpid()}))
    return job


@pytest.mark.parametrize("command, option, value", [
    ("watch", "--interval", "-1"), ("watch", "--interval", "nan"), ("watch", "--interval", "1e300"),
    ("watch", "--interval", "0"), ("stop", "--timeout", "nan"), ("stop", "--timeout", "inf"),
    ("stop", "--timeout", "-1")])
def test_a_wait_that_is_no_finite_positive_time_is_refused(zone, running_job, command, option, value):
    """sleep() raised on a negative or NaN interval and overflowed on a huge one; a NaN
    timeout placed the stop request and gave up at once ("did not stop within nan s")."""
    before = open(running_job.record_path).read()
    result = hpcingest(zone, command, "r", "--job_dir", running_job.root, f"{option}={value}")
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 2 and "Traceback" not in stderr, stderr
    most = 86400 if command == "watch" else 7 * 86400  # a day between updates; a week to stop
    assert stderr.strip() == f"hpcingest {command}: error: {option} takes a number of seconds " \
                             f"(more than 0, at most {most}), not {float(value):g}"
    assert open(running_job.record_path).read() == before and not os.path.exists(stop_path(running_job.path))


@pytest.mark.parametrize("command", ["start", "list", "stop", "watch", "report", "resume", "profile"])
def test_a_job_root_that_cannot_hold_jobs_is_one_clear_error(zone, tmp_path, command):
    """A --job_dir or $HPCINGEST_HOME naming a file, or a place under one, met os.listdir
    (`list`) or os.makedirs (`start`) raw; every job command resolves its job root in
    jobdir.job_root, which says what is wrong with it and where it came from."""
    afile = tmp_path / "afile"
    afile.write_text("not a directory\n")
    src = tmp_path / "src"
    src.mkdir()
    args = ["start", str(src), f"{zone.home}/jd", "--job_name", "j"] if command == "start" else \
        [command] if command == "list" else [command, "j"]
    cases = [(["--job_dir", str(afile)], {}, f"job root {afile} is not a directory"),
             (["--job_dir", str(afile / "jobs")], {},
              f"job root {afile}/jobs cannot be used: a part of its path is not a directory"),
             ([], {"HPCINGEST_HOME": str(afile)}, f"job root {afile}/jobs (from $HPCINGEST_HOME; --job_dir chooses "
                                                  "another) cannot be used: a part of its path is not a directory")]
    if command == "start":  # readers take a root that does not exist for no jobs; `start` must make it
        cases.append((["--job_dir", "/proc/hpcingest-jobs"], {},
                      "job root /proc/hpcingest-jobs cannot be made: No such file or directory"))
    for job_dir, env, message in cases:
        result = hpcingest(zone, *args, *job_dir, env=env)
        stderr = result.stderr.decode(errors="replace")
        assert result.returncode == 2, (job_dir, env, stderr)
        assert stderr.strip() == f"hpcingest {command}: error: {message}", (job_dir, env, stderr)
    assert afile.read_text() == "not a directory\n"


def test_stop_ends_a_periodic_job_between_passes(zone, tmp_path):
    """Between two passes a periodic job's record says its last pass finished: `stop` ends the job."""
    job = JobDirectory(str(tmp_path / "jobs"), "every")
    job.create()
    job.save(JobRecord(job_name="every", source=str(tmp_path), target="/tempZone/home/rods/e", options={},
                       status="finished", periodic=True, pass_number=3, pass_complete=True))
    result = hpcingest(zone, "stop", "every", "--job_dir", job.root)
    assert result.returncode == 0 and "recorded as stopped" in result.stdout.decode()
    assert job.load().status == "stopped"


@pytest.mark.parametrize("status", ["finished", "failed"])
def test_stop_leaves_a_job_that_ended_as_it_ended(zone, tmp_path, status):
    """`stop` on a one-pass job that had finished rewrote it as stopped: `list` then said the
    job was stopped part-way."""
    job = JobDirectory(str(tmp_path / "jobs"), "done")
    job.create()
    job.save(JobRecord(job_name="done", source=str(tmp_path), target="/tempZone/home/rods/d", options={},
                       status=status, pass_number=1, pass_complete=status == "finished"))
    before = open(job.record_path).read()
    result = hpcingest(zone, "stop", "done", "--job_dir", job.root)
    assert result.returncode == 0 and f"not running ({status}); nothing to stop" in result.stdout.decode()
    assert open(job.record_path).read() == before and not os.path.exists(stop_path(job.path))


@pytest.fixture
def failed_job(zone, tmp_path):
    """A finished job whose three files failed: a record and a failure report of three lines."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a", "b", "c"):
        (src / name).write_bytes(b"x")
    jobs = tmp_path / "jobs"
    handler = os.path.join(os.path.dirname(__file__), "ingest", "handlers", "failing.py")
    result = hpcingest(zone, "start", str(src), f"{zone.home}/failed{os.getpid()}_{tmp_path.name}", "--job_dir",
                       str(jobs), "--job_name", "f", "--event_handler", handler)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return jobs, jobs / "f"


def assert_one_error_line(result, status: int, *texts: bytes) -> None:
    errors = [line for line in result.stderr.splitlines() if b"error:" in line]
    assert result.returncode == status and b"Traceback" not in result.stderr and len(errors) == 1, result.stderr
    assert all(text in errors[0] for text in texts), result.stderr


def test_a_damaged_failure_report_shows_what_it_can(zone, failed_job):
    """A report with a line that is not JSON (and a half-written last line, as a crash leaves)
    gave a JSONDecodeError traceback and showed nothing: now its good lines are shown and the
    rest counted on stderr; only a report with no good line at all is an error."""
    jobs, job = failed_job
    report = job / "failures.jsonl"
    good = report.read_bytes()
    report.write_bytes(b'{"bad json\n\xff\xfe\n' + good + b'{"path": "/half-writ')
    for extra in ([], ["--json"]):
        result = hpcingest(zone, "report", "f", "--job_dir", str(jobs), *extra)
        assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr
        assert b"warning: 3 line(s) of the failure report" in result.stderr
        shown = len(json.loads(result.stdout)) if extra else result.stdout.count(b": cannot take ")
        assert shown == 3, result.stdout
    report.write_bytes(b'{"bad json\n\xff\xfe\n{"path": 5}\n')
    for extra in ([], ["--json"]):
        result = hpcingest(zone, "report", "f", "--job_dir", str(jobs), *extra)
        assert_one_error_line(result, 2, b"3 line(s) of the failure report", b"0 line(s) could")


@pytest.mark.parametrize("damage", [{"counters": "notadict"}, {"start_time": "yesterday"},
                                    {"counters": {"files": "many"}}, {"pass_number": True}, b"garbage",
                                    b'["a list"]', b'{"job_name": "f"}'],
                         ids=["counters", "start_time", "counter", "pass_number", "not-json", "not-object",
                              "missing"])
def test_a_damaged_job_record_is_one_clear_error_for_every_command(zone, failed_job, damage):
    """Valid JSON of the wrong types in job.json gave AttributeError/TypeError tracebacks in
    `watch`, `stop` and `list`, and `report` on a garbage record said "no failed or skipped
    entries" with status 0: the record's fields are checked where it is read, for all."""
    jobs, job = failed_job
    record = job / "job.json"
    if isinstance(damage, bytes):
        record.write_bytes(damage)
    else:
        record.write_text(json.dumps({**json.loads(record.read_text()), **damage}))
    for command in (["watch", "f"], ["stop", "f"], ["report", "f"], ["list"], ["resume", "f"], ["profile", "f"]):
        result = hpcingest(zone, *command, "--job_dir", str(jobs))
        assert_one_error_line(result, 2, f"job record {record} is unreadable".encode())
