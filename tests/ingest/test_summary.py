"""The end-of-pass summary of `start` (hpcingest.ingest.summary)."""

from __future__ import annotations

import base64
import json
import os

from tests.ingest.conftest import start
from tests.launchers import Launcher


def test_summary_escapes_source_and_target(zone, target, tmp_path):
    """The first line printed SRC and TARGET raw: a directory named with a colour escape and a
    byte that is not UTF-8, or a target holding ESC and a newline, reached the terminal as
    such (and a newline forged a line).  They are escaped as `report` escapes names; the
    summary JSON keeps the exact bytes of a source that is not UTF-8 in ``source_b64``."""
    src = os.path.join(os.fsencode(tmp_path), b"esc\x1b[31mdir\xff")
    os.mkdir(src)
    with open(os.path.join(src, b"f"), "wb") as f:
        f.write(b"x")
    hostile_target = target + "t\x1b[31mx\ny"
    result = start(zone, os.fsdecode(src), hostile_target, "--job_name", "hostile", job_dir=tmp_path / "jobs",
                   launcher=Launcher("mpiexec", 2), env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    assert b"\x1b" not in result.stdout and b"\xff" not in result.stdout
    first = result.stdout.decode("ascii").splitlines()[0]
    shown_src, shown_target = f"{tmp_path}/esc\\u001b[31mdir\\xff", f"{target}t\\u001b[31mx\\ny"
    assert first.startswith(f"job hostile: {shown_src} -> {shown_target} with 2 rank(s)")
    summary = json.loads((tmp_path / "jobs" / "hostile" / "summary.json").read_text(encoding="utf-8"))
    assert base64.b64decode(summary["source_b64"]) == src and summary["target"] == hostile_target
