"""Sources that change under the ingest or are not what they seem: a file swapped for a FIFO
between stat and open, a file that grows while it is appended, FIFOs and devices under
REGISTER, paths past PATH_MAX, long undecodable names under PUT, a link's AVU lost on the way."""

from __future__ import annotations

import base64
import json
import os
import stat
import time

import pytest

from benchmarks import latfs
from hpcingest.naming import UNICODE_ERROR_ATTRIBUTE, UNICODE_ERROR_DIGEST_PREFIX
from hpcingest.sources.posix_open import PATH_CHUNK
from tests.ingest.conftest import HANDLERS, OLD_HANDLERS, catalog, start
from tests.ingest.test_put import read_object
from tests.ingest.test_register import ok
from tests.launchers import Launcher

SWAPPING = os.path.join(HANDLERS, "swapping.py")


def failures(jobs, job: str) -> list[dict]:
    path = jobs / job / "failures.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def swapping(zone, src, target, jobs, operation, action, name, *extra, job="swap", **env):
    return start(zone, src, target, "--event_handler", SWAPPING, "--job_name", job, *extra,
                 launcher=Launcher("mpiexec", 2), job_dir=jobs,
                 env={"OPERATION": operation, "SWAP_ACTION": action, "SWAP_NAME": name,
                      **{k: str(v) for k, v in env.items()}})


@pytest.mark.parametrize("operation", ["PUT", "PUT_SYNC"])
def test_a_file_swapped_for_a_fifo_is_refused_and_the_job_goes_on(zone, target, tmp_path, operation):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        (src / f"f{i}").write_bytes(b"x" * (i + 1))
    result = swapping(zone, src, target, tmp_path / "jobs", operation, "fifo", "f3")
    out = result.stdout.decode()
    assert result.returncode == 1, result.stderr.decode(errors="replace") + out  # --synchronous: one failed
    assert "failed 1" in out
    assert set(catalog(zone, target).objects) == {"f0", "f1", "f2", "f4", "f5"}
    [failure] = failures(tmp_path / "jobs", "swap")
    assert failure["error"] == "SOURCE_CHANGED" and "FIFO" in failure["message"]


def test_a_file_replaced_by_another_between_stat_and_open_is_not_read(zone, target, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"original")
    result = swapping(zone, src, target, tmp_path / "jobs", "PUT", "other", "f")
    assert result.returncode == 1 and "failed 1" in result.stdout.decode()
    assert catalog(zone, target).objects == {}
    assert "another file" in failures(tmp_path / "jobs", "swap")[0]["message"]


