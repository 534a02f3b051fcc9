"""`hpcingest scan`: the walk alone, with a summary, an optional listing and JSON.

The listing is spooled by each rank to a node-local file while walking and then written
into the output at rank offsets (pwrite), so no rank ever holds the whole listing.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import stat
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from hpcingest import collectives
from hpcingest.escaping import json_safe, terminal_text
from hpcingest.exclusions import ExclusionError, Exclusions
from hpcingest.ingest.interrupts import StopOnSignals
from hpcingest.records import EntryBatch, EntryType, WalkError
from hpcingest.sources import check_source, check_walk_options, open_source
from hpcingest.sources.posix import SourceRootError
from hpcingest.launch import validated_on_root
from hpcingest.outputs import check_output, create_new, describe, same_file
from hpcingest.engine import Closing
from hpcingest.walk import run_walk

if TYPE_CHECKING:
    from hpcingest.sources.s3 import S3Settings

_TYPES = list(EntryType)
_TYPE_INDEX = {t: i for i, t in enumerate(_TYPES)}
_HISTOGRAM_BINS = 65  # bin k holds sizes with bit_length k: 0, 1, 2-3, 4-7, ...
_MAX_ERROR_SAMPLES = 100
_IFMT = 0o170000
_FOLD_ENTRIES = 1 << 16


class ScanSink:
    """Counts what the walk finds on this rank, and spools the listing if asked."""

    def __init__(self, root: bytes, listing: BinaryIO | None = None, echo_errors: bool = True) -> None:
        self.root = root
        self.listing = listing
        self.echo_errors = echo_errors
        self.type_counts = [0] * len(_TYPES)
        self.histogram = [0] * _HISTOGRAM_BINS
        self.bytes = 0
        self._modes = array("I")  # st_mode and st_size of entries not yet folded into the counts
        self._sizes = array("q")
        self.entries = 0
        self.excluded = 0
        self.errors = 0
        self.error_samples: list[str] = []

    def consume(self, batch: EntryBatch, ctx=None) -> None:
        stats = batch.stats
        self.entries += len(stats)
        self.excluded += batch.excluded
        self._modes.extend([s.st_mode for s in stats])
        self._sizes.extend([s.st_size for s in stats])
        if len(self._modes) >= _FOLD_ENTRIES:
            self.fold()
        if self.listing is not None and batch.names:
            prefix = batch.directory + b"/" if batch.directory else b""
            self.listing.write(b"".join([prefix + n + b"\0" for n in batch.names]))

    def fold(self) -> None:
        """Count the entries gathered since the last fold into types, bytes and the histogram.

        Why in bulk: counting one 50-entry batch at a time (with numpy) cost ~20 us, an eighth
        of the batch's lstats; tens of thousands of entries at once cost ~0.1 us each in plain
        Python, and a scan rank needs no numpy (half of its start-up CPU)."""
        if not self._modes:
            return
        formats = [mode & _IFMT for mode in self._modes]
        for fmt, count in Counter(formats).items():
            self.type_counts[_TYPE_INDEX[EntryType.from_mode(fmt)]] += count
        sizes = [size for fmt, size in zip(formats, self._sizes) if fmt == stat.S_IFREG]
        self.bytes += sum(sizes)
        for bin_index, count in Counter(map(int.bit_length, sizes)).items():  # bin k: sizes of bit_length k
            self.histogram[bin_index] += count
        self._modes = array("I")
        self._sizes = array("q")

    def error(self, error: WalkError) -> None:
        self.errors += 1
        text = error.describe(self.root)
        if len(self.error_samples) < _MAX_ERROR_SAMPLES:
            self.error_samples.append(text)
        if self.echo_errors:
            sys.stderr.write(f"hpcingest: {terminal_text(text, sys.stderr.encoding)}\n")


@dataclass
class ScanSummary:
    """What `scan` reports; the JSON form keeps these keys stable for scripts."""

    source: str
    ranks: int
    files: int
    directories: int
    symlinks: int
    other: int
    bytes: int
    errors: int
    excluded: int
    elapsed_s: float
    entries_per_s: float
    entries_by_type: dict[str, int]
    entries_per_rank: list[int]
    balance_max_over_mean: float
    steal_requests: int
    steals: int
    items_stolen: int
    termination_latency_s: float
    exit_latency_s: float
    peak_rss_mb_per_rank: list[float]
    termination_waves: int = 0  # counting waves rank 0 started (the last one proved the end)
    throttled_s: float = 0.0  # summed over ranks: waiting to hold --max_rate
    size_histogram: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """Valid UTF-8 JSON text; a source that is not UTF-8 keeps its exact bytes in ``source_b64``."""
        return json.dumps(json_safe(asdict(self)), indent=2)

    def to_text(self, encoding: str | None = "utf-8") -> str:
        """For a terminal writing ``encoding``: the source and the error samples are escaped
        (hpcingest.escaping), so a hostile name cannot colour, move or forge the output."""
        lines = [
            f"scanned {terminal_text(self.source, encoding)} with {self.ranks} rank(s) in {self.elapsed_s:.3f} s "
            f"({self.entries_per_s:,.0f} entries/s)",
            "entries: " + ", ".join(f"{k} {v:,}" for k, v in self.entries_by_type.items() if v),
            f"files {self.files:,}  directories {self.directories:,}  symlinks {self.symlinks:,}  "
            f"other {self.other:,}  bytes {self.bytes:,}",
            f"errors {self.errors:,}  excluded {self.excluded:,}",
            f"balance: entries per rank max/mean {self.balance_max_over_mean:.3f} "
            f"(min {min(self.entries_per_rank):,}, max {max(self.entries_per_rank):,})",
            f"stealing: {self.steal_requests:,} requests, {self.steals:,} successful, "
            f"{self.items_stolen:,} items moved",
        ]
        if self.size_histogram:
            lines.append("file sizes (power-of-two bins):")
            width = max(len(k) for k in self.size_histogram)
            top = max(self.size_histogram.values())
            for label, count in self.size_histogram.items():
                bar = "#" * max(1, round(40 * count / top))
                lines.append(f"  {label:>{width}} {count:>12,} {bar}")
        for sample in self.error_samples[:10]:
            lines.append(f"error: {terminal_text(sample, encoding)}")
        if self.errors > 10:
            lines.append(f"... {self.errors - 10:,} more errors (see --json)")
        return "\n".join(lines)


def _size_label(bin_index: int) -> str:
    if bin_index == 0:
        return "0 B"
    low = 1 << (bin_index - 1)
    return f">= {_human(low)}"


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024:
            return f"{n} {unit}"
        n //= 1024
    return f"{n} EiB"


@dataclass
class ScanConfig:
    root: bytes
    files_per_task: int
    exclusions: Exclusions
    list_path: str | None
    json_path: str | None
    quiet: bool
    s3: S3Settings | None = None  # set: root is /bucket/prefix, listed from S3
    max_rate: float | None = None  # entries per second for the whole job
    stat_threads: int = 1  # threads statting one batch at once


_LIST_NEEDS = ("the listing is written into a regular file by every rank at its own offset, so give a file name "
               "(it is replaced) and read the file afterwards")


def prepare(args) -> ScanConfig:
    """Validate everything before any rank starts work; raises ValueError with a message.

    An output must be somewhere writable, and never a directory.  The listing is moreover
    replaced by a fresh regular file (every rank writes its part at its offset), so it must not
    name anything else: ``--list /dev/null`` or ``/dev/stdout`` run as root would have deleted
    the device or the link for the whole system.  And the two must differ: the summary, written
    last, silently took the listing's place."""
    check_walk_options(args)
    exclusions = Exclusions.parse(args.exclude_file_type, args.exclude_file_name, args.exclude_directory_name)
    root, s3 = check_source(args)
    if args.list is not None:
        check_output("--list", args.list, regular_only=True, why=_LIST_NEEDS)
    if args.json is not None:
        check_output("--json", args.json, regular_only=False)  # /dev/stdout, a FIFO: written in place
    if args.list is not None and args.json is not None and same_file(args.list, args.json):
        raise ValueError(f"--list and --json name the same file ({args.json!r}): the summary would be written "
                         "over the listing; give two files")
    return ScanConfig(root, args.files_per_task, exclusions, args.list, args.json, args.quiet, s3, args.max_rate,
                      args.stat_threads)


