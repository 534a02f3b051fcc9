"""`hpcingest scan` against find(1), under real MPI ranks (mpiexec, and srun on local Slurm)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from tests import trees
from tests.conftest import launcher_params
from tests.launchers import HANG_GUARD_S, Launcher, collectives_after_walk, hpcingest_argv, mpi_script, run

TREE_KINDS = {
    "random": lambda root: trees.random_tree(root, seed=7, entries=4000),
    "flat100k": lambda root: trees.flat_tree(root, 100_000),
    "chain500": lambda root: trees.chain_tree(root, 500, name=b"n" * 40),
    "tricky": trees.tricky_tree,
    "links": trees.links_tree,
    "special": trees.special_tree,
    "empty": lambda root: os.makedirs(root),
}


@pytest.fixture(scope="session")
def tree_roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("trees")
    keep_alive = []
    roots = {}
    for kind, build in TREE_KINDS.items():
        root = os.fsencode(base / kind)
        keep_alive.append(build(root))
        roots[kind] = root
    yield roots


def read_listing(path) -> list[bytes]:
    data = open(path, "rb").read()
    assert data == b"" or data.endswith(b"\0"), "every entry must be NUL-terminated"
    return data.split(b"\0")[:-1]


def scan(launcher: Launcher | None, root: bytes, out_dir, *extra: str, prefix=None):
    listing, summary = os.path.join(out_dir, "list"), os.path.join(out_dir, "summary.json")
    argv = hpcingest_argv("scan", os.fsdecode(root), "--list", listing, "--json", summary, "--quiet", *extra)
    result = run(launcher, argv, prefix=prefix)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return read_listing(listing), json.load(open(summary)), result


def assert_matches_find(root: bytes, listing: list[bytes], summary: dict, ranks: int, prefix=None):
    expected = trees.find_view(root, prefix)
    assert len(listing) == len(set(listing)), "an entry was listed twice"
    assert set(listing) == expected.paths
    assert {k: summary[k] for k in expected.counts} == expected.counts
    assert summary["bytes"] == expected.bytes
    assert summary["errors"] == expected.errors
    assert summary["ranks"] == ranks
    assert sum(summary["entries_per_rank"]) == len(expected.paths)


@pytest.mark.parametrize("launcher", launcher_params())
@pytest.mark.parametrize("kind", list(TREE_KINDS))
def test_scan_listing_equals_find(tree_roots, kind, launcher, tmp_path):
    root = tree_roots[kind]
    listing, summary, _ = scan(launcher, root, tmp_path)
    assert_matches_find(root, listing, summary, launcher.ranks)


def test_single_process_without_launcher(tree_roots, tmp_path):
    listing, summary, result = scan(None, tree_roots["tricky"], tmp_path)
    assert_matches_find(tree_roots["tricky"], listing, summary, 1)


def test_huge_directory_spreads_over_ranks(tree_roots, tmp_path):
    """One 100k-entry directory must not pin one rank: its stat batches get stolen."""
    _, summary, _ = scan(Launcher("mpiexec", 4), tree_roots["flat100k"], tmp_path)
    assert min(summary["entries_per_rank"]) > 0.1 * max(summary["entries_per_rank"])
    assert summary["items_stolen"] > 0


def unprivileged_prefix(workdir: str) -> list[str]:
    """A way to run without root's permission bypass: a real non-root user when it can run
    this interpreter, else root with CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH dropped."""
    if os.geteuid() != 0:
        return []
    nobody = ["runuser", "-u", "nobody", "--"]
    probe = subprocess.run([*nobody, sys.executable, "-c", "import hpcingest, mpi4py"], cwd=workdir,
                           capture_output=True)
    if probe.returncode == 0:
        return nobody
    if shutil.which("setpriv"):
        return ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--"]
    pytest.skip("running as root with no way to drop privileges (runuser/setpriv)")


@pytest.mark.parametrize("launcher", launcher_params(ranks=(1, 2, 4), srun_ranks=()))
def test_permission_errors_are_reported_not_fatal(world_dir, launcher):
    root = os.fsencode(os.path.join(world_dir, "tree"))
    trees.unreadable_tree(root)
    trees.random_tree(os.path.join(root, b"readable"), seed=3, entries=300)
    prefix = unprivileged_prefix(world_dir)
    out = os.path.join(world_dir, "out")
    os.mkdir(out)
    os.chmod(out, 0o777)
    listing, summary, result = scan(launcher, root, out, prefix=prefix)
    assert_matches_find(root, listing, summary, launcher.ranks, prefix=prefix)
    assert summary["errors"] == 4
    stderr = result.stderr.decode(errors="replace")
    assert "closed': [Errno 13]" in stderr and "list-only/inside': [Errno 13]" in stderr


def test_summary_text_and_histogram(tree_roots, tmp_path):
    result = run(Launcher("mpiexec", 2), hpcingest_argv("scan", os.fsdecode(tree_roots["random"]),
                                                         "--json", str(tmp_path / "s.json")))
    assert result.returncode == 0
    text = result.stdout.decode()
    summary = json.load(open(tmp_path / "s.json"))
    assert f"files {summary['files']:,}" in text
    assert "file sizes (power-of-two bins)" in text
    assert sum(summary["size_histogram"].values()) == summary["files"]
    # sizes 7 and 100 fall in the >= 4 B and >= 64 B bins
    assert summary["size_histogram"][">= 4 B"] > 0 and summary["size_histogram"][">= 64 B"] > 0
    for key in ("files", "directories", "symlinks", "other", "bytes", "errors", "elapsed_s", "ranks"):
        assert key in summary


@pytest.mark.parametrize("args, message", [
    (["/nonexistent/path"], "No such file or directory"),
    (["/etc/hostname"], "is not a directory"),
    (["/tmp", "--exclude_file_name", "("], "invalid regular expression"),
    (["/tmp", "--exclude_file_type", "regular,bogus"], "unknown type 'bogus'"),
    (["/tmp", "--files_per_task", "0"], "at least 1"),
    (["/tmp", "--max_rate", "0"], "--max_rate must be a positive number"),
    (["/tmp", "--max_rate", "nan"], "--max_rate must be a positive number"),
    (["/tmp", "--max_rate", "inf"], "--max_rate must be a positive number"),
    (["/tmp", "--stat_threads", "0"], "--stat_threads must be at least 1"),
    (["/tmp", "--list", "/nonexistent-dir/list"], "does not exist"),
])
def test_bad_input_is_a_clear_error(args, message):
    result = run(Launcher("mpiexec", 2), hpcingest_argv("scan", *args))
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert message in stderr
    assert "Traceback" not in stderr
    assert stderr.count("error:") == 1, "only rank 0 reports"


def test_outputs_that_are_not_files_are_refused_and_left_as_they_are(tmp_path):
    """``--list`` replaces its file: run as root, ``--list /dev/null`` (or ``/dev/stdout``, a
    link) deleted the device (the link) for the whole system and put a regular file there, and a
    directory gave a traceback.  Tried here with a FIFO, a link and a directory of the test's own."""
    fifo, link, directory = tmp_path / "fifo", tmp_path / "link", tmp_path / "dir"
    os.mkfifo(fifo)
    os.symlink("/dev/null", link)
    directory.mkdir()
    for option, path, message in [("--list", fifo, "not a regular file (a pipe)"),
                                  ("--list", link, "not a regular file (a link)"),
                                  ("--list", directory, "is a directory"),
                                  ("--json", directory, "is a directory")]:
        result = run(Launcher("mpiexec", 2), hpcingest_argv("scan", str(tmp_path), option, str(path)))
        stderr = result.stderr.decode()
        assert result.returncode == 2 and message in stderr and "Traceback" not in stderr, stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.readlink(link) == "/dev/null" and directory.is_dir()


