"""Collectives that rank 0's summaries are built from, under real MPI ranks."""

from __future__ import annotations

import json
import sys

from tests.launchers import Launcher, run

_GATHER = """
import json
from mpi4py import MPI
from hpcingest import collectives
comm = MPI.COMM_WORLD
gathered = collectives.gather_objects(comm, ([2**53 + comm.rank + 1, 7], [0.5 * comm.rank]))
if comm.rank == 0:
    counts = [c for c, _ in gathered]
    floats = [f for _, f in gathered]
    print(json.dumps({"counts": counts, "total": sum(row[0] for row in counts), "floats": floats}))
"""


def test_integer_gather_keeps_totals_past_2_to_the_53_exact():
    """Byte totals of a large filesystem pass 2**53 (9 PB), where float64 stops counting by one."""
    result = run(Launcher("mpiexec", 3), [sys.executable, "-c", _GATHER])
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    report = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert report["counts"] == [[2**53 + 1, 7], [2**53 + 2, 7], [2**53 + 3, 7]]
    assert report["total"] == 3 * 2**53 + 6
    assert report["floats"] == [[0.0], [0.5], [1.0]]
