"""What `start` checks and prepares on rank 0 before any rank works: empty arguments, and
handler code that raises while the root target collection is prepared."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from pathlib import Path

import pytest

from tests.ingest.conftest import HANDLERS, catalog, source_view, start
from tests.launchers import Launcher, hpcingest_argv, run


@pytest.mark.parametrize("command", ["start", "scan"])
def test_an_empty_source_is_refused_not_taken_for_the_current_directory(zone, target, tmp_path, command):
    home = tmp_path / "home"  # what an empty SRC ingested: the working directory, credentials and all
    (home / ".irods").mkdir(parents=True)
    (home / ".irods" / ".irodsA").write_text("secret")
    (home / "s3.keypair").write_text("AKIA\nsecret\n")
    argv = ["start", "", target, "--job_dir", str(tmp_path / "jobs")] if command == "start" else ["scan", ""]
    result = run(Launcher("mpiexec", 2), hpcingest_argv(*argv), env=zone.environ(), cwd=str(home))
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "SRC is empty" in stderr and "Traceback" not in stderr, stderr
    assert b".irodsA" not in result.stdout and b"regular 2" not in result.stdout
    with zone.session() as session:
        assert not session.collections.exists(target)


def test_an_empty_target_is_refused(zone, tmp_path):
    result = start(zone, tmp_path, "", launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs")
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "TARGET_COLLECTION is empty" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize("hook, error", [("operation", "ValueError"), ("as_user", "KeyError"),
                                         ("pre_coll_create", "RuntimeError"), ("pre_coll_modify", "OSError"),
                                         ("pre_job", "SystemExit")])
def test_a_handler_raising_for_the_root_is_one_clear_error_and_a_clean_exit(zone, target, tmp_path, hook, error):
    tree = tmp_path / "src"
    tree.mkdir()
    (tree / "f").write_bytes(b"1")
    jobs = tmp_path / "jobs"
    handler = os.path.join(HANDLERS, "raising.py")
    if hook == "pre_coll_modify":
        with zone.session() as session:
            session.collections.create(target)
    env = {"RAISE_IN": hook, "RAISE_ERROR": error, "RAISE_ROOT": target}
    result = start(zone, tree, target, "--job_name", "r", "--event_handler", handler, env=env, job_dir=jobs)
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert f"hpcingest start: error: {handler}: {hook}() raised {error}: " in stderr
    assert "Traceback" not in stderr and "failed:" not in stderr and "Abort" not in stderr, stderr
    record = json.loads((jobs / "r" / "job.json").read_text())
    assert (record["status"], record["pass_number"]) == ("failed", 0)
    assert not catalog(zone, target).objects
    again = start(zone, tree, target, "--job_name", "r", "--event_handler", handler, job_dir=jobs)
    assert again.returncode == 0, again.stderr.decode()
    assert catalog(zone, target).objects == source_view(tree).objects
    assert json.loads((jobs / "r" / "job.json").read_text())["pass_number"] == 1


def client_files(zone, tmp_path, port=None, auth=None) -> dict[str, str]:
    """The zone's client files, with another port or another .irodsA content."""
    with open(zone.env_file) as f:
        environment = json.load(f)
    if port is not None:
        environment["irods_port"] = port
    (tmp_path / "env.json").write_text(json.dumps(environment))
    auth_file = tmp_path / ".irodsA"
    if auth is None:
        shutil.copy(zone.auth_file, auth_file)
    else:
        auth_file.write_text(auth)
    return {"IRODS_ENVIRONMENT_FILE": str(tmp_path / "env.json"), "IRODS_AUTHENTICATION_FILE": str(auth_file)}


def test_a_garbage_auth_file_is_not_reported_as_a_wrong_password(zone, target, tmp_path):
    result = start(zone, tmp_path, target, launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs",
                   env=client_files(zone, tmp_path, auth="garbage!!"))
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr
    assert f"the .irodsA file at {tmp_path}/.irodsA could not be decoded" in stderr and "run iinit again" in stderr
    assert "wrong password" not in stderr


