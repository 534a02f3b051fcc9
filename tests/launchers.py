"""How tests start real MPI jobs: mpiexec from the active environment, or srun on local Slurm."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from hpcingest.launch import mpiexec_path

HANG_GUARD_S = 600  # a hung job fails the test instead of hanging CI; not a performance limit


def mpiexec() -> str:
    found = mpiexec_path()
    if not found:
        raise RuntimeError("mpiexec not found: install hpcingest[mpich]")
    return found


def slurm_available() -> bool:
    if not shutil.which("srun") or not shutil.which("sinfo"):
        return False
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and any(s.strip() in ("idle", "mix", "alloc") for s in out.stdout.split())


@dataclass(frozen=True)
class Launcher:
    """A way to start N ranks; ``describe`` is the pytest id."""

    kind: str  # "mpiexec" or "srun"
    ranks: int

    @property
    def describe(self) -> str:
        return f"{self.kind}-{self.ranks}"

    def command(self, argv: list[str]) -> list[str]:
        if self.kind == "srun":
            return ["srun", "--mpi=pmi2", "-O", "-n", str(self.ranks), "--quit-on-interrupt", *argv]
        return [mpiexec(), "-n", str(self.ranks), *argv]


def hpcingest_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "hpcingest", *args]


def run(launcher: Launcher | None, argv: list[str], *, prefix: list[str] | None = None,
        env: dict | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run argv under the launcher (or alone) and capture its output as bytes."""
    command = launcher.command(argv) if launcher else argv
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([*(prefix or []), *command], capture_output=True, env=full_env, cwd=cwd,
                          timeout=HANG_GUARD_S)


def mpi_script(name: str) -> list[str]:
    """The command line of one of tests/mpi_scripts, to run under a launcher."""
    return [sys.executable, "-m", f"tests.mpi_scripts.{name}"]


def collectives_after_walk(stderr: bytes) -> list[int]:
    """Each rank's count from tests/mpi_scripts/collectives_after_walk.py, in the order printed."""
    return [int(line.rsplit(b":", 1)[1]) for line in stderr.splitlines()
            if line.startswith(b"collectives after the walk:")]