def test_put_append_copies_exactly_the_statted_bytes_of_a_growing_file(zone, target, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    log = src / "log"
    log.write_bytes(b"a" * 1000)
    jobs = tmp_path / "jobs"
    ok(swapping(zone, src, target, jobs, "PUT_APPEND", "grow", "other-name"))
    with open(log, "ab") as f:
        f.write(b"b" * 500)  # statted by the next pass: 1500 bytes
    # ... and 70,000 more arrive between that stat and the copy
    out = ok(swapping(zone, src, target, jobs, "PUT_APPEND", "grow", "log", SWAP_BYTES=70_000))
    assert "updated PUT_APPEND 1" in out
    assert read_object(zone, f"{target}/log") == b"a" * 1000 + b"b" * 500
    out = ok(swapping(zone, src, target, jobs, "PUT_APPEND", "grow", "other-name"))  # the rest, next pass
    assert read_object(zone, f"{target}/log") == log.read_bytes()


@pytest.mark.skipif(latfs.unavailable_reason() is not None, reason=f"no latfs here: {latfs.unavailable_reason()}")
def test_a_file_grown_in_the_second_of_its_stat_on_a_filesystem_of_whole_seconds_is_appended_next_pass(
        zone, target, tmp_path):
    """Lustre keeps file times in whole seconds: a write a moment after the stat is stamped with
    the start of that second, before the stat.  The sync time recorded was the moment the batch
    was taken, and every later pass took the file for unchanged and never appended its tail
    (latfs shows the times so here)."""
    src = tmp_path / "src"
    src.mkdir()
    log = src / "log"
    log.write_bytes(b"a" * 1000)
    jobs = tmp_path / "jobs"
    with latfs.mounted(str(src), whole_seconds=True) as fs:
        assert os.stat(os.path.join(fs.mountpoint, "log")).st_mtime_ns % 10**9 == 0
        ok(swapping(zone, fs.mountpoint, target, jobs, "PUT_APPEND", "grow", "other-name"))
        time.sleep(1.05 - time.time() % 1)  # into the next second: the first pass's sync is before it
        with open(log, "ab") as f:
            f.write(b"b" * 500)  # statted by the next pass: 1500 bytes, and 70,000 more right after
        out = ok(swapping(zone, fs.mountpoint, target, jobs, "PUT_APPEND", "grow", "log", SWAP_BYTES=70_000,
                          SWAP_UNDER=str(src)))
        assert "updated PUT_APPEND 1" in out
        assert read_object(zone, f"{target}/log") == b"a" * 1000 + b"b" * 500
        out = ok(swapping(zone, fs.mountpoint, target, jobs, "PUT_APPEND", "grow", "other-name"))
    assert "updated PUT_APPEND 1" in out  # the rest, next pass
    assert read_object(zone, f"{target}/log") == log.read_bytes()


@pytest.mark.skipif(latfs.unavailable_reason() is not None, reason=f"no latfs here: {latfs.unavailable_reason()}")
def test_put_opens_each_file_from_its_directory_kept_open(zone, target, tmp_path):
    """Every upload opened its file's directory by its path from the root: a lookup per path
    component per file where the client caches nothing (234 lookups for the 47 entries of this
    8-deep tree, 101 now; the walk alone needs about one per entry)."""
    src = tmp_path / "src"
    level = src
    for depth in range(8):
        level.mkdir(parents=True)
        for i in range(5):
            (level / f"f{i}").write_bytes(b"%d-%d" % (depth, i))
        level = level / f"d{depth}"
    entries = 8 * 6 - 1
    with latfs.mounted(str(src), threads=4) as fs:
        before = fs.counters()
        out = ok(start(zone, fs.mountpoint, target, "--event_handler", os.path.join(OLD_HANDLERS, "put.py"),
                       launcher=Launcher("mpiexec", 1), job_dir=tmp_path / "jobs"))
        used = fs.counters() - before
    assert "created PUT 40" in out, out
    assert used.count("open") >= 40  # every file was read through latfs
    assert used.count("lookup") <= 2.5 * entries, used.ops
    assert read_object(zone, f"{target}/d0/d1/d2/d3/d4/d5/d6/f4") == b"7-4"


def test_put_of_a_file_modified_after_its_stat_fails_and_leaves_nothing(zone, target, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"v1" * 100)
    result = swapping(zone, src, target, tmp_path / "jobs", "PUT", "grow", "f", SWAP_BYTES=10)
    assert result.returncode == 1 and "failed 1" in result.stdout.decode()
    assert catalog(zone, target).objects == {}
    assert "modified since it was listed" in failures(tmp_path / "jobs", "swap")[0]["message"]
    ok(swapping(zone, src, target, tmp_path / "jobs", "PUT", "grow", "other-name"))
    assert read_object(zone, f"{target}/f") == (src / "f").read_bytes()


def test_register_skips_fifos_and_devices_and_keeps_sockets_and_links(zone, target, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "file").write_bytes(b"data")
    os.mkfifo(src / "fifo")
    os.symlink("file", src / "link")
    devices = []
    try:
        os.mknod(src / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # like /dev/zero
        devices.append("zero")
    except PermissionError:
        pass  # no CAP_MKNOD here: the FIFO alone makes the point
    result = start(zone, src, target, "--job_name", "special", launcher=Launcher("mpiexec", 2),
                   job_dir=tmp_path / "jobs")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode(errors="replace") + out  # skipped is not failed
    assert set(catalog(zone, target).objects) == {"file", "link"}
    skipped = {os.path.basename(f["path"]): f for f in failures(tmp_path / "jobs", "special")}
    assert set(skipped) == {"fifo", *devices}
    assert skipped["fifo"]["kind"] == "skipped" and skipped["fifo"]["error"] == "not_registered_pipe"


def make_deep_directory(base, levels: int) -> str:
    """``base/dddd.../dddd...``: longer than PATH_MAX, made one openat() at a time."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(levels):
        os.mkdir("d" * 250, dir_fd=fd)
        next_fd = os.open("d" * 250, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = next_fd
    os.close(fd)
    return os.path.join(base, *["d" * 250] * levels)


def test_put_from_a_source_deeper_than_path_max(zone, target, tmp_path, monkeypatch):
    """The source root itself is past PATH_MAX (logical paths stay short): every open is piecewise."""
    deep = make_deep_directory(tmp_path, levels=PATH_CHUNK * 2 // 250)
    assert len(os.fsencode(deep)) > 4096
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        relative = os.path.relpath(deep, tmp_path)
        for part in relative.split("/"):
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        os.mkdir("src", dir_fd=fd)
        src_fd = os.open("src", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        for name, data in (("small", b"s" * 100), ("empty", b"")):
            with open(os.open(name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=src_fd), "wb") as f:
                f.write(data)
        os.close(src_fd)
    finally:
        os.close(fd)
    monkeypatch.chdir(tmp_path)  # SRC is given relative to here: only the ranks' own opens are long
    out = ok(start(zone, os.path.join(relative, "src"), target, "--event_handler",
                   os.path.join(OLD_HANDLERS, "put.py"), launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs"))
    assert "failed 0" in out
    assert read_object(zone, f"{target}/small") == b"s" * 100
    assert read_object(zone, f"{target}/empty") == b""


def test_files_whose_paths_are_too_long_to_register_are_skipped_not_registered_cut(zone, target, tmp_path):
    """iRODS keeps at most 1,087 bytes of a registered file's path (MAX_NAME_LEN) and cuts a longer
    one without an error: the catalog then named another file, or none.  Such files are skipped
    and reported; their directories still become collections, and PUT copies them (above)."""
    deep = make_deep_directory(tmp_path, levels=5)  # 5 x 251 bytes below tmp_path: past 1,087
    src = os.path.join(deep, "src")
    os.makedirs(os.path.join(src, "sub"))
    for name in ("a", "b", "c", "sub/d"):
        with open(os.path.join(src, name), "wb") as f:
            f.write(name.encode())
    result = start(zone, src, target, "--job_name", "deep", launcher=Launcher("mpiexec", 2), job_dir=tmp_path / "jobs")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode(errors="replace") + out  # skipped is not failed
    assert "skipped 4" in out
    got = catalog(zone, target)
    assert got.objects == {} and "sub" in got.collections
    reported = failures(tmp_path / "jobs", "deep")
    assert sorted(os.path.relpath(f["path"], src) for f in reported) == ["a", "b", "c", "sub/d"]
    assert {(f["kind"], f["error"]) for f in reported} == {("skipped", "physical_path_too_long")}
    assert "would record it cut" in reported[0]["message"]


def test_entries_whose_irods_paths_are_too_long_are_skipped_and_the_rest_goes_in(zone, target, tmp_path):
    """A logical path past 1,087 bytes is refused by iRODS (USER_PACKSTRUCT_INPUT_ERR) before the
    request runs: hpcingest skips it, and everything under it, with one clear reason each."""
    src = tmp_path / "src"
    long_dir = src / ("L" * 250) / ("M" * 250) / ("N" * 250) / ("O" * 250) / ("P" * 250)
    long_dir.mkdir(parents=True)
    (long_dir / "too-long").write_bytes(b"x")
    (src / "short").write_bytes(b"y")
    jobs = tmp_path / "jobs"
    result = start(zone, src, target, "--event_handler", os.path.join(OLD_HANDLERS, "put.py"), "--job_name", "long",
                   launcher=Launcher("mpiexec", 2), job_dir=jobs)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode(errors="replace") + out
    reported = {os.path.relpath(f["path"], src): f for f in failures(jobs, "long")}
    too_long = [p for p in reported if len(f"{target}/{p}".encode()) > 1087]
    assert too_long and sorted(too_long) == sorted(reported)  # exactly the entries past the limit
    assert {(f["kind"], f["error"]) for f in reported.values()} == {("skipped", "USER_PACKSTRUCT_INPUT_ERR")}
    assert read_object(zone, f"{target}/short") == b"y"
    assert f"{'L' * 250}/{'M' * 250}" in catalog(zone, target).collections


def test_long_undecodable_names_under_put_get_bounded_names_and_their_avu(zone, target, tmp_path):
    src = tmp_path / "src"
    long_dir = os.fsencode(src) + b"/" + b"caf\xe9-" + b"D" * 150
    os.makedirs(long_dir)
    names = [b"r\xe9sum\xe9", b"x" * 200 + b"\xff"]
    for name in names:
        with open(long_dir + b"/" + name, "wb") as f:
            f.write(name)
    jobs = tmp_path / "jobs"
    out = ok(start(zone, src, target, "--event_handler", os.path.join(OLD_HANDLERS, "put.py"), "--job_name", "long",
                   launcher=Launcher("mpiexec", 2), job_dir=jobs))
    assert "failed 0" in out
    got = catalog(zone, target)
    assert len(got.objects) == 2 and len(got.collections) == 2
    real = os.path.realpath(os.fsencode(src))
    with zone.session() as session:
        [collection] = [c for c in got.collections if c]
        assert collection.startswith(UNICODE_ERROR_DIGEST_PREFIX)  # b64 of its path would pass 255 bytes
        coll_avus = {m.name: m.value for m in session.collections.get(f"{target}/{collection}").metadata.items()}
        assert base64.b64decode(coll_avus[UNICODE_ERROR_ATTRIBUTE]) == real + long_dir[len(os.fsencode(src)):]
        originals = set()
        for relative in got.objects:
            assert all(len(part.encode()) <= 255 for part in relative.split("/"))
            obj = session.data_objects.get(f"{target}/{relative}")
            source = base64.b64decode({m.name: m.value for m in obj.metadata.items()}[UNICODE_ERROR_ATTRIBUTE])
            originals.add(source)
            assert read_object(zone, f"{target}/{relative}") == os.path.basename(source)
        assert originals == {os.path.realpath(long_dir) + b"/" + name for name in names}
    again = ok(start(zone, src, target, "--event_handler", os.path.join(OLD_HANDLERS, "put.py"), "--job_name", "long",
                     launcher=Launcher("mpiexec", 2), job_dir=jobs))
    assert "failed 0" in again and catalog(zone, target) == got


def test_a_link_whose_avu_was_lost_gets_it_back_on_the_next_pass(zone, target, tmp_path):
    """A pass that stopped between a link's register and its AVU left the object without it:
    the next pass that looks at the link adds it (it used to say "metadata only")."""
    src = tmp_path / "src"
    src.mkdir()
    os.symlink("/some/target", src / "link")
    jobs = tmp_path / "jobs"
    ok(start(zone, src, target, "--job_name", "l", launcher=Launcher("mpiexec", 2), job_dir=jobs))
    with zone.session() as session:
        session.data_objects.get(f"{target}/link").metadata.remove_all()
    ok(start(zone, src, target, "--job_name", "l", "--ignore_cache", launcher=Launcher("mpiexec", 2),
             job_dir=jobs))
    with zone.session() as session:
        metadata = {m.name: m.value for m in session.data_objects.get(f"{target}/link").metadata.items()}
    assert metadata == {"link_target": "/some/target"}
