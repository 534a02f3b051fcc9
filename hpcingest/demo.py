"""`hpcingest demo`: the quick start, end to end on the embedded defaults.

It generates a sample tree (once) and runs the parallel job on it under the mpiexec that
sits beside this interpreter, so a fresh machine needs nothing but `.ci/setup.sh`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from hpcingest import sample


def mpiexec() -> str | None:
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.path.exists(beside) else shutil.which("mpiexec")


def run(args) -> int:
    workdir = os.path.abspath(args.workdir)
    tree = os.path.join(workdir, "sample-tree")
    marker = os.path.join(workdir, ".sample-complete")
    if not os.path.exists(marker):
        shutil.rmtree(tree, ignore_errors=True)
        print(f"demo: generating a sample tree of {args.files:,} files in {tree}")
        sample.generate(tree, files=args.files, seed=1)
        open(marker, "w").close()
    launcher = mpiexec()
    if launcher is None:
        print("demo: error: mpiexec not found; install hpcingest[mpich] (see README)", file=sys.stderr)
        return 2
    command = [launcher, "-n", str(args.ranks), sys.executable, "-m", "hpcingest", "scan", tree,
               "--json", os.path.join(workdir, "scan-summary.json")]
    print("demo: " + " ".join(command), flush=True)
    return subprocess.call(command)
