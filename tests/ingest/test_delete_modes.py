"""Delete modes (peer.md §3.9): the old tool's 24 operation x mode cases and the emptied directory
(#288), for files and for S3 (which the old tool refuses), and what hpcingest adds: remapped names, exclusions and unreadable entries are never
taken for deleted ones, the root target stays, restored files come back, and funnelled ranks."""

from __future__ import annotations

import itertools
import os
import posixpath
import shutil

import pytest

from hpcingest.compat.utils import DeleteMode, Operation, compatible_delete_modes
from tests.ingest.conftest import HANDLERS, catalog, hooks, start
from tests.ingest.test_register import ok
from tests.launchers import Launcher

COUNTING = os.path.join(HANDLERS, "counting.py")
_buckets = itertools.count()
TWO = Launcher("mpiexec", 2)


def make_tree(root) -> None:
    """The old test's tree: a top-level file, a shallow directory with a file, empty deep ones."""
    (root / "shallow_subdirectory").mkdir(parents=True)
    (root / "top_level_file.txt").write_text("top")
    (root / "shallow_subdirectory" / "file.txt").write_text("shallow")
    for deep in ("a/b/c", "x/y/z"):
        (root / "deep_subdirectory" / deep).mkdir(parents=True)


class FileSource:
    """The old test's tree on the filesystem."""

    def __init__(self, tmp_path) -> None:
        self.root = tmp_path / "src"
        make_tree(self.root)
        self.src, self.args = self.root, ()

    def remove_shallow_file(self) -> None:
        (self.root / "shallow_subdirectory" / "file.txt").unlink()

    def remove_shallow_directory(self) -> None:
        shutil.rmtree(self.root / "shallow_subdirectory")


class BucketSource:
    """The same tree in a bucket; empty "directories" are folder markers."""

    KEYS = {"src/top_level_file.txt": b"top", "src/shallow_subdirectory/file.txt": b"shallow",
            "src/shallow_subdirectory/": b"", "src/deep_subdirectory/a/b/c/": b"",
            "src/deep_subdirectory/x/y/z/": b""}

    def __init__(self, tmp_path, s3_server) -> None:
        self.s3 = s3_server
        self.bucket = f"delete{os.getpid()}-{next(_buckets)}"
        s3_server.create_bucket(self.bucket)
        s3_server.put_objects(self.bucket, self.KEYS)
        self.src, self.args = f"/{self.bucket}/src", tuple(s3_server.options())

    def remove_shallow_file(self) -> None:
        self.s3.delete_objects(self.bucket, ["src/shallow_subdirectory/file.txt"])

    def remove_shallow_directory(self) -> None:
        self.s3.delete_objects(self.bucket, ["src/shallow_subdirectory/file.txt", "src/shallow_subdirectory/"])


def source_of(kind: str, tmp_path, request):
    return FileSource(tmp_path) if kind == "files" else BucketSource(tmp_path, request.getfixturevalue("s3_server"))


def in_trash(zone, target: str, rel: str) -> bool:
    """Whether TRASH put ``target/rel`` under /zone/trash/home/<user>/..."""
    home = f"/{zone.zone}/home/"
    trashed = f"/{zone.zone}/trash/home/" + target[len(home):] + "/" + rel
    with zone.session() as session:
        return session.collections.exists(trashed)


def run(zone, src, target, tmp_path, operation: str, mode: str, *args, launcher=TWO, **env):
    return start(zone, src, target, "--event_handler", COUNTING, "--job_name", "d", *args, launcher=launcher,
                 job_dir=tmp_path / "jobs",
                 env={"OPERATION": operation, "DELETE_MODE": mode, "HOOK_LOG": str(tmp_path / "hooks"),
                      "TO_RESOURCE": zone.default_resource if operation == "REGISTER_AS_REPLICA_SYNC" else "",
                      **env})


CASES = [(op, mode) for op in Operation for mode in DeleteMode]


@pytest.mark.parametrize("kind", ["files", "s3"])
@pytest.mark.parametrize("operation, mode", CASES, ids=[f"{o.name}-{m.name}" for o, m in CASES])
def test_operation_and_delete_mode(zone, target, tmp_path, request, kind, operation, mode):
    source = source_of(kind, tmp_path, request)
    first = run(zone, source.src, target, tmp_path, operation.name, mode.name, *source.args)
    if mode not in compatible_delete_modes(operation):
        # refused before anything is written: one clear error, and no destination at all
        assert first.returncode == 2, first.stdout + first.stderr
        assert b"delete_mode" in first.stderr and b"Traceback" not in first.stderr
        with zone.session() as session:
            assert not session.collections.exists(target)
        return
    ok(first)
    if operation is Operation.NO_OP:
        assert catalog(zone, target).objects == {}
        return
    assert "shallow_subdirectory/file.txt" in catalog(zone, target).objects
    source.remove_shallow_directory()
    out = ok(run(zone, source.src, target, tmp_path, operation.name, mode.name, *source.args))
    after = catalog(zone, target)
    assert "top_level_file.txt" in after.objects and "deep_subdirectory/x/y/z" in after.collections
    gone = "shallow_subdirectory" not in after.collections
    if mode is DeleteMode.DO_NOT_DELETE:
        assert not gone and "shallow_subdirectory/file.txt" in after.objects
        return
    assert gone and "shallow_subdirectory/file.txt" not in after.objects
    assert "deleted (gone from the source) 1 objects, 1 collections" in out
    assert in_trash(zone, target, "shallow_subdirectory") == (mode is DeleteMode.TRASH)
    seen = [hook for hook, _ in hooks(tmp_path / "hooks")]
    assert seen.count("pre_data_obj_delete") == seen.count("post_data_obj_delete") == 1
    assert seen.count("pre_coll_delete") == seen.count("post_coll_delete") == 1


