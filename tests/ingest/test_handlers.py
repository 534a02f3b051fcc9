"""Old example handlers against a real zone: NO_OP, metadata.py after a chmod, as_user proxying."""

from __future__ import annotations

import json
import os
import time

import pytest
from irods.models import Collection, DataObject

from tests.ingest.conftest import HANDLERS, OLD_HANDLERS, catalog, source_view, start
from tests.ingest.test_names_and_special import avus
from tests.ingest.test_register import ok
from tests.launchers import Launcher


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "src"
    (root / "a" / "b").mkdir(parents=True)
    for rel in ("x", "a/y", "a/b/z"):
        (root / rel).write_bytes(b"content of " + rel.encode())
    return root


def test_no_op_writes_nothing_and_fires_hooks(zone, target, tree, tmp_path):
    log = tmp_path / "hooks"
    out = ok(start(zone, tree, target, "--event_handler", os.path.join(HANDLERS, "counting.py"),
                   launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs",
                   env={"OPERATION": "NO_OP", "HOOK_LOG": str(log)}))
    assert "failed 0" in out
    assert catalog(zone, target).objects == {}
    assert log.read_text().count("pre_data_obj_create") == 3


def test_metadata_example_tracks_chmod(zone, target, tree, tmp_path):
    handler = os.path.join(OLD_HANDLERS, "metadata.py")
    jobs = tmp_path / "jobs"
    ok(start(zone, tree, target, "--event_handler", handler, "--job_name", "m", launcher=Launcher("mpiexec", 2),
             job_dir=jobs))
    assert avus(zone, f"{target}/a/y")["filesystem::mode"][0] == str(os.stat(tree / "a" / "y").st_mode)
    time.sleep(1.1)
    os.chmod(tree / "a" / "y", 0o640)
    ok(start(zone, tree, target, "--event_handler", handler, "--job_name", "m", launcher=Launcher("mpiexec", 2),
             job_dir=jobs))
    assert avus(zone, f"{target}/a/y")["filesystem::mode"][0] == str(os.stat(tree / "a" / "y").st_mode)
    assert catalog(zone, target).objects == source_view(tree).objects


def test_as_user_registers_as_the_proxied_user(zone, target, tree, tmp_path):
    if not zone.builtin:
        pytest.skip("creates a user; run against the built-in zone")
    user = f"proxied{os.getpid()}"
    with zone.session() as session:
        # a rodsadmin: a proxied rodsuser may not register in place under iRODS's default policy
        session.users.create(user, "rodsadmin")
        home = f"/{zone.zone}/home/{user}"
        if not session.collections.exists(home):
            session.collections.create(home)
        session.acls.set(__import__("irods.access", fromlist=["iRODSAccess"]).iRODSAccess("own", home, user))
    proxied_target = f"/{zone.zone}/home/{user}/ingest"
    ok(start(zone, tree, proxied_target, "--event_handler", os.path.join(HANDLERS, "proxy.py"),
             launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs", env={"AS_USER": user, "AS_ZONE": zone.zone}))
    with zone.session() as session:
        owners = {row[DataObject.owner_name] for row in session.query(DataObject.owner_name)
                  .filter(Collection.name == proxied_target)}
    assert owners == {user}


def test_retry_overrides_get_the_log_configuration_as_the_old_framework_passed_it(zone, target, tree, tmp_path):
    """max_retries(cls, logger, meta), timeout and delay: ``logger`` was meta["config"]["log"]
    in the old framework (a handler may call get_sync_logger with it); hpcingest passed its logger."""
    out = ok(start(zone, tree, target, "--event_handler", os.path.join(HANDLERS, "log_config.py"),
                   launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs"))
    assert "failed 0" in out and "retries 3" in out
    assert catalog(zone, target).objects == source_view(tree).objects


@pytest.mark.parametrize("hook", ["max_retries", "timeout", "delay"])
def test_a_retry_override_answering_no_number_fails_its_entry_not_the_job(zone, target, tree, tmp_path, hook):
    """``max_retries()`` returning "many" for one entry was a ValueError traceback from the
    sink that ended every rank; like a bad answer of any other override, it is now
    "FILE: max_retries() returned 'many', not a number", the failure of that entry alone."""
    handler = os.path.join(HANDLERS, "bad_number.py")
    jobs = tmp_path / "jobs"
    result = start(zone, tree, target, "--event_handler", handler, "--job_name", "n", launcher=Launcher("mpiexec", 2),
                   job_dir=jobs, env={"HOOK": hook, "BAD_VALUE": "many", "BAD_FOR": "/a/y"})
    stderr = result.stderr.decode()
    # --synchronous: an entry failed; a traceback only inside the failed_task log line (its einfo)
    assert result.returncode == 1 and not any(line.startswith("Traceback") for line in stderr.splitlines()), stderr
    assert "failed 1 " in result.stdout.decode()
    (line,) = [json.loads(text) for text in (jobs / "n" / "failures.jsonl").read_text().splitlines()]
    assert line["path"].endswith("/a/y") and line["error"] == "HandlerError"
    assert line["message"] == f"{handler}: {hook}() returned 'many', not a number"
    assert set(catalog(zone, target).objects) == {"x", "a/b/z"}