def test_an_unreachable_zone_at_start_says_why_and_keeps_its_budget(zone, target, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    result = start(zone, tmp_path, target, "--irods_retry_seconds", "2", launcher=Launcher("mpiexec", 2),
                   job_dir=tmp_path / "jobs", env=client_files(zone, tmp_path, port=closed))
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr and "lost the connection" not in stderr, stderr
    assert "hpcingest start: error: cannot reach iRODS at" in stderr and "connection refused" in stderr
    assert "the budget is 2 s, --irods_retry_seconds" in stderr
    assert int(re.search(r"gave up after (\d+) s", stderr).group(1)) <= 2
    assert stderr.count("retrying for up to 2 s") == 1  # said once, at the first failure


@pytest.mark.parametrize("where", ["module", "operation", "character_map"])
def test_a_handler_calling_sys_exit_is_an_error_not_a_hang(zone, target, tmp_path, where):
    """sys.exit() raises SystemExit, which is no Exception: on rank 0 alone it left the other ranks waiting."""
    handler = tmp_path / "exits.py"
    handler.write_text("import sys\nfrom irods_capability_automated_ingest.core import Core\n"
                       + ("sys.exit('bye')\n" if where == "module" else "")
                       + "class event_handler(Core):\n"
                       + ("    @staticmethod\n    def operation(session, meta, **options):\n        sys.exit('bye')\n"
                          if where == "operation" else "")
                       + ("    @staticmethod\n    def character_map():\n        sys.exit('bye')\n"
                          if where == "character_map" else "    pass\n"))
    (tmp_path / "src").mkdir()
    result = start(zone, tmp_path / "src", target, "--event_handler", str(handler), job_dir=tmp_path / "jobs")
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "raised SystemExit" in stderr and "bye" in stderr, stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("command", ["start", "scan"])
def test_a_batch_size_past_the_limit_is_refused_before_work(zone, target, tmp_path, command):
    """A --files_per_task past sys.maxsize passed `>= 1` and broke the walk in islice(),
    a traceback on every rank, with `start`'s job record left as running."""
    tree = tmp_path / "src"
    tree.mkdir()
    (tree / "f").write_bytes(b"1")
    jobs = tmp_path / "jobs"
    huge = ["--files_per_task", "99999999999999999999999"]
    argv = ["start", str(tree), target, "--job_dir", str(jobs), "--job_name", "j", *huge] if command == "start" \
        else ["scan", str(tree), *huge]
    result = run(Launcher("mpiexec", 2), hpcingest_argv(*argv), env=zone.environ())
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 2, stderr
    assert stderr == f"hpcingest {command}: error: --files_per_task must be at least 1 and at most 1,000,000\n"
    assert not jobs.exists()  # refused before a job directory, let alone a record saying running
    with zone.session() as session:
        assert not session.collections.exists(target)


def test_an_event_handler_that_is_not_a_regular_file_is_refused(zone, target, tmp_path):
    """``--event_handler /dev/zero`` was read until memory ran out, and a FIFO's open waits
    for a writer forever: only a regular file is a handler file."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        result = start(zone, tmp_path, target, "--event_handler", path, launcher=Launcher("mpiexec", 2),
                       job_dir=tmp_path / "jobs")
        stderr = result.stderr.decode()
        assert result.returncode == 2 and "Traceback" not in stderr, stderr
        assert f"--event_handler {path!r} is not a regular file" in stderr


def test_start_refuses_a_handler_others_can_write_as_resume_does(zone, target, tmp_path):
    """`start` ran a world-writable handler file (as root, anyone's code) that `resume` then refused."""
    handler = tmp_path / "handler.py"
    handler.write_bytes((Path(HANDLERS) / "counting.py").read_bytes())
    handler.chmod(0o666)
    result = start(zone, tmp_path, target, "--event_handler", str(handler), launcher=Launcher("mpiexec", 2),
                   job_dir=tmp_path / "jobs", env={"HOOK_LOG": str(tmp_path / "hooks")})
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "can be written by other users" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "hooks").exists()


def test_a_handler_file_with_a_byte_order_mark_runs_as_python_runs_it(zone, target, tmp_path):
    """Saved by an editor that writes a UTF-8 BOM: Python imports it, hpcingest refused it
    ("invalid non-printable character U+FEFF")."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"f")
    handler = tmp_path / "bom.py"
    handler.write_bytes(b"\xef\xbb\xbf" + (Path(HANDLERS) / "counting.py").read_bytes())
    result = start(zone, src, target, "--event_handler", str(handler), launcher=Launcher("mpiexec", 2),
                   job_dir=tmp_path / "jobs", env={"HOOK_LOG": str(tmp_path / "hooks")})
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert "pre_job" in (tmp_path / "hooks").read_text()
