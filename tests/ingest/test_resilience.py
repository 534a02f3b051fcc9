"""A zone restart in the middle of a run loses nothing: ranks reconnect and retry."""

from __future__ import annotations

import subprocess
import time


from hpcingest import sample
from hpcingest.zone.testing import start_zone
from tests.ingest.conftest import catalog, source_view
from tests.launchers import Launcher, hpcingest_argv


def test_zone_restart_mid_run_loses_nothing(tmp_path):
    zone_root = tmp_path / "zone"
    zone = start_zone(zone_root, subprocess_mode=True, service_ms=2.0)
    port = zone.port
    tree = tmp_path / "src"
    sample.generate(tree, files=1500, seed=5, max_file_size=100)
    target = f"{zone.home}/restart"
    command = Launcher("mpiexec", 4).command(hpcingest_argv(
        "start", str(tree), target, "--synchronous", "--job_dir", str(tmp_path / "jobs")))
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env={**__import__("os").environ, **zone.environ()})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(catalog(zone, target).objects) < 200:
            time.sleep(0.1)
        assert job.poll() is None, "the job ended before the restart could happen"
        zone.stop()
        time.sleep(1.5)
        zone = start_zone(zone_root, subprocess_mode=True, port=port)
        out, err = job.communicate(timeout=600)
    finally:
        if job.poll() is None:
            job.kill()
        zone.stop()
        zone = start_zone(zone_root, subprocess_mode=True, port=port)
    try:
        assert job.returncode == 0, err.decode(errors="replace") + out.decode(errors="replace")
        assert catalog(zone, target).objects == source_view(tree).objects
        assert b"failed 0" in out
    finally:
        zone.stop()