def test_a_summary_that_cannot_be_written_is_one_error_after_the_summary(tmp_path):
    """``--json /dev/full``: the write failed after the walk on rank 0 with a traceback
    (``OSError: [Errno 28]``) and MPI_Abort.  Now the summary is printed, then one error line,
    exit 1; with --quiet only the error."""
    trees.random_tree(os.fsencode(tmp_path / "tree"), seed=3, entries=200)
    for quiet in ([], ["--quiet"]):
        result = run(Launcher("mpiexec", 2), hpcingest_argv("scan", str(tmp_path / "tree"), "--json", "/dev/full",
                                                             *quiet))
        stdout, stderr = result.stdout.decode(), result.stderr.decode()
        assert result.returncode == 1 and "Traceback" not in stderr, stderr
        assert stderr.splitlines() == ["hpcingest scan: error: --json '/dev/full': No space left on device"]
        assert ("scanned " in stdout) == (not quiet), stdout


def test_list_and_json_naming_one_file_are_refused_before_the_walk(tmp_path):
    """``--list F --json F`` wrote the summary over the listing: the listing was lost, silently.
    The same file under another name (a link, a hard link, ``..``) is the same mistake."""
    trees.random_tree(os.fsencode(tmp_path / "tree"), seed=3, entries=50)
    out = tmp_path / "out"
    out.mkdir()
    existing = out / "existing"
    existing.write_bytes(b"mine")
    os.link(existing, out / "hard")
    for listing, summary in [(out / "new", out / "new"), (out / "new", out / ".." / "out" / "new"),
                             (existing, existing), (existing, out / "hard")]:
        result = run(Launcher("mpiexec", 2), hpcingest_argv("scan", str(tmp_path / "tree"), "--list", str(listing),
                                                             "--json", str(summary)))
        stderr = result.stderr.decode()
        assert result.returncode == 2 and "name the same file" in stderr and "Traceback" not in stderr, stderr
        assert "scanned " not in result.stdout.decode()
    assert sorted(os.listdir(out)) == ["existing", "hard"] and existing.read_bytes() == b"mine"
    # a JSON summary on stdout (what /dev/stdout links to, named so that a broken /dev does not matter) is fine
    result = run(Launcher("mpiexec", 2), hpcingest_argv("scan", str(tmp_path / "tree"), "--list", str(out / "list"),
                                                         "--json", "/proc/self/fd/1", "--quiet"))
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert json.loads(result.stdout)["files"] > 0 and len(read_listing(out / "list")) > 0


