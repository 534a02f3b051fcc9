"""Is scandir-rs worth a dependency?  It against what hpcingest does, on the cases it could win.

Usage:  python benchmarks/walk_scandir_rs.py [--files 200000] [--workdir /tmp/hpcingest-bench] [--repeats 5]

scandir-rs walks a tree in Rust threads (jwalk) and stats in Rust.  hpcingest lists a directory
with os.scandir (names only) and lstats the names in batches of --files_per_task with
os.lstat(name, dir_fd=...), each batch a unit of work any rank can take.  Compared here, each in
its own process, median of --repeats alternating runs, warm cache:

* one very large flat directory (--files entries), and the balanced tree of the walk benchmark;
* per method: entries per second of the walk (process start-up excluded);
* and whether names that are not UTF-8 come back exactly (hpcingest keeps paths as bytes).

Methods: the Python list-then-lstat loop hpcingest's source does per directory;
``scandir_rs.Scandir(return_type=Base)`` and ``(return_type=Ext)``; ``hpcingest scan`` on 1
and 2 ranks (its own ``elapsed_s``).  scandir-rs is imported only here: it is not a dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import precompile  # noqa: E402
from benchmarks.walk import make_tree  # noqa: E402
from hpcingest.launch import mpiexec_path  # noqa: E402

LIST_THEN_LSTAT = r"""
import os, sys, time
def walk(top):
    n, stack = 0, [top]
    while stack:
        d = stack.pop()
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with os.scandir(fd) as it:
                names = [e.name for e in it]
            for name in names:
                st = os.lstat(name, dir_fd=fd)
                n += 1
                if (st.st_mode & 0o170000) == 0o040000:
                    stack.append(os.path.join(d, os.fsencode(name)))
        finally:
            os.close(fd)
    return n
t = time.perf_counter(); n = walk(os.fsencode(sys.argv[1])); print(n, time.perf_counter() - t)
"""

SCANDIR_RS = r"""
import sys, time
import scandir_rs
kind = getattr(scandir_rs.ReturnType, sys.argv[2])
t = time.perf_counter()
entries, errors = scandir_rs.Scandir(sys.argv[1], return_type=kind).collect()
print(len(entries), time.perf_counter() - t)
"""


def timed(code: str, *args: str) -> tuple[int, float]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    count, seconds = out.stdout.split()
    return int(count), float(seconds)


def hpcingest_scan(path: str, ranks: int) -> tuple[int, float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as summary:
        subprocess.run([mpiexec_path(), "-n", str(ranks), sys.executable, "-m", "hpcingest", "scan", path,
                        "--json", summary.name, "--quiet"], check=True, capture_output=True)
        data = json.load(open(summary.name))
    return data["files"] + data["directories"] + data["symlinks"] + data["other"], data["elapsed_s"]


def flat_directory(path: str, files: int) -> int:
    marker = os.path.join(path, f".complete-flat-{files}")
    if not os.path.exists(marker):
        os.makedirs(path, exist_ok=True)
        for i in range(files):
            open(os.path.join(path, f"f{i:07d}"), "wb").close()
        open(marker, "w").close()
    return files + 1


def names_survive(workdir: str) -> str:
    """Whether scandir-rs gives back a name that is not UTF-8 (b'caf\\xe9') exactly."""
    import scandir_rs

    directory = os.path.join(workdir, "latin1")
    os.makedirs(directory, exist_ok=True)
    open(os.path.join(os.fsencode(directory), b"caf\xe9"), "wb").close()
    entries, errors = scandir_rs.Scandir(directory, return_type=scandir_rs.ReturnType.Base).collect()
    names = [os.path.basename(entry.path) for entry in entries] + [path for path, _ in errors]
    exact = any(os.fsencode(name) == b"caf\xe9" for name in names)
    return f"{'exact' if exact else 'NOT exact'}: {names!r}, errors {errors!r}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "hpcingest-bench"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    try:
        import scandir_rs  # noqa: F401
    except ImportError:
        print("scandir-rs is not installed (it is no dependency of hpcingest): pip install scandir-rs", file=sys.stderr)
        return 2
    precompile()
    print(f"load average at the start: {os.getloadavg()[0]:.1f} (2 cores)")
    cases = {"one flat directory": os.path.join(args.workdir, "flat"),
             "balanced tree": os.path.join(args.workdir, "balanced")}
    flat_directory(cases["one flat directory"], args.files)
    make_tree(cases["balanced tree"], args.files, "balanced")
    methods = {
        "os.scandir names + os.lstat(dir_fd) (hpcingest's per-directory way)": lambda p: timed(LIST_THEN_LSTAT, p),
        "scandir_rs.Scandir Base": lambda p: timed(SCANDIR_RS, p, "Base"),
        "scandir_rs.Scandir Ext": lambda p: timed(SCANDIR_RS, p, "Ext"),
        "hpcingest scan, mpiexec -n 1": lambda p: hpcingest_scan(p, 1),
        "hpcingest scan, mpiexec -n 2": lambda p: hpcingest_scan(p, 2),
    }
    for case, path in cases.items():
        seconds: dict[str, list[float]] = {name: [] for name in methods}
        counts: dict[str, int] = {}
        for _ in range(args.repeats):
            for name, method in methods.items():
                counts[name], elapsed = method(path)
                seconds[name].append(elapsed)
        print(f"\n{case} ({path}), median of {args.repeats}:")
        base = statistics.median(seconds[next(iter(methods))])
        for name in methods:
            median = statistics.median(seconds[name])
            print(f"  {name:70s} {counts[name]:>9,d} entries {median:8.3f} s {counts[name] / median:>11,.0f}/s "
                  f"{base / median:5.2f}x")
    print(f"\nnames that are not UTF-8 through scandir-rs: {names_survive(args.workdir)}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
