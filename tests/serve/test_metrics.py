"""`hpcingest start --metrics_file F`: the service's metrics, for node_exporter's textfile
collector, from a job run without the service."""

from __future__ import annotations

import json
import os
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from hpcingest import sample
from tests.landing_zone import wait_for
from tests.launchers import Launcher, hpcingest_argv


def read_metrics(path: str) -> dict[tuple, float]:
    with open(path) as f:
        text = f.read()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def state(found: dict, job: str) -> str:
    return next(labels[1][1] for (name, labels), value in found.items()
                if name == "hpcingest_job_state" and value == 1.0 and labels[0] == ("job", job))


def test_the_metrics_file_follows_the_job_and_ends_with_its_summary(slow_zone, tmp_path):
    zone = slow_zone
    tree, jobs, out = tmp_path / "tree", tmp_path / "jobs", tmp_path / "textfile"
    sample.generate(tree, files=1500, seed=31, max_file_size=16)
    out.mkdir()
    prom = str(out / "hpcingest.prom")
    run = subprocess.Popen(Launcher("mpiexec", 2).command(hpcingest_argv(
        "start", str(tree), f"{zone.home}/metrics{os.getpid()}", "--job_dir", str(jobs), "--job_name", "m",
        "--metrics_file", prom)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, **zone.environ()})
    try:
        wait_for(lambda: os.path.exists(prom) and state(read_metrics(prom), "m") == "running", "a running job's file")
        out_text, err = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err.decode(errors="replace")
    found = read_metrics(prom)
    with open(jobs / "m" / "summary.json") as f:
        summary = json.load(f)
    job = (("job", "m"),)
    assert state(found, "m") == "done" and found[("hpcingest_job_pass", job)] == 1
    assert found[("hpcingest_job_entries_scanned", job)] == summary["entries"]
    assert found[("hpcingest_job_files", (("job", "m"), ("outcome", "created")))] == sum(summary["created"].values())
    assert found[("hpcingest_job_bytes_registered", job)] == summary["bytes_registered"]
    assert found[("hpcingest_job_irods_calls", (("api", "PHY_PATH_REG_AN"), ("job", "m")))] == \
        summary["irods_calls"]["PHY_PATH_REG_AN"]["calls"]
    assert os.listdir(out) == ["hpcingest.prom"]  # each write went through a temporary file, renamed over it


def test_a_bad_metrics_file_is_refused_before_anything_runs(zone, tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    for path, words in ((tmp_path / "metrics.txt", "must end in .prom"),
                        (tmp_path / "missing" / "m.prom", "does not exist or is not writable")):
        result = subprocess.run(hpcingest_argv("start", str(tree), f"{zone.home}/never", "--job_dir",
                                               str(tmp_path / "jobs"), "--metrics_file", str(path)),
                                capture_output=True, text=True, env={**os.environ, **zone.environ()}, timeout=300)
        assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr
        assert not os.path.exists(tmp_path / "jobs")


def test_a_metrics_file_that_is_not_a_regular_file_is_refused_and_left_as_it_is(zone, tmp_path):
    """The file is replaced every few seconds: a character device (as root, ``--metrics_file``
    naming one) or a link there was deleted and a regular file put in its place."""
    import stat

    tree, precious = tmp_path / "tree", tmp_path / "precious"
    tree.mkdir()
    precious.write_bytes(b"keep me")
    device, link, fifo = tmp_path / "device.prom", tmp_path / "link.prom", tmp_path / "fifo.prom"
    kinds = {link: "link", fifo: "pipe"}
    os.symlink(precious, link)
    os.mkfifo(fifo)
    if os.geteuid() == 0:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
        kinds[device] = "character"
    for path, kind in kinds.items():
        before = os.lstat(path)
        result = subprocess.run(hpcingest_argv("start", str(tree), f"{zone.home}/never", "--job_dir",
                                               str(tmp_path / "jobs"), "--metrics_file", str(path)),
                                capture_output=True, text=True, env={**os.environ, **zone.environ()}, timeout=300)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"exists and is not a regular file (a {kind})" in result.stderr
        after = os.lstat(path)
        assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
        assert not os.path.exists(tmp_path / "jobs")
    assert precious.read_bytes() == b"keep me"


def test_the_metrics_file_is_never_written_over_what_appeared_there_since_the_start(tmp_path):
    """A link or device put at F while the job runs is left as it is (the write is skipped, the
    job goes on), and no temporary file is left beside it."""
    from hpcingest.jobdir import JobDirectory
    from hpcingest.serve.metrics import MetricsFile

    out, precious = tmp_path / "textfile", tmp_path / "precious"
    out.mkdir()
    precious.write_bytes(b"keep me")
    prom = out / "hpcingest.prom"
    metrics = MetricsFile(str(prom), JobDirectory(str(tmp_path / "jobs"), "m"))
    metrics.write()
    assert prom.is_file() and not prom.is_symlink()
    prom.unlink()
    os.symlink(precious, prom)
    metrics.write()
    assert os.readlink(prom) == str(precious) and precious.read_bytes() == b"keep me"
    assert os.listdir(out) == ["hpcingest.prom"]