def run(comm, args) -> int:
    """Entry point of `hpcingest scan` on every rank."""
    config = validated_on_root(comm, "scan", lambda: prepare(args), (ValueError, ExclusionError, SourceRootError))
    if config is None:
        return 2
    rank = comm.Get_rank()
    stop = threading.Event()
    with StopOnSignals(None, stop) as signals:
        summary = scan(comm, config, stop)
    if signals.exit_code is not None:
        if rank == 0:
            print(f"hpcingest scan: stopped by {signals.name}: the walk is incomplete, so no summary", file=sys.stderr)
        return signals.exit_code
    if rank != 0:
        return 0
    failed = _write_json(config.json_path, summary) if config.json_path else None
    if not config.quiet:
        print(summary.to_text(sys.stdout.encoding), flush=True)
    if failed:
        print(f"hpcingest scan: error: --json {failed}", file=sys.stderr)
        return 1
    return 0


def _write_json(path: str, summary: ScanSummary) -> str | None:
    """Write the JSON summary; a failure (a full disk, ``/dev/full``) is returned
    as one line, not raised: the walk is done and its summary is still worth printing, and an
    exception on rank 0 alone would have ended in a traceback and MPI_Abort."""
    try:
        with open(path, "w") as out:
            out.write(summary.to_json() + "\n")
    except BrokenPipeError:
        raise  # --json /dev/stdout | head: the reader went away, not an error (exit 141)
    except OSError as err:
        return describe(err) if err.filename is not None else f"{path!r}: {err.strerror or err}"
    return None