def test_max_rate_holds_the_configured_rate(tree_roots, tmp_path):
    """Never faster than --max_rate: by the end each rank may be ahead by its burst (50 ms of
    its share) plus the one batch it was spending, nothing more."""
    ranks, rate, per_task = 4, 2000.0, 50
    listing, summary, _ = scan(Launcher("mpiexec", ranks), tree_roots["random"], tmp_path, "--max_rate", str(rate),
                               "--files_per_task", str(per_task))
    entries = len(listing)
    allowance = ranks * (0.05 * rate / ranks + per_task)
    assert entries > 10 * allowance
    assert summary["elapsed_s"] >= (entries - allowance) / rate


def test_counts_gathered_in_bulk_equal_counts_entry_by_entry(tmp_path):
    """The scan sink folds types, bytes and the histogram in bulk (every 64k entries and at the
    end); the result must not depend on where the folds fall."""
    import stat as stat_module

    from hpcingest.records import EntryBatch
    from hpcingest.scan import _FOLD_ENTRIES, ScanSink

    (tmp_path / "d").mkdir()
    os.symlink("d", tmp_path / "l")
    sizes = [0, 1, 2, 3, 1000, 1 << 20]
    for i, size in enumerate(sizes):
        (tmp_path / f"f{i}").write_bytes(b"x" * size)
    names = sorted(os.listdir(tmp_path))
    stats = [os.lstat(tmp_path / name) for name in names]
    sink = ScanSink(b"/")
    repeats = _FOLD_ENTRIES // len(stats) + 7  # crosses a fold, and leaves a remainder
    for _ in range(repeats):
        sink.consume(EntryBatch(b"", names=list(names), stats=list(stats)))
    sink.fold()
    regular = [s.st_size for s in stats if stat_module.S_ISREG(s.st_mode)]
    assert sink.entries == repeats * len(stats)
    assert sink.bytes == repeats * sum(regular)
    assert list(sink.type_counts[:3]) == [repeats * len(sizes), repeats, repeats]  # regular, directory, link
    assert sum(sink.histogram) == repeats * len(sizes)
    assert [sink.histogram[size.bit_length()] for size in (0, 1, 1000, 1 << 20)] == [repeats] * 4


def test_a_scan_rank_never_imports_numpy(tmp_path):
    """Start-up is what 256 ranks on two cores wait for: numpy was half of a scan rank's
    start-up CPU (0.10 of 0.22 s) and a third of its memory (17 of 49 MB), for counts that
    plain Python folds as fast.  The whole scan (walk, folds, summary, JSON) runs without it."""
    trees.random_tree(os.fsencode(tmp_path / "tree"), seed=5, entries=300)
    probe = ("import atexit, sys, runpy; sys.argv = ['hpcingest'] + sys.argv[1:]; "
             "atexit.register(lambda: sys.stderr.write('numpy loaded: %s\\n' % ('numpy' in sys.modules))); "
             "runpy.run_module('hpcingest', run_name='__main__')")
    summary = tmp_path / "summary.json"
    result = run(Launcher("mpiexec", 2), [sys.executable, "-c", probe, "scan", str(tmp_path / "tree"), "--quiet",
                                         "--json", str(summary)])
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stderr.decode().count("numpy loaded: False") == 2
    assert json.loads(summary.read_text())["files"] > 0



@pytest.mark.parametrize("kind", ["random", "tricky", "links", "special"])
def test_stat_threads_listing_equals_find(tree_roots, kind, tmp_path):
    root = tree_roots[kind]
    listing, summary, _ = scan(Launcher("mpiexec", 2), root, tmp_path, "--stat_threads", "4")
    assert_matches_find(root, listing, summary, 2)


