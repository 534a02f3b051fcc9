"""The PUT family end to end: content lands in iRODS, updates follow the rules of each mode."""

from __future__ import annotations

import os
import time

import pytest

from tests.ingest.conftest import HANDLERS, catalog, start
from tests.ingest.test_register import ok


def read_object(zone, path: str) -> bytes:
    with zone.session() as session:
        with session.data_objects.open(path, "r") as f:
            return f.read()


@pytest.fixture
def small_tree(tmp_path):
    root = tmp_path / "src"
    (root / "sub").mkdir(parents=True)
    for i in range(12):
        (root / ("sub" if i % 2 else "") / f"file{i}").write_bytes(bytes([65 + i]) * (i * 100 + 1))
    return root


def put(zone, tree, target, operation, tmp_path, *extra, job="p"):
    return start(zone, tree, target, "--event_handler", os.path.join(HANDLERS, "counting.py"), "--job_name", job,
                 *extra, job_dir=tmp_path / "jobs",
                 env={"OPERATION": operation, "HOOK_LOG": str(tmp_path / "hooks.log")})


def contents(zone, target, tree) -> dict[str, bytes]:
    return {rel: read_object(zone, f"{target}/{rel}") for rel in catalog(zone, target).objects}


def expected_contents(tree) -> dict[str, bytes]:
    return {os.path.relpath(p, tree): p.read_bytes() for p in tree.rglob("*") if p.is_file()}


def test_put_uploads_content_and_leaves_existing_objects_alone(zone, target, small_tree, tmp_path):
    ok(put(zone, small_tree, target, "PUT", tmp_path))
    assert contents(zone, target, small_tree) == expected_contents(small_tree)
    original = expected_contents(small_tree)
    time.sleep(1.1)
    (small_tree / "file0").write_bytes(b"rewritten")
    out = ok(put(zone, small_tree, target, "PUT", tmp_path))
    assert "existing left alone (PUT) 1" in out
    assert contents(zone, target, small_tree) == original


def test_put_sync_rewrites_changed_files(zone, target, small_tree, tmp_path):
    ok(put(zone, small_tree, target, "PUT_SYNC", tmp_path))
    time.sleep(1.1)
    (small_tree / "file0").write_bytes(b"rewritten and shorter")
    (small_tree / "sub" / "file1").write_bytes(b"z" * 5000)
    out = ok(put(zone, small_tree, target, "PUT_SYNC", tmp_path))
    assert "updated PUT_SYNC 2" in out
    assert contents(zone, target, small_tree) == expected_contents(small_tree)


def test_put_append_appends_and_reputs_a_shrunk_file(zone, target, small_tree, tmp_path):
    ok(put(zone, small_tree, target, "PUT_APPEND", tmp_path))
    time.sleep(1.1)
    with open(small_tree / "file2", "ab") as f:
        f.write(b"appended tail" * 1000)
    (small_tree / "file4").write_bytes(b"shrunk")
    out = ok(put(zone, small_tree, target, "PUT_APPEND", tmp_path))
    assert "updated PUT_APPEND 2" in out
    assert contents(zone, target, small_tree) == expected_contents(small_tree)


def test_large_file_goes_through_parallel_put(zone, target, tmp_path):
    root = tmp_path / "big"
    root.mkdir()
    blob = os.urandom(1 << 20) * 40  # 40 MiB: above PRC's 32 MiB parallel threshold
    (root / "big.bin").write_bytes(blob)
    ok(put(zone, root, target, "PUT", tmp_path))
    assert read_object(zone, f"{target}/big.bin") == blob


def test_fifos_and_sockets_are_never_opened_by_put(zone, target, small_tree, tmp_path):
    import socket

    os.mkfifo(small_tree / "a-fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(small_tree / "a-socket"))
    try:
        result = put(zone, small_tree, target, "PUT", tmp_path, job="fifo")
    finally:
        sock.close()
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "skipped 2" in out
    report = (tmp_path / "jobs" / "fifo" / "failures.jsonl").read_text()
    assert "a-fifo" in report and "a-socket" in report and '"kind": "skipped"' in report
    assert "a-fifo" not in catalog(zone, target).objects


def test_verify_checksum_checks_every_put(zone, target, small_tree, tmp_path):
    out = ok(put(zone, small_tree, target, "PUT", tmp_path, "--verify_checksum", job="ck"))
    assert "failed 0" in out
    with zone.session() as session:
        for rel in expected_contents(small_tree):
            assert session.data_objects.get(f"{target}/{rel}").checksum
