"""Opening what the walk statted: never blocking on a FIFO, never another file, at any depth."""

from __future__ import annotations

import os
import threading

import pytest

from hpcingest.fileio import SourceChanged, read_exactly
from hpcingest.sources.posix_open import PATH_CHUNK, open_directory, open_statted_file, read_link, readable


def statted(root: bytes, relpath: bytes) -> os.stat_result:
    return os.lstat(os.path.join(root, relpath))


def open_like_the_walk(root: bytes, relpath: bytes, st: os.stat_result):
    """Run the open in a thread, so a test of a FIFO fails instead of hanging forever."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["fd"] = open_statted_file(root, relpath, st.st_dev, st.st_ino)[0]
        except BaseException as err:  # noqa: BLE001 - handed back to the test
            outcome["error"] = err

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(60)  # a hang guard, not a performance limit
    assert not worker.is_alive(), "open_statted_file blocked"
    return outcome


def test_the_statted_file_opens_and_reads_exactly(tmp_path):
    root = os.fsencode(tmp_path)
    (tmp_path / "f").write_bytes(b"0123456789")
    outcome = open_like_the_walk(root, b"f", statted(root, b"f"))
    fd = outcome["fd"]
    try:
        assert read_exactly(fd, 2, 5) == b"23456"
        with pytest.raises(SourceChanged, match="shrank"):
            read_exactly(fd, 8, 5)
    finally:
        os.close(fd)


def test_a_file_swapped_for_a_fifo_is_refused_without_blocking(tmp_path):
    root = os.fsencode(tmp_path)
    (tmp_path / "f").write_bytes(b"data")
    st = statted(root, b"f")
    os.unlink(tmp_path / "f")
    os.mkfifo(tmp_path / "f")
    error = open_like_the_walk(root, b"f", st)["error"]
    assert isinstance(error, SourceChanged) and "FIFO" in str(error)


@pytest.mark.parametrize("swap", ["other file", "symlink"])
def test_a_file_swapped_for_another_is_refused(tmp_path, swap):
    root = os.fsencode(tmp_path)
    (tmp_path / "f").write_bytes(b"data")
    (tmp_path / "g").write_bytes(b"evil")
    st = statted(root, b"f")
    os.unlink(tmp_path / "f")
    if swap == "symlink":
        os.symlink("g", tmp_path / "f")
    else:
        os.rename(tmp_path / "g", tmp_path / "f")
    error = open_like_the_walk(root, b"f", st)["error"]
    assert isinstance(error, SourceChanged)
    assert ("symbolic link" if swap == "symlink" else "another file") in str(error)


def deep_tree(tmp_path) -> tuple[bytes, bytes]:
    """A directory whose path is longer than PATH_MAX, relative to the root."""
    root = os.fsencode(tmp_path)
    parts = [b"d" * 200] * (PATH_CHUNK * 2 // 200)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for part in parts:
        os.mkdir(part, dir_fd=fd)
        next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = next_fd
    with open(os.open(b"file", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
        f.write(b"deep content")
    os.symlink(b"file", b"link", dir_fd=fd)
    os.close(fd)
    return root, b"/".join(parts)


def test_files_and_links_past_path_max(tmp_path):
    root, directory = deep_tree(tmp_path)
    assert len(root + b"/" + directory) > 4096
    relpath = directory + b"/file"
    with pytest.raises(OSError):
        os.stat(os.path.join(root, relpath))  # what a plain open meets
    directory_fd = open_directory(root, directory)
    try:
        st = os.stat(b"file", dir_fd=directory_fd, follow_symlinks=False)
    finally:
        os.close(directory_fd)
    fd, _ = open_statted_file(root, relpath, st.st_dev, st.st_ino)
    try:
        assert read_exactly(fd, 0, 12) == b"deep content"
    finally:
        os.close(fd)
    assert read_link(root, directory + b"/link") == b"file"
    assert readable(root, relpath)


def test_a_file_whose_directory_was_replaced_since_it_was_kept_open_is_found_by_its_path(tmp_path):
    """An uploading rank keeps directories open (DirectoryHandles); a directory replaced since
    (moved away, made again) has the file at its path, and that is the one opened."""
    from hpcingest.sources.posix_open import DirectoryHandles

    root = os.fsencode(tmp_path)
    os.makedirs(tmp_path / "d")
    (tmp_path / "d" / "old").write_bytes(b"old")
    directories = DirectoryHandles(root)
    try:
        fd, _ = open_statted_file(root, b"d/old", 0, 0, directories)  # "d" is kept open now
        os.close(fd)
        os.rename(tmp_path / "d", tmp_path / "moved")
        os.makedirs(tmp_path / "d")
        (tmp_path / "d" / "new").write_bytes(b"new content")
        st = statted(root, b"d/new")
        fd, _ = open_statted_file(root, b"d/new", st.st_dev, st.st_ino, directories)
        try:
            assert read_exactly(fd, 0, 11) == b"new content"
        finally:
            os.close(fd)
    finally:
        directories.close()