@pytest.mark.parametrize("kind", ["files", "s3"])
def test_emptying_a_directory_keeps_its_collection_issue_288(zone, target, tmp_path, request, kind):
    source = source_of(kind, tmp_path, request)
    ok(run(zone, source.src, target, tmp_path, "REGISTER_SYNC", "UNREGISTER", *source.args))
    source.remove_shallow_file()  # the directory (for S3: its folder marker) stays
    ok(run(zone, source.src, target, tmp_path, "REGISTER_SYNC", "UNREGISTER", *source.args))
    after = catalog(zone, target)
    assert "shallow_subdirectory" in after.collections
    assert "shallow_subdirectory/file.txt" not in after.objects
    assert "top_level_file.txt" in after.objects


def test_excluded_unreadable_and_remapped_entries_are_not_deleted(zone, target, tmp_path):
    src = tmp_path / "src"
    (src / "keep").mkdir(parents=True)
    (src / "keep" / "skipme.tmp").write_text("excluded in the second pass")
    (src / "keep" / "plain.txt").write_text("plain")
    (src / "locked").mkdir()
    (src / "locked" / "inner.txt").write_text("inside a directory that becomes unreadable")
    undecodable = os.path.join(os.fsencode(src / "keep"), b"caf\xe9.txt")
    with open(undecodable, "wb") as f:
        f.write(b"latin-1 name")
    (src / "keep" / "gone.txt").write_text("removed before the second pass")
    ok(run(zone, src, target, tmp_path, "REGISTER_SYNC", "UNREGISTER"))
    first = catalog(zone, target)
    assert len([k for k in first.objects if k.startswith("keep/")]) == 4
    (src / "keep" / "gone.txt").unlink()
    os.chmod(src / "locked", 0o000)
    try:
        # as root the locked directory is still readable, so unreadable is made real by excluding
        # it too: either way it must not look deleted
        out = ok(run(zone, src, target, tmp_path, "REGISTER_SYNC", "UNREGISTER",
                     "--exclude_file_name", r".*\.tmp$", "--exclude_directory_name", r".*/locked$"))
    finally:
        os.chmod(src / "locked", 0o755)
    after = catalog(zone, target)
    assert set(first.objects) - set(after.objects) == {"keep/gone.txt"}
    assert "locked/inner.txt" in after.objects and "locked" in after.collections
    assert "deleted (gone from the source) 1 objects, 0 collections" in out


def test_the_root_target_stays_when_the_source_is_emptied(zone, target, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    ok(run(zone, src, target, tmp_path, "PUT_SYNC", "NO_TRASH"))
    for child in list(src.iterdir()):
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    out = ok(run(zone, src, target, tmp_path, "PUT_SYNC", "NO_TRASH"))
    after = catalog(zone, target)
    assert after.objects == {} and after.collections == {""}
    # shallow_subdirectory, deep_subdirectory and its a, a/b, a/b/c, x, x/y, x/y/z
    assert "deleted (gone from the source) 2 objects, 8 collections" in out
    assert not in_trash(zone, target, "deep_subdirectory")


def test_a_restored_file_with_its_old_mtime_comes_back(zone, target, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    (src / "shallow_subdirectory" / "nested").mkdir()
    (src / "shallow_subdirectory" / "nested" / "deep.txt").write_text("deep")
    backup = tmp_path / "backup"
    shutil.copytree(src / "shallow_subdirectory", backup, copy_function=shutil.copy2)
    ok(run(zone, src, target, tmp_path, "REGISTER_SYNC", "UNREGISTER"))
    shutil.rmtree(src / "shallow_subdirectory")
    ok(run(zone, src, target, tmp_path, "REGISTER_SYNC", "UNREGISTER"))
    assert "shallow_subdirectory" not in catalog(zone, target).collections
    shutil.copytree(backup, src / "shallow_subdirectory", copy_function=shutil.copy2)  # mtimes as before
    os.utime(src / "shallow_subdirectory", (1_000_000_000, 1_000_000_000))
    ok(run(zone, src, target, tmp_path, "REGISTER_SYNC", "UNREGISTER"))
    after = catalog(zone, target)
    assert {"shallow_subdirectory/file.txt", "shallow_subdirectory/nested/deep.txt"} <= set(after.objects)


def test_ranks_without_a_connection_hand_their_sweeps_to_connected_ones(zone, target, tmp_path):
    src = tmp_path / "src"
    for d in range(12):
        (src / f"d{d:02d}").mkdir(parents=True)
        for f in range(5):
            (src / f"d{d:02d}" / f"f{f}").write_text(f"{d}/{f}")
    ok(run(zone, src, target, tmp_path, "REGISTER_SYNC", "UNREGISTER", "--irods_connections", "1",
           launcher=Launcher("mpiexec", 4)))
    for d in range(12):
        (src / f"d{d:02d}" / "f0").unlink()
    shutil.rmtree(src / "d11")
    out = ok(run(zone, src, target, tmp_path, "REGISTER_SYNC", "UNREGISTER", "--irods_connections", "1",
                 launcher=Launcher("mpiexec", 4)))
    after = catalog(zone, target)
    assert len(after.objects) == 11 * 4 and "d11" not in after.collections
    assert "ranks with iRODS connections 1" in out
    assert "deleted (gone from the source) 16 objects, 1 collections" in out
    seen = [(hook, posixpath.relpath(path, target)) for hook, path in hooks(tmp_path / "hooks")]
    assert sorted(p for h, p in seen if h == "post_data_obj_delete") == sorted(
        [f"d{d:02d}/f0" for d in range(12)] + [f"d11/f{f}" for f in range(1, 5)])
