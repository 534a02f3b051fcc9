"""The one way hpcingest writes a file the user named (hpcingest.outputs)."""

from __future__ import annotations

import os
import stat

import pytest

from hpcingest.outputs import check_output, replace_file, same_file


def test_a_replaced_file_is_readable_as_before_and_nothing_is_left_beside_it(tmp_path):
    """The textfile collector often runs as another user: the file keeps open()'s mode (0666
    less the umask), not a temporary file's 0600."""
    path = tmp_path / "m.prom"
    path.write_bytes(b"old")
    old_umask = os.umask(0o022)
    try:
        replace_file(str(path), b"new")
    finally:
        os.umask(old_umask)
    assert path.read_bytes() == b"new" and stat.S_IMODE(os.lstat(path).st_mode) == 0o644
    assert os.listdir(tmp_path) == ["m.prom"]


def test_what_is_not_a_regular_file_is_refused_and_left_as_it_is(tmp_path):
    precious, link, fifo = tmp_path / "precious", tmp_path / "link", tmp_path / "fifo"
    precious.write_bytes(b"keep me")
    os.symlink(precious, link)
    os.mkfifo(fifo)
    for path, kind in ((link, "link"), (fifo, "pipe")):
        with pytest.raises(ValueError, match=rf"^--out: '{path}' exists and is not a regular file \(a {kind}\)"):
            check_output("--out", str(path), regular_only=True)
        with pytest.raises(FileExistsError):
            replace_file(str(path), b"new")
    assert precious.read_bytes() == b"keep me" and os.readlink(link) == str(precious)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["fifo", "link", "precious"]
    check_output("--out", str(link), regular_only=False)  # written in place: /dev/stdout is a link


def test_same_file_sees_through_links_and_names_not_made_yet(tmp_path):
    (tmp_path / "a").write_bytes(b"")
    os.link(tmp_path / "a", tmp_path / "hard")
    os.symlink("a", tmp_path / "soft")
    assert same_file(str(tmp_path / "a"), str(tmp_path / "hard"))
    assert same_file(str(tmp_path / "a"), str(tmp_path / "soft"))
    assert same_file(str(tmp_path / "new"), str(tmp_path / "x" / ".." / "new"))
    assert not same_file(str(tmp_path / "a"), str(tmp_path / "new"))
