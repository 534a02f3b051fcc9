"""POSIX source: turns directories into stealable work items and stats names in batches.

Two kinds of work item, both plain bytes so the engine can ship them between ranks:

* ``D<relpath>``: list one directory.  Its names are cut into stat batches *while* it is
  being listed; past the first few, the batches are dealt round robin over all ranks (the
  lister included), so a directory of a million entries spreads at once, not steal by steal.
* ``S<relpath>\\0<name>\\0<name>...``: lstat a batch of names of one directory, hand the
  results to the sink, and push a ``D`` item for every subdirectory found.

Everything is opened relative to a directory descriptor, so paths longer than PATH_MAX
(deep chains of long names) work, and nothing ever follows a symlink.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from operator import attrgetter, methodcaller
from typing import Iterator, Protocol

from hpcingest.engine import WorkContext
from hpcingest.exclusions import Exclusions
from hpcingest.profile import recorder
from hpcingest.records import EntryBatch, EntryType, WalkError
from hpcingest.sources.placement import Placement
from hpcingest.sources.posix_open import PATH_CHUNK, DirectoryHandles, open_directory

LIST_DIR = b"D"[0]
STAT_BATCH = b"S"[0]
_ENTRY_NAME = attrgetter("name")
_ENCODE_NAME = methodcaller("encode", sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())  # os.fsencode, in C


class Sink(Protocol):
    """What a source hands its results to.

    ``consume`` gets the engine context so a sink can talk to services on other ranks.
    A batch's subdirectories are listed only after ``consume`` returns, so a sink that
    creates a collection per directory has it in place before any of its children arrive.

    Optional hooks, looked up with getattr (sources call them when present):
    ``completed_earlier(directory, ctx)`` (a resumed pass skips finished directories),
    ``listed(directory, batches, ok, ctx)`` (completion tracking), and
    ``wants_listing(directory)`` / ``directory_names(directory, names, ctx)`` (the delete
    modes: a directory's complete listing, handed over only when it was read in full), and
    ``home_rank(directory)`` (the rank that should list it, e.g. where its state lives, or None),
    and ``batches_kept_by_lister`` (how many of a directory's stat batches its lister keeps
    before dealing the rest out; a sink whose state is read best where the directory was
    listed keeps more).
    """

    def consume(self, batch: EntryBatch, ctx: WorkContext) -> None: ...

    def error(self, error: WalkError) -> None: ...


def list_item(relpath: bytes) -> bytes:
    return b"D" + relpath


def stat_item(directory: bytes, names: list[bytes]) -> bytes:
    return b"S" + directory + b"\0" + b"\0".join(names)


class SourceRootError(ValueError):
    """The source root cannot be walked at all: a usage error, reported before work starts."""


def check_root(root: str | bytes) -> bytes:
    """Absolute bytes path of a walkable directory, or a SourceRootError that says why.

    A root past PATH_MAX is opened piecewise (and, as every directory below a root, not through
    a symlink); a shorter one may be a symlink to the directory, followed once as before."""
    path = os.path.abspath(os.fsencode(root))
    shown = os.fsdecode(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) if len(path) < PATH_CHUNK \
            else open_directory(path, b"")
    except NotADirectoryError:
        raise SourceRootError(f"source {shown!r} is not a directory") from None
    except OSError as err:
        raise SourceRootError(f"source {shown!r}: {err.strerror}") from None
    try:
        with os.scandir(fd) as it:
            next(it, None)
    except OSError as err:
        raise SourceRootError(f"source {shown!r} cannot be listed: {err.strerror}") from None
    finally:
        os.close(fd)
    return path


BATCHES_KEPT_BY_LISTER = 2  # a listing's first stat batches stay with its lister; the rest are dealt
BATCHES_PER_DEAL = 2  # dealt batches travel this many to a message


class PosixSource:
    """Walks the tree under ``root`` (an absolute, existing directory)."""

    def __init__(self, root: bytes, files_per_task: int = 50, exclusions: Exclusions | None = None,
                 stat_threads: int = 1) -> None:
        if files_per_task < 1:
            raise ValueError("files_per_task must be at least 1")
        if stat_threads < 1:
            raise ValueError("stat_threads must be at least 1")
        self.root = os.path.realpath(root)
        self.files_per_task = files_per_task
        self.exclusions = exclusions or Exclusions()
        self.stat_threads = stat_threads
        self._stat_pool: ThreadPoolExecutor | None = None
        self._placement = Placement()
        self._directories = DirectoryHandles(self.root)

    def close(self) -> None:
        """The walk is over: close the directories kept open and stop the stat threads."""
        self._directories.close()
        if self._stat_pool is not None:
            self._stat_pool.shutdown()
            self._stat_pool = None

    def initial_items(self) -> list[bytes]:
        return [list_item(b"")]

    def process(self, item: bytes, ctx: WorkContext, sink: Sink) -> None:
        kind = item[0]
        if kind == LIST_DIR:
            with recorder.current.span("list"):
                self._list_directory(item[1:], ctx, sink)
        elif kind == STAT_BATCH:
            directory, _, names = item[1:].partition(b"\0")
            with recorder.current.span("stat"):
                self._stat_batch(directory, names.split(b"\0"), ctx, sink)
        else:
            raise ValueError(f"unknown POSIX work item kind {kind!r}")

    # -- listing ------------------------------------------------------------------------
    def _list_directory(self, directory: bytes, ctx: WorkContext, sink: Sink) -> None:
        completed = getattr(sink, "completed_earlier", None)
        if completed is not None and completed(directory, ctx):
            self._descend_only(directory, ctx, sink)
            return
        batches, ok = 0, True
        wants_listing = getattr(sink, "wants_listing", None)
        every_name: list[bytes] | None = [] if wants_listing is not None and wants_listing(directory) else None
        try:
            listing = self._scan_directory(directory)
        except OSError as err:
            sink.error(WalkError.from_os_error(directory, "opendir", err))
            self._listed(sink, directory, 0, False, ctx)
            return
        keep = getattr(sink, "batches_kept_by_lister", BATCHES_KEPT_BY_LISTER)
        dealt: list[bytes] = []
        try:
            with listing as entries:
                all_names = _entry_names(entries)
                while names := list(islice(all_names, self.files_per_task)):
                    if batches < keep:
                        ctx.push(stat_item(directory, names))
                    else:
                        dealt.append(stat_item(directory, names))
                        if len(dealt) == BATCHES_PER_DEAL:
                            self._placement.hand_out(ctx, dealt)
                            dealt = []
                    batches += 1
                    if every_name is not None:
                        every_name.extend(names)
        except OSError as err:
            sink.error(WalkError.from_os_error(directory, "readdir", err))
            ok = False
        if dealt:
            self._placement.hand_out(ctx, dealt)
        if ok and every_name is not None:
            sink.directory_names(directory, every_name, ctx)  # only a complete listing may decide deletions
        self._listed(sink, directory, batches, ok, ctx)

    @staticmethod
    def _listed(sink: Sink, directory: bytes, batches: int, ok: bool, ctx: WorkContext) -> None:
        """Tell a sink that tracks directory completion how many batches a directory made."""
        listed = getattr(sink, "listed", None)
        if listed is not None:
            listed(directory, batches, ok, ctx)

    def _descend_only(self, directory: bytes, ctx: WorkContext, sink: Sink) -> None:
        """A directory a previous run of this pass finished: only its subdirectories are
        walked (told apart by d_type, no stat), its files are not looked at again."""
        try:
            with self._scan_directory(directory) as entries:
                for entry in entries:
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                    child = _join(directory, _ENCODE_NAME(entry.name))
                    if not self.exclusions.excludes(EntryType.DIRECTORY, self.root + b"/" + child):
                        ctx.push(list_item(child))
        except OSError as err:
            sink.error(WalkError.from_os_error(directory, "opendir", err))

    def _scan_directory(self, directory: bytes):
        """os.scandir of the directory's kept descriptor (scandir reads a duplicate of it)."""
        return os.scandir(self._directories.get(directory))

    # -- stat batches -------------------------------------------------------------------
    def _stat_batch(self, directory: bytes, names: list[bytes], ctx: WorkContext, sink: Sink) -> None:
        # under --max_rate each lstat waits its turn: a whole batch paid up front made every rank
        # that received work at the same moment stat its batch at the same moment too
        throttle = ctx.throttle if ctx.throttling else None
        statted_at = time.time()
        try:
            fd = self._directories.get(directory)
        except OSError as err:
            # The directory vanished or changed since it was listed: every name is lost.
            for name in names:
                sink.error(WalkError.from_os_error(_join(directory, name), "lstat", err))
            sink.consume(EntryBatch(directory, errors=len(names)), ctx)
            return
        batch = EntryBatch(directory, statted_at=statted_at)
        subdirectories: list[bytes] = []
        exclusions = self.exclusions
        check_paths = exclusions.needs_paths or bool(exclusions.types)
        results = self._lstat_names(names, fd, throttle)
        for name, st in zip(names, results):
            if isinstance(st, OSError):
                sink.error(WalkError.from_os_error(_join(directory, name), "lstat", st))
                batch.errors += 1
                continue
            if check_paths and exclusions.excludes(
                    EntryType.from_mode(st.st_mode), self.root + b"/" + _join(directory, name)):
                batch.excluded += 1
                continue
            batch.names.append(name)
            batch.stats.append(st)
            if stat.S_ISDIR(st.st_mode):
                subdirectories.append(_join(directory, name))
        sink.consume(batch, ctx)
        self._placement.push_listings(subdirectories, list_item, ctx, sink)

    def _lstat_names(self, names: list[bytes], fd: int, throttle) -> list[os.stat_result | OSError]:
        """lstat of each name in ``fd``, in order; an error in place of a result.

        With ``stat_threads`` > 1 the batch is cut into that many runs, each statted by a
        thread of its own: lstat releases the GIL, so on a filesystem where a stat is a round
        trip (Lustre, GPFS) one rank keeps that many requests in flight instead of one."""
        if throttle is not None or self.stat_threads == 1 or len(names) == 1:
            return [_lstat_or_error(name, fd, throttle) for name in names]
        if self._stat_pool is None:
            self._stat_pool = ThreadPoolExecutor(self.stat_threads, thread_name_prefix="lstat")
        runs = [names[i::self.stat_threads] for i in range(min(self.stat_threads, len(names)))]
        statted = list(self._stat_pool.map(lambda run: [_lstat_or_error(name, fd, None) for name in run], runs))
        results: list[os.stat_result | OSError] = [None] * len(names)  # type: ignore[list-item]
        for i, run in enumerate(statted):
            results[i::self.stat_threads] = run
        return results


def _lstat_or_error(name: bytes, fd: int, throttle) -> os.stat_result | OSError:
    if throttle is not None:
        throttle(1)
    try:
        return os.lstat(name, dir_fd=fd)
    except OSError as err:
        return err


def _entry_names(entries) -> Iterator[bytes]:
    """The names as bytes (a scandir of a descriptor yields str), without a Python step per entry."""
    return map(_ENCODE_NAME, map(_ENTRY_NAME, entries))


def _join(directory: bytes, name: bytes) -> bytes:
    return directory + b"/" + name if directory else name
