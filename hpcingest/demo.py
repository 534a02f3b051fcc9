"""`hpcingest demo`: the quick start, end to end on the embedded defaults.

It generates a sample tree (once), starts the built-in iRODS test zone, and runs the main job
on it under the mpiexec that sits beside this interpreter: a parallel scan, then an ingest
(REGISTER_SYNC) and a second, unchanged pass, so a fresh machine needs nothing but
`.ci/setup.sh`.  The zone keeps running only for the demo and stops afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from hpcingest import sample
from hpcingest.launch import mpiexec_path


def _run(command: list[str], env: dict | None = None) -> int:
    print("demo: $ " + " ".join(command), flush=True)  # flushed: the child writes to the same stdout
    return subprocess.call(command, env=env)


def _sample_tree(tree: str, files: int) -> str | None:
    """Generate the sample tree once; a tree a run cut short is made again, but only one this
    command started: a ``sample-tree`` of the user's own in --workdir is never removed."""
    workdir = os.path.dirname(tree)
    complete, generating = os.path.join(workdir, ".sample-complete"), os.path.join(workdir, ".sample-generating")
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        return f"--workdir {workdir!r} is not a directory"
    if os.path.exists(complete):
        return None
    if os.path.lexists(tree) and not os.path.exists(generating):
        return f"{tree} exists and was not made by `hpcingest demo`; give another --workdir"
    os.makedirs(workdir, exist_ok=True)
    open(generating, "w").close()
    shutil.rmtree(tree, ignore_errors=True)
    print(f"demo: generating a sample tree of {files:,} files in {tree}", flush=True)
    sample.generate(tree, files=files, seed=1)
    open(complete, "w").close()
    os.unlink(generating)
    return None


def run(args) -> int:
    from hpcingest.zone.testing import start_zone

    workdir = os.path.abspath(args.workdir)
    tree = os.path.join(workdir, "sample-tree")
    try:
        problem = _sample_tree(tree, args.files)
    except sample.SampleTreeError as err:  # --files -5
        problem = str(err)
    except OSError as err:
        problem = f"--workdir {workdir!r}: {err.strerror}: {err.filename!r}"
    if problem:
        print(f"demo: error: {problem}", file=sys.stderr)
        return 2
    launcher = mpiexec_path()
    if launcher is None:
        print("demo: error: mpiexec not found; install hpcingest[mpich] (see README)", file=sys.stderr)
        return 2
    ranks = ["-n", str(args.ranks)]
    me = [sys.executable, "-m", "hpcingest"]
    status = _run([launcher, *ranks, *me, "scan", tree])
    if status:
        return status
    print(f"demo: starting the built-in iRODS zone in {workdir}/zone", flush=True)
    zone = start_zone(os.path.join(workdir, "zone"), subprocess_mode=True)
    try:
        env = {**os.environ, **zone.environ()}
        print(f"demo: zone {zone.zone} on {zone.host}:{zone.port}; clients use "
              f"IRODS_ENVIRONMENT_FILE={zone.env_file}", flush=True)
        job = ["start", tree, f"{zone.home}/demo", "--job_name", "demo", "--synchronous",
               "--job_dir", os.path.join(workdir, "jobs")]
        first = ("first pass: the demo ran in this directory before, so its files are registered already"
                 if os.path.isdir(os.path.join(workdir, "jobs", "demo")) else "first pass: everything is new")
        for _pass in (first, "second pass: nothing changed"):
            print(f"demo: {_pass}", flush=True)
            status = _run([launcher, *ranks, *me, *job], env=env)
            if status:
                return status
    finally:
        zone.stop()
    print(f"demo: done. The job directory is {workdir}/jobs/demo; the zone's catalog and vault are in "
          f"{workdir}/zone (restart it with `hpcingest zone --root {workdir}/zone --port 0`).")
    return 0
