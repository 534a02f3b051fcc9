"""`hpcingest sample-tree`: a tree is made only where nothing is, and never through a link."""

from __future__ import annotations

import os

import pytest

from hpcingest import sample
from tests.launchers import hpcingest_argv, run


def test_a_directory_with_something_in_it_is_refused_and_left_as_it_is(tmp_path):
    """Run as root in a shared directory, ``sample-tree DIR`` overwrote the files in DIR and wrote
    through a link planted there under a sample file's name: its target was overwritten."""
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"keep me")
    run_dir = tmp_path / "d" / "group00" / "run0000"
    run_dir.mkdir(parents=True)
    os.symlink(precious, run_dir / "data000001.bin")
    (run_dir / "data000000.bin").write_bytes(b"mine")
    result = run(None, hpcingest_argv("sample-tree", str(tmp_path / "d"), "--files", "3"))
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "is not empty" in stderr and "Traceback" not in stderr, stderr
    assert stderr.count("\n") == 1
    assert precious.read_bytes() == b"keep me" and (run_dir / "data000000.bin").read_bytes() == b"mine"
    assert os.readlink(run_dir / "data000001.bin") == str(precious)
    a_file = tmp_path / "file"
    a_file.write_bytes(b"mine")
    result = run(None, hpcingest_argv("sample-tree", str(a_file), "--files", "3"))
    assert result.returncode == 2 and b"is not a directory" in result.stderr and b"Traceback" not in result.stderr
    assert a_file.read_bytes() == b"mine"


def test_an_empty_or_new_directory_gets_the_tree(tmp_path):
    (tmp_path / "empty").mkdir()
    for name in ("empty", "new"):
        result = run(None, hpcingest_argv("sample-tree", str(tmp_path / name), "--files", "3"))
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        assert b"4 files" in result.stdout  # 3 and the non-UTF-8 name


def test_a_negative_count_is_refused(tmp_path):
    """``--files -5`` made a tree of "1 files" (the extra non-UTF-8 one) and exited 0."""
    result = run(None, hpcingest_argv("sample-tree", str(tmp_path / "t"), "--files", "-5"))
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "cannot be negative" in stderr and "Traceback" not in stderr, stderr
    assert not os.path.exists(tmp_path / "t")


def test_a_sample_file_is_created_never_written_through_a_link(tmp_path):
    """The emptiness check runs before the tree is made; a link planted meanwhile under a sample
    file's name must still not be followed: each file is created (O_EXCL, O_NOFOLLOW)."""
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"keep me")
    link = tmp_path / "data000001.bin"
    os.symlink(precious, link)
    with pytest.raises(FileExistsError):
        sample._write(os.fsencode(link), 100)
    assert precious.read_bytes() == b"keep me" and os.path.islink(link)
