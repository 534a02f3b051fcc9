"""Start-up of a one-node job: MPICH's UCX network module (the library's default) against OFI
(what hpcingest starts when every rank is on one node), alternating in one invocation.

Usage:  python benchmarks/mpi_startup.py [--ranks 16,64,256] [--repeats 3] [--launcher mpiexec|srun]

Each run is a whole ``hpcingest scan`` of a one-file tree (interpreter and MPI start-up, the
walk, the summary, MPI_Finalize), started once the CPUs are idle.  The baseline sets
``MPIR_CVAR_CH4_NETMOD=ucx``, which hpcingest leaves alone (a user's choice stands); the other
run leaves the variable unset, so hpcingest chooses.  Printed per rank count: the median wall
time and CPU time (user + system, every process of the command) of each, and their ratios.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import launch_prefix, precompile, wait_for_idle_cpus  # noqa: E402

VARIANTS = {"ucx (MPICH's default)": {"MPIR_CVAR_CH4_NETMOD": "ucx"}, "hpcingest's choice": {}}


def one_run(launcher: str, ranks: int, tree: str, extra_env: dict) -> tuple[float, float]:
    """Wall and CPU seconds of one whole command."""
    env = {k: v for k, v in os.environ.items() if k != "MPIR_CVAR_CH4_NETMOD"}
    env.update(extra_env)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run([*launch_prefix(launcher, ranks), sys.executable, "-m", "hpcingest", "scan", tree, "--quiet"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # under srun the ranks are the slurmstepd's children, not ours: only mpiexec's CPU is counted
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", default="16,64,256")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--launcher", choices=("mpiexec", "srun"), default="mpiexec")
    args = parser.parse_args()
    precompile()
    with tempfile.TemporaryDirectory(prefix="mpi-startup-") as tree:
        open(os.path.join(tree, "one-file"), "w").close()
        print(f"launcher {args.launcher}, {args.repeats} runs each, alternating; medians")
        print("| ranks | " + " | ".join(f"{name} wall (s) | CPU (s)" for name in VARIANTS) + " | wall ratio | CPU ratio |")
        print("|---:|" + "---:|---:|" * len(VARIANTS) + "---:|---:|")
        for ranks in (int(n) for n in args.ranks.split(",")):
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
            for _ in range(args.repeats):
                for name, extra in VARIANTS.items():
                    wait_for_idle_cpus()
                    runs[name].append(one_run(args.launcher, ranks, tree, extra))
            walls = [statistics.median(w for w, _ in runs[name]) for name in VARIANTS]
            cpus = [statistics.median(c for _, c in runs[name]) for name in VARIANTS]
            if args.launcher == "srun":  # the ranks are slurmstepd's children: their CPU is not seen here
                cpus = [0.0] * len(cpus)
            cells = " | ".join(f"{w:.2f} | " + (f"{c:.1f}" if c else "–") for w, c in zip(walls, cpus))
            cpu_ratio = f"{cpus[0] / cpus[1]:.2f}×" if cpus[1] > 0 else "–"
            print(f"| {ranks} | {cells} | {walls[0] / walls[1]:.2f}× | {cpu_ratio} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
