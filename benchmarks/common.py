"""What several benchmark scripts need: bytecode for the package, an old-style event-handler file,
the machine's CPU busy share and a wait for idle CPUs before each run of an A/B, and the launcher's
command line."""

from __future__ import annotations

import compileall
import os
import time

from hpcingest.launch import mpiexec_path

_HANDLER = """from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return Operation.{operation}
"""


def handler_file(workdir: str, operation: str) -> str:
    """Write (or rewrite) ``<workdir>/<operation>_handler.py`` and return its path."""
    path = os.path.join(workdir, f"{operation.lower()}_handler.py")
    with open(path, "w") as f:
        f.write(_HANDLER.format(operation=operation))
    return path


def precompile() -> None:
    """Write hpcingest's bytecode before timing anything.

    A pip-installed package is byte-compiled at install time; an editable checkout run with
    PYTHONDONTWRITEBYTECODE (as in some sandboxes and CI images) would otherwise compile ~50
    modules from source in every rank of every run, about 0.1 s of CPU per rank that no real
    installation pays.  (Python reads existing .pyc files whatever that variable says.)"""
    package = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hpcingest")
    compileall.compile_dir(package, quiet=1)


class CpuMeter:
    """Busy share of the machine's CPUs between start and stop, from /proc/stat."""

    @staticmethod
    def _read() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    def __enter__(self) -> "CpuMeter":
        self._busy, self._total = self._read()
        return self

    def __exit__(self, *exc) -> None:
        busy, total = self._read()
        self.busy_share = (busy - self._busy) / max(1, total - self._total)


def wait_for_idle_cpus(limit: float = 0.1) -> None:
    """Until the CPUs are idle, before each run of an A/B.  Not the load average: after a run
    of 256 ranks it stays high for minutes on an idle machine."""
    while True:
        with CpuMeter() as meter:
            time.sleep(1.0)
        if meter.busy_share <= limit:
            return
        time.sleep(2)


def launch_prefix(launcher: str, ranks: int) -> list[str]:
    """The command line that starts ``ranks`` ranks: the venv's mpiexec, or srun on the local Slurm."""
    if launcher == "srun":
        return ["srun", "--mpi=pmi2", "-O", "-n", str(ranks)]
    return [mpiexec_path(), "-n", str(ranks)]
