"""The README's quick start: `hpcingest demo` runs the main job end to end on the embedded defaults."""

from __future__ import annotations

import json

from tests.launchers import hpcingest_argv, run


def test_demo_scans_and_ingests_twice(tmp_path):
    result = run(None, hpcingest_argv("demo", "--workdir", str(tmp_path / "demo"), "--files", "300"))
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode(errors="replace") + out
    assert "created REGISTER_SYNC 302" in out  # 300 files, a non-UTF-8 name and a symlink
    assert "unchanged 308" in out.split("second pass")[1]  # and the 6 directories
    assert "everything is new" in out
    summary = json.load(open(tmp_path / "demo" / "jobs" / "demo" / "summary.json"))
    assert summary["failed"] == 0 and summary["unchanged"] == summary["entries"]


def test_demo_run_again_says_its_files_are_registered_already(tmp_path):
    """A second demo in the same directory finds its earlier run's files: it must not call them new."""
    argv = hpcingest_argv("demo", "--workdir", str(tmp_path / "demo"), "--files", "50")
    assert run(None, argv).returncode == 0
    result = run(None, argv)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode(errors="replace") + out
    assert "everything is new" not in out and "registered already" in out
    assert "created REGISTER_SYNC" not in out.split("second pass")[0].split("first pass")[1]


def test_demo_never_removes_a_sample_tree_it_did_not_make(tmp_path):
    """A ``sample-tree`` in --workdir without the demo's marker was removed and generated over:
    someone's own directory of that name, lost."""
    own = tmp_path / "work" / "sample-tree"
    own.mkdir(parents=True)
    (own / "precious").write_bytes(b"keep me")
    result = run(None, hpcingest_argv("demo", "--workdir", str(tmp_path / "work"), "--files", "10"))
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "was not made by `hpcingest demo`" in stderr and "Traceback" not in stderr
    assert (own / "precious").read_bytes() == b"keep me"
    not_a_directory = tmp_path / "file"
    not_a_directory.write_bytes(b"")
    result = run(None, hpcingest_argv("demo", "--workdir", str(not_a_directory), "--files", "10"))
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "is not a directory" in stderr and "Traceback" not in stderr


def test_demo_refuses_a_negative_number_of_files(tmp_path):
    """``--files -5`` made a one-file tree and ran the demo on it; now the sample tree's own
    refusal is the demo's one error line."""
    result = run(None, hpcingest_argv("demo", "--workdir", str(tmp_path / "demo"), "--files", "-5"))
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr, stderr
    assert stderr.splitlines() == ["demo: error: --files -5: the number of files cannot be negative"]
    assert not (tmp_path / "demo" / "sample-tree").exists()
