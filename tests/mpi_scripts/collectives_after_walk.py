"""Run under mpiexec as ``python collectives_after_walk.py MODULE hpcingest-args...``: runs the
hpcingest command and writes to stderr how many collectives this rank waited for after the
walk returned (``MODULE.run_walk``, the walk as that command calls it).

Each collective after the walk waits for the last rank to be scheduled: at 256 ranks on two
cores, about a second each."""

import atexit
import importlib
import runpy
import sys

from hpcingest import collectives


def main() -> None:
    module = importlib.import_module(sys.argv[1])
    waits, after_walk = [0], [False]
    plain_wait, plain_walk = collectives.wait, module.run_walk

    def counting_wait(request):
        waits[0] += after_walk[0]
        plain_wait(request)

    def walk(*args, **kwargs):
        stats = plain_walk(*args, **kwargs)
        after_walk[0] = True
        return stats

    collectives.wait, module.run_walk = counting_wait, walk
    sys.argv = ["hpcingest"] + sys.argv[2:]
    # the command ends the process (hpcingest.launch.exit_process), running atexit functions first
    atexit.register(lambda: sys.stderr.write("collectives after the walk: %d\n" % waits[0]))
    runpy.run_module("hpcingest", run_name="__main__")


if __name__ == "__main__":
    main()