def test_after_the_walk_no_collective_is_left_for_the_summary_and_the_listing(tmp_path):
    """Between the last entry and the summary, each collective waits for the last rank to get
    the CPU: at 256 ranks on two cores, four gathers took 2.8 s, with --list five rounds
    2.9 s, and two rounds still 2 s.  The walk's own closing round (the engine's messages up
    and down its rank tree) carries the listing sizes to every rank and the summaries to rank
    0; counted here are the collectives scan waits for once the walk has returned."""
    root = os.fsencode(tmp_path / "tree")
    trees.random_tree(root, seed=6, entries=200)
    summary, listing = tmp_path / "summary.json", tmp_path / "list"
    result = run(Launcher("mpiexec", 3), mpi_script("collectives_after_walk") + [
        "hpcingest.scan", "scan", os.fsdecode(root), "--quiet", "--json", str(summary), "--list", str(listing)])
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert collectives_after_walk(result.stderr) == [0, 0, 0]
    assert_matches_find(root, read_listing(listing), json.loads(summary.read_text()), 3)


def test_the_listing_is_written_without_blocking_mpi_io(tree_roots, tmp_path):
    """MPI-IO's collective file open and close busy-poll in MPICH: with 256 ranks on two cores
    writing --list took about 10 s after the last entry.  Each rank now writes its part with
    pwrite at its offset; MPI.File is made unusable here to prove it is not needed."""
    root = tree_roots["random"]
    probe = textwrap.dedent("""
        import sys, runpy
        from mpi4py import MPI
        class NoMpiIo:
            def __getattr__(self, name):
                raise RuntimeError("blocking MPI-IO collective used")
        MPI.File = NoMpiIo()
        sys.argv = ["hpcingest"] + sys.argv[1:]
        runpy.run_module("hpcingest", run_name="__main__")
        """)
    listing, summary_path = tmp_path / "list", tmp_path / "summary.json"
    listing.write_bytes(b"an earlier listing, longer than nothing")  # replaced
    result = run(Launcher("mpiexec", 3), [sys.executable, "-c", probe, "scan", os.fsdecode(root), "--quiet",
                                         "--list", str(listing), "--json", str(summary_path)])
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert_matches_find(root, read_listing(listing), json.loads(summary_path.read_text()), 3)


HOSTILE_SOURCE = b"esc\x1b[31mdir\xff"
HOSTILE_UNREADABLE = b"x\x1b]0;title\x07\nforged"


def test_summary_escapes_the_source_and_error_samples(world_dir):
    """The summary printed SRC raw (a colour escape and a byte that is not UTF-8 reached the
    terminal) and the JSON held it as ``\\udcff``, which strict parsers reject; the errors
    walked are shown escaped too, on stderr and in the summary, as `report` shows names."""
    root = os.path.join(os.fsencode(world_dir), HOSTILE_SOURCE)
    os.makedirs(os.path.join(root, HOSTILE_UNREADABLE))
    os.chmod(os.path.join(root, HOSTILE_UNREADABLE), 0o000)  # an error for the samples (as nobody)
    summary = os.path.join(world_dir, "summary.json")
    result = run(None, hpcingest_argv("scan", os.fsdecode(root), "--json", summary),
                 prefix=unprivileged_prefix(world_dir), env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    for output in (result.stdout, result.stderr):
        assert b"\x1b" not in output and b"\x07" not in output and b"\xff" not in output, output
        assert all(line.isascii() and line.decode().isprintable() for line in output.splitlines()), output
    shown_source = "esc\\u001b[31mdir\\xff"
    out, err = result.stdout.decode(), result.stderr.decode()
    assert f"scanned {os.path.join(world_dir, shown_source)} with 1 rank(s)" in out
    assert f"{shown_source}/x\\u001b]0;title\\u0007\\nforged': [Errno 13]" in out
    assert f"{shown_source}/x\\u001b]0;title\\u0007\\nforged': [Errno 13]" in err
    written = json.loads(open(summary, encoding="utf-8").read())
    assert base64.b64decode(written["source_b64"]) == root


def walking(pid: int, root: bytes) -> bool:
    """Whether the scan is in its walk: it holds a directory of ``root`` open."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}").startswith(os.fsdecode(root))
                   for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def test_sigint_ends_a_throttled_scan_in_one_line(tree_roots, tmp_path):
    """Ctrl-C during ``scan --max_rate 1`` was a KeyboardInterrupt traceback from the engine's
    throttle; now it ends as `start` does: one line, exit status 130 (128 + SIGINT), and the
    throttle's wait gives way to the stop."""
    root = tree_roots["random"]
    job = subprocess.Popen(hpcingest_argv("scan", os.fsdecode(root), "--max_rate", "1"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    hang_guard = time.monotonic() + HANG_GUARD_S
    while not walking(job.pid, root):
        assert job.poll() is None and time.monotonic() < hang_guard, job.communicate()
        time.sleep(0.05)
    job.send_signal(signal.SIGINT)
    out, err = job.communicate(timeout=HANG_GUARD_S)
    assert job.returncode == 130 and out == b"", (out, err)
    assert err == b"hpcingest scan: stopped by SIGINT: the walk is incomplete, so no summary\n", err