def scan(comm, config: ScanConfig, stop: threading.Event | None = None) -> ScanSummary | None:
    """Collective walk; returns the summary on rank 0 and None elsewhere.  Setting ``stop``
    (SIGINT, SIGTERM: see :func:`run`) abandons the rest of the walk.

    After the last entry there is no collective: the walk's closing round (the engine's own
    messages up and down the rank tree) carries every rank's listing size to every rank and its
    part of the summary to rank 0.  Each collective waits for the last rank to be scheduled
    (with 256 ranks on two cores, about a second each; five of them took 2.9 s).  The listing
    file is created before the walk, so writing it needs no round of its own."""
    source = open_source(config.root, config.files_per_task, config.exclusions, config.s3, config.stat_threads)
    with tempfile.TemporaryFile(prefix="hpcingest-list-") if config.list_path else nullcontext() as spool:
        sink = ScanSink(source.root, spool)
        if config.list_path and comm.Get_rank() == 0:
            _create_listing(config.list_path)
        collectives.barrier(comm)
        start = time.time()
        stats = run_walk(comm, source, sink, stop=stop, max_rate=config.max_rate,
                         closing=lambda s: _closing(sink, spool, s))
        if config.list_path:
            listing_sizes = [size for size, in stats.closing]
            _write_listing(spool, config.list_path, offset=sum(listing_sizes[:comm.Get_rank()]))
        if comm.Get_rank() != 0:
            return None
        return _summarize(comm, config, [pickle.loads(p) for p in stats.reports], start)


