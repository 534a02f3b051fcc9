"""Names and special entries end to end: links, sockets, undecodable names (in subdirectories
too), character_map, exclusions, unreadable files, and handlers that must be refused."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys

import pytest


from tests.ingest.conftest import OLD_HANDLERS, catalog, source_view, start
from tests.ingest.test_register import ok
from tests.launchers import Launcher
from tests.test_scan import unprivileged_prefix



def avus(zone, path: str) -> dict[str, tuple[str, str]]:
    with zone.session() as session:
        return {m.name: (m.value, m.units) for m in session.data_objects.get(path).metadata.items()}


def test_links_and_sockets_are_registered_with_their_avus(zone, target, tmp_path):
    root = tmp_path / "src"
    (root / "d").mkdir(parents=True)
    (root / "d" / "real").write_bytes(b"data")
    os.symlink("real", root / "d" / "link")
    os.symlink("/nowhere/at/all", root / "dangling")
    os.symlink("d", root / "dirlink")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock"))
    try:
        ok(start(zone, root, target, launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs"))
    finally:
        sock.close()
    got = catalog(zone, target)
    assert set(got.objects) == {"d/real", "d/link", "dangling", "dirlink", "sock"}
    assert got.objects["d/link"][0] == len("real")  # lstat size: the link itself
    real_root = os.path.realpath(root)
    assert avus(zone, f"{target}/d/link")["link_target"] == (f"{real_root}/d/real", "automated_ingest")
    assert avus(zone, f"{target}/dangling")["link_target"] == ("/nowhere/at/all", "automated_ingest")
    assert avus(zone, f"{target}/sock")["socket_target"] == ("socket", "automated_ingest")
    assert "link_target" not in avus(zone, f"{target}/d/real")


def test_undecodable_names_in_subdirectories(zone, target, tmp_path):
    root = tmp_path / "src"
    sub = os.path.join(os.fsencode(root), b"sub")
    os.makedirs(sub)
    bad = os.path.join(sub, b"caf\xe9.txt")
    with open(bad, "wb") as f:
        f.write(b"12345")
    with open(os.path.join(os.fsencode(root), b"top\xff"), "wb") as f:
        f.write(b"1")
    ok(start(zone, root, target, launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs"))
    got = catalog(zone, target)
    assert got.objects == source_view(root).objects
    names = [rel for rel in got.objects if rel.startswith("sub/")]
    assert len(names) == 1 and names[0].startswith("sub/irods_UnicodeEncodeError_")
    value, units = avus(zone, f"{target}/{names[0]}")["irods::automated_ingest::UnicodeEncodeError"]
    assert base64.b64decode(value) == os.path.realpath(bad)
    assert units == "python3.base64.b64encode(full_path_of_source_file)"


def test_character_map_renames_and_records_the_original(zone, target, tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    (root / "test-file~with@5!non.alphas").write_bytes(b"abc")
    ok(start(zone, root, target, "--event_handler", os.path.join(OLD_HANDLERS, "register_using_char_map.py"),
             launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs"))
    (name,) = catalog(zone, target).objects
    assert name.startswith("test_file_with_5_non_alphas_")
    value, _ = avus(zone, f"{target}/{name}")["irods::automated_ingest::character_map"]
    assert base64.b64decode(value) == os.fsencode(os.path.realpath(root / "test-file~with@5!non.alphas"))


def test_exclusions_apply_to_start(zone, target, tmp_path):
    root = tmp_path / "src"
    (root / "skip").mkdir(parents=True)
    (root / "skip" / "x").write_bytes(b"1")
    for name in ("keep.txt", "drop.tmp", "5"):
        (root / name).write_bytes(b"1")
    os.symlink("keep.txt", root / "link")
    ok(start(zone, root, target, "--exclude_file_name", r".*\.tmp$", "--exclude_directory_name", r".*/skip$",
             "--exclude_file_type", "link", launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs"))
    got = catalog(zone, target)
    assert set(got.objects) == {"keep.txt", "5"}
    assert got.collections == {""}


def test_unreadable_file_is_skipped_and_reported_not_failed(zone, target, world_dir):
    if not zone.builtin:
        pytest.skip("registering a file the server cannot see; needs the built-in zone on this host")
    root = os.path.join(world_dir, "src")
    os.makedirs(os.path.join(root, "closed"))
    for name in ("a", "b", "secret"):
        with open(os.path.join(root, name), "w") as f:
            f.write("data")
    os.chmod(os.path.join(root, "closed"), 0o000)
    os.chmod(os.path.join(root, "secret"), 0o000)
    prefix = unprivileged_prefix(world_dir)
    jobs = os.path.join(world_dir, "jobs")
    # .irodsA is obfuscated with the uid that wrote it, so another user gets the credentials the
    # other way the old framework supports: the five IRODS_* variables (never process arguments)
    env = {"HOME": world_dir, "IRODS_ENVIRONMENT_FILE": "", "IRODS_AUTHENTICATION_FILE": "",
           "IRODS_HOST": zone.host, "IRODS_PORT": str(zone.port), "IRODS_USER_NAME": zone.user,
           "IRODS_ZONE_NAME": zone.zone, "IRODS_PASSWORD": zone.password}
    command = [*prefix, str(Launcher("mpiexec", 2).command([sys.executable])[0]), "-n", "2", sys.executable, "-m",
               "hpcingest", "start", root, target, "--job_dir", jobs, "--job_name", "u", "--synchronous"]
    result = subprocess.run(command, capture_output=True, env={**os.environ, **env}, cwd=world_dir, timeout=600)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert "skipped 2" in result.stdout.decode()
    assert set(catalog(zone, target).objects) == {"a", "b"}
    report = open(os.path.join(jobs, "u", "failures.jsonl")).read()
    assert "closed" in report and "secret" in report and "EACCES" in report


@pytest.mark.parametrize("handler, message", [
    ("broken_syntax.py", "broken_syntax.py"),
    ("broken_import.py", "broken_import.py"),
    ("broken_no_class.py", "event_handler"),
    ("broken_char_map_key.py", "character_map"),
    ("broken_operation.py", "Operation"),
])
def test_bad_handler_files_are_refused_before_work(zone, target, tmp_path, handler, message):
    root = tmp_path / "src"
    root.mkdir()
    (root / "f").write_bytes(b"1")
    result = start(zone, root, target, "--event_handler", os.path.join(OLD_HANDLERS, handler),
                   launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs")
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert message in stderr and "Traceback" not in stderr
    with zone.session() as session:
        assert not session.collections.exists(target)


def test_missing_handler_file_and_legacy_options(zone, target, tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    result = start(zone, root, target, "--event_handler", str(tmp_path / "nope.py"),
                   launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs")
    assert result.returncode == 2 and b"nope.py" in result.stderr
    result = start(zone, root, target, "--file_queue", "q", "--redis_host", "h", launcher=Launcher("mpiexec", 2),
                   job_dir=tmp_path / "jobs")
    assert result.returncode == 0, result.stderr.decode()
    warnings = [line for line in result.stderr.decode().splitlines() if "Celery/Redis options" in line]
    assert len(warnings) == 1 and "--redis_host, --file_queue" in warnings[0]  # one line names them all
