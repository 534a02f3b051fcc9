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