def _closing(sink: "ScanSink", spool: BinaryIO | None, stats) -> Closing:
    """This rank's part, taken when its walk is over: the listing's size for every rank (the
    offsets), its share of the summary for rank 0."""
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sink.fold()
    counts = [*sink.type_counts, *sink.histogram,
              sink.bytes, sink.errors, sink.excluded, stats.steal_requests, stats.steals_succeeded,
              stats.items_received, sink.entries, stats.termination_waves]
    timing = [rss_mb, stats.last_item_end, stats.stop_seen, stats.throttled_s]
    listing = 0
    if spool is not None:
        spool.flush()
        listing = spool.seek(0, os.SEEK_END)
    return Closing(shared=[listing], report=pickle.dumps((counts, timing, sink.error_samples)))


def _create_listing(path: str) -> None:
    """A fresh, empty listing file, never one reached through a symlink; only a regular file
    is replaced (what else is there now was put there since the options were checked)."""
    try:
        if stat.S_ISREG(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    os.close(create_new(path))


def _write_listing(spool: BinaryIO, path: str, offset: int) -> None:
    """This rank's spooled part of the listing, written at its offset (``pwrite``): one file, no gather.

    Why not MPI-IO: its file open and close are blocking collectives, and MPICH busy-polls in
    those; at 256 ranks on two cores they took about 10 s.  Plain POSIX writes at disjoint
    offsets of one file are what MPI-IO's independent writes were doing anyway.  The
    listing is whole when the command (every rank) has exited."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        spool.seek(0)
        while chunk := spool.read(8 << 20):
            view = memoryview(chunk)
            while view:
                written = os.pwrite(fd, view, offset)
                offset += written
                view = view[written:]
    finally:
        os.close(fd)


def _summarize(comm, config: ScanConfig, gathered: list, start: float) -> ScanSummary:
    """Rank 0's summary from every rank's part.  Python ints pickle exactly (byte totals pass 2**53)."""
    end = time.time()
    rows = [row for row, _, _ in gathered]
    timing = [row for _, row, _ in gathered]
    samples = [part for _, _, part in gathered]
    n_types = len(_TYPES)
    totals = [sum(column) for column in zip(*rows)]
    columns = list(zip(*timing))
    type_counts = dict(zip((t.value for t in _TYPES), totals[:n_types]))
    histogram = totals[n_types:n_types + _HISTOGRAM_BINS]
    tail = n_types + _HISTOGRAM_BINS
    total_bytes, errors, excluded, requests, steals, stolen = totals[tail:tail + 6]
    per_rank = [row[tail + 6] for row in rows]
    waves = totals[tail + 7]
    rss = [round(v, 1) for v in columns[0]]
    last_item = max(columns[1])
    stop_seen = max(columns[2])
    throttled = sum(columns[3])
    entries = sum(per_rank)
    elapsed = end - start
    mean = entries / len(per_rank)
    files = type_counts[EntryType.REGULAR.value]
    dirs = type_counts[EntryType.DIRECTORY.value]
    links = type_counts[EntryType.LINK.value]
    return ScanSummary(
        source=os.fsdecode(config.root),
        ranks=comm.Get_size(),
        files=files,
        directories=dirs,
        symlinks=links,
        other=entries - files - dirs - links,
        bytes=total_bytes,
        errors=errors,
        excluded=excluded,
        elapsed_s=round(elapsed, 6),
        entries_per_s=round(entries / elapsed, 1) if elapsed > 0 else 0.0,
        entries_by_type=type_counts,
        entries_per_rank=per_rank,
        balance_max_over_mean=round(max(per_rank) / mean, 4) if mean else 1.0,
        steal_requests=requests,
        steals=steals,
        items_stolen=stolen,
        termination_latency_s=round(max(0.0, stop_seen - last_item), 6) if last_item else 0.0,
        exit_latency_s=round(max(0.0, end - last_item), 6) if last_item else 0.0,
        peak_rss_mb_per_rank=rss,
        termination_waves=waves,
        throttled_s=round(throttled, 6),
        size_histogram={_size_label(i): c for i, c in enumerate(histogram) if c},
        error_samples=[s for part in samples for s in part][:_MAX_ERROR_SAMPLES],
    )
