"""Last-sync state per source path, kept in sqlite shards that each have exactly one owner rank.

The old framework keeps a ``sync_time`` per path in Redis.  Here the state of a path must be
found by whichever rank handles its directory next time, even with a different rank count, and
sqlite on Lustre/GPFS/NFS wants one writer per file and no shared-memory WAL.  So:

* rows live in one of K shard files chosen by a hash of the *directory* (K fixed when the
  state directory is created, recorded in it: at least 64 and at least the rank count of
  that first run, so later runs with other rank counts find every row);
* shard k is opened only by rank ``k % P``, in exclusive locking mode with a rollback journal;
* other ranks read and write it through engine service messages: one lookup per directory
  (request and reply, asynchronous so the asker keeps working meanwhile; the reply carries the
  whole directory, which the asker keeps for the directory's other batches, unless it holds
  more than 8,192 names: then each batch asks for its own) and
  fire-and-forget updates, which the owner commits in batches.  Completion reports (how many
  batches a directory made, and each batch done) are held back and sent many to a message.

Directories are stored once in a ``dirs`` table.  A directory's records are *segments*, one
row per ingested batch (names NUL-joined, times as float64, operations as bytes), so reading a
directory back is a split and a cast per segment instead of Python work per row, and a file
costs its name plus 9 bytes (issue #5 targets < 200 bytes per file).  Later segments override
earlier ones; a directory with many small segments is compacted when it is read.
"""

from __future__ import annotations

import os
import sqlite3
from array import array
import struct
import time
import urllib.parse
import zlib
from contextlib import contextmanager
from collections import OrderedDict, deque
from typing import Callable, Iterable, Mapping

from hpcingest.escaping import terminal_text
from hpcingest.launch import FatalError
from hpcingest.engine import FIRST_SERVICE_TAG, WorkContext, pack_items, unpack_items
from hpcingest.profile import recorder

TAG_LOOKUP = FIRST_SERVICE_TAG + 1
TAG_LOOKUP_REPLY = FIRST_SERVICE_TAG + 2
TAG_RECORD = FIRST_SERVICE_TAG + 3
TAG_DIRECTORY_PROGRESS = FIRST_SERVICE_TAG + 4
TAG_COMPLETE_ASK = FIRST_SERVICE_TAG + 5
TAG_COMPLETE_REPLY = FIRST_SERVICE_TAG + 6
_PROGRESS = struct.Struct("<qB")  # batches listed (-1: a batch is done), ok
_PROGRESS_PER_MESSAGE = 256
_PROGRESS_HOLD_S = 1.0

DEFAULT_SHARDS = 64
_COMMIT_EVERY_ROWS = 5000
_COMMIT_EVERY_S = 2.0
_CACHE_ROWS = 1_000_000  # per shard file; ~100 MB at worst, usually far less
WHOLE_REPLY_ROWS = 8192  # a directory up to this size is sent whole to a rank that asks, and kept there
_WHOLE, _PART = b"W", b"P"
_COMPACT_ROWS = 4096  # rows per segment after compaction
_MAX_SEGMENTS_PER_COMPACT_ROWS = 64  # more segments than this per 4,096 rows: compact on load


class RowCache:
    """Directories' records (name -> sync time) held in memory up to a budget of rows, the
    least recently used directory evicted first: a directory is read or fetched once and then
    serves its other batches.  The newest directory stays however large it is."""

    def __init__(self, budget_rows: int = _CACHE_ROWS) -> None:
        self.budget_rows = budget_rows
        self.rows = 0
        self._directories: OrderedDict[bytes, dict[bytes, float]] = OrderedDict()

    def get(self, directory: bytes) -> dict[bytes, float] | None:
        rows = self._directories.get(directory)
        if rows is not None:
            self._directories.move_to_end(directory)
        return rows

    def put(self, directory: bytes, rows: dict[bytes, float]) -> None:
        replaced = self._directories.pop(directory, None)
        self.rows += len(rows) - (len(replaced) if replaced is not None else 0)
        self._directories[directory] = rows
        self._evict()

    def update(self, directory: bytes, rows: Iterable[tuple[bytes, float]]) -> None:
        """New records of a directory held here (one not held is read from the shard when needed)."""
        held = self._directories.get(directory)
        if held is None:
            return
        before = len(held)
        held.update(rows)
        self.rows += len(held) - before
        self._evict()

    def __len__(self) -> int:
        return len(self._directories)

    def _evict(self) -> None:
        while self.rows > self.budget_rows and len(self._directories) > 1:
            _, evicted = self._directories.popitem(last=False)
            self.rows -= len(evicted)


def shard_of(directory: bytes, shards: int) -> int:
    return zlib.crc32(directory) % shards


class StateError(FatalError):
    """The sync state cannot be used (a shard or the shard count is damaged); the message
    names the file and what to do.  Raised on rank 0 before any work (:func:`check_state`),
    or on the rank that meets damage the check could not see, which ends the job."""


def state_error(path: str, err: BaseException) -> StateError:
    """One line for a state file that cannot be used; damage gets the way out.  Not
    --ignore_cache: it skips reading the state, not writing it, so the shard is opened all the
    same."""
    shown = terminal_text(path)
    code = getattr(err, "sqlite_errorcode", None)
    damaged = isinstance(err, ValueError) or (
        code is not None and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB))
    if not damaged:
        return StateError(f"the job's sync state {shown} cannot be used: {err}")
    state_dir = terminal_text(os.path.dirname(path))
    return StateError(f"the job's sync state {shown} is damaged ({err}): move the job's state directory aside "
                      f"(mv {state_dir} {state_dir}.damaged) and rerun: the next pass then compares every entry "
                      "with the catalog, as a first pass does; or use a new --job_name")


def _recorded_shards(marker: str) -> int | None:
    """The shard count a state directory records, None when it records none yet."""
    try:
        with open(marker, "rb") as f:
            text = f.read(64)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise state_error(marker, err) from None
    try:
        shards = int(text.strip())
    except ValueError:
        shards = 0
    if shards < 1:
        raise state_error(marker, ValueError(f"it holds {text[:20]!r}, not a shard count"))
    return shards


def check_state(state_dir: str) -> None:
    """Rank 0, before any rank works: the shard count and every shard can be read.  Each
    rank opens its own shards as the walk reaches them, so a damaged one (a disk or a copy
    cut it short) ended that rank with a traceback in the middle of the walk.  Opening a
    shard reads its header and schema: a file cut short or not a database fails here; the
    rarer damage deep inside one is still met by its rank (:class:`StateError`).  A shard
    left mid-transaction by a crash is rolled back here, as its rank would."""
    _recorded_shards(os.path.join(state_dir, "shards"))
    try:
        names = sorted(n for n in os.listdir(state_dir) if n.startswith("shard-") and n.endswith(".sqlite"))
    except FileNotFoundError:
        return
    for name in names:
        path = os.path.join(state_dir, name)
        try:
            connection = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=rw", uri=True)
            try:
                connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                connection.close()
        except sqlite3.Error as err:
            raise state_error(path, err) from None


def shard_count(state_dir: str, ranks: int = 1) -> int:
    """The shard count recorded in ``state_dir``.  A new state directory gets at least one
    shard per rank of the run that creates it (a power of two, at least 64), so every rank
    owns a shard: a rank that owns none serves no state and is home to no directory."""
    marker = os.path.join(state_dir, "shards")
    shards = _recorded_shards(marker)
    if shards is None:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        tmp = f"{marker}.{os.getpid()}"
        shards = max(DEFAULT_SHARDS, 1 << (max(ranks, 1) - 1).bit_length())
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(f"{shards}\n")
        os.replace(tmp, marker)  # every rank writes the same count: whichever lands is right
    return shards


class ShardFile:
    """One sqlite shard, opened by its owner only."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._open(path)
        except sqlite3.Error as err:
            raise state_error(path, err) from None

    def _open(self, path: str) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        os.chmod(path, 0o600)
        cur = self.connection
        cur.execute("PRAGMA locking_mode=EXCLUSIVE")
        cur.execute("PRAGMA journal_mode=TRUNCATE")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("CREATE TABLE IF NOT EXISTS dirs (id INTEGER PRIMARY KEY, path BLOB UNIQUE NOT NULL)")
        cur.execute("CREATE TABLE IF NOT EXISTS complete (path BLOB PRIMARY KEY, token TEXT NOT NULL)")
        cur.execute("CREATE TABLE IF NOT EXISTS segs (dir INTEGER NOT NULL, seq INTEGER NOT NULL, "
                    "names BLOB NOT NULL, times BLOB NOT NULL, ops BLOB NOT NULL, "
                    "PRIMARY KEY (dir, seq))")  # a rowid table: kilobyte rows overflow WITHOUT ROWID pages
        self._dir_ids: dict[bytes, int] = {}
        self._next_seq: dict[int, int] = {}
        self._marks: dict[bytes, str] = {}  # directory -> pass token, written at the next commit
        self._cache = RowCache()
        self.seconds = 0.0  # time spent in sqlite (and the cache), for the checkpoint-cost report
        self.cpu_seconds = 0.0
        self._pending = 0
        self._last_commit = time.monotonic()
        cur.execute("BEGIN")
        self._migrate_row_table()

    def _migrate_row_table(self) -> None:
        """State written by hpcingest before segments (one row per name) becomes segments."""
        if not self.connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'sync'").fetchone():
            return
        by_dir: dict[int, list[tuple[bytes, float, int]]] = {}
        for dir_id, name, t, op in self.connection.execute("SELECT dir, name, time, op FROM sync"):
            by_dir.setdefault(dir_id, []).append((name, t, op))
        for dir_id, rows in by_dir.items():
            for start in range(0, len(rows), _COMPACT_ROWS):
                self._append_segment(dir_id, rows[start:start + _COMPACT_ROWS])
        self.connection.execute("DROP TABLE sync")
        self.commit()

    def _dir_id(self, directory: bytes, create: bool) -> int | None:
        found = self._dir_ids.get(directory)
        if found is not None:
            return found
        row = self.connection.execute("SELECT id FROM dirs WHERE path = ?", (directory,)).fetchone()
        if row is None:
            if not create:
                return None
            row = (self.connection.execute("INSERT INTO dirs (path) VALUES (?)", (directory,)).lastrowid,)
        self._dir_ids[directory] = row[0]
        return row[0]

    def lookup(self, directory: bytes, names: list[bytes]) -> dict[bytes, float]:
        """Records of these names.  A directory is read whole (one range scan of the primary
        key) and cached, since its other batches usually follow: an IN query per batch cost
        several microseconds per name."""
        return _select(self.directory_rows(directory), names)

    def directory_rows(self, directory: bytes) -> dict[bytes, float]:
        """name -> last sync time for the whole directory (cached: its other batches follow)."""
        cached = self._cache.get(directory)  # most lookups: the directory's other batches
        if cached is not None:
            return cached
        with self._timed():
            return self._keep(directory, self._segments(directory))

    def _keep(self, directory: bytes, segments: list[tuple[bytes, bytes]]) -> dict[bytes, float]:
        rows = _merge_segments(segments)
        self._cache.put(directory, rows)
        return rows

    def reply_columns(self, directory: bytes, names: list[bytes]) -> tuple[bool, list[tuple[bytes, bytes]]]:
        """For a rank that asked about ``names`` of ``directory``: (True, the whole directory)
        when it is small enough for the asker to keep, as stored (passed on, not unpacked here
        and packed again); else (False, the records of ``names`` only): a million-file
        directory whose batches were stolen by hundreds of ranks must not be sent to each."""
        cached = self._cache.get(directory)
        if cached is None:
            with self._timed():
                segments = self._segments(directory)
            if _stored_rows(segments) <= WHOLE_REPLY_ROWS:
                return True, segments
            with self._timed():
                cached = self._keep(directory, segments)
        rows = cached if len(cached) <= WHOLE_REPLY_ROWS else _select(cached, names)
        return rows is cached, [_pack_columns(rows, rows.values(), b"")[:2]]

    def _segments(self, directory: bytes) -> list[tuple[bytes, bytes]]:
        """One statement finds the directory and its segments."""
        dir_id, segments = None, []
        for dir_id, names, times in self.connection.execute(
                "SELECT d.id, s.names, s.times FROM dirs d LEFT JOIN segs s ON s.dir = d.id "
                "WHERE d.path = ? ORDER BY s.seq", (directory,)):
            if names is not None:
                segments.append((names, times))
        if dir_id is not None:
            self._dir_ids[directory] = dir_id
            rows = _stored_rows(segments)
            if len(segments) > _MAX_SEGMENTS_PER_COMPACT_ROWS * (1 + rows // _COMPACT_ROWS):
                self._compact(dir_id)  # those read stay valid: later segments override earlier ones
        return segments

    def record(self, directory: bytes, rows: Iterable[tuple[bytes, float, int]]) -> None:
        with self._timed():
            self._record(directory, rows)

    def _record(self, directory: bytes, rows: Iterable[tuple[bytes, float, int]]) -> None:
        rows = list(rows)
        if not rows:
            return
        dir_id = self._dir_id(directory, create=True)
        self._cache.update(directory, ((name, t) for name, t, _ in rows))
        self._append_segment(dir_id, rows)
        self._pending += len(rows)
        if self._commit_due():
            self.commit()

    def _commit_due(self) -> bool:
        return self._pending >= _COMMIT_EVERY_ROWS or time.monotonic() - self._last_commit > _COMMIT_EVERY_S

    def _append_segment(self, dir_id: int, rows: list[tuple[bytes, float, int]]) -> None:
        """One row per batch: names NUL-joined, times as float64, operations as bytes; later
        segments override earlier ones name by name."""
        seq = self._next_seq.get(dir_id)
        if seq is None:
            found = self.connection.execute("SELECT max(seq) FROM segs WHERE dir = ?", (dir_id,)).fetchone()[0]
            seq = 0 if found is None else found + 1
        self.connection.execute("INSERT INTO segs (dir, seq, names, times, ops) VALUES (?, ?, ?, ?, ?)",
                                (dir_id, seq, *_pack_columns(*zip(*rows))))
        self._next_seq[dir_id] = seq + 1

    def _compact(self, dir_id: int) -> None:
        """Rewrite a directory's many small segments (years of periodic passes, each adding a
        few changed names) as few large ones, keeping the last record of each name."""
        latest: dict[bytes, tuple[float, int]] = {}
        for names, times, ops in self.connection.execute(
                "SELECT names, times, ops FROM segs WHERE dir = ? ORDER BY seq", (dir_id,)):
            names, times = _unpack_columns(names, times)
            latest.update(zip(names, zip(times, ops)))
        self.connection.execute("DELETE FROM segs WHERE dir = ?", (dir_id,))
        self._next_seq[dir_id] = 0
        items = [(name, t, op) for name, (t, op) in latest.items()]
        for start in range(0, len(items), _COMPACT_ROWS):
            self._append_segment(dir_id, items[start:start + _COMPACT_ROWS])

    def mark_complete(self, directory: bytes, token: str) -> None:
        """Kept until the next commit, which writes them all with the rows they vouch for;
        they count towards it like rows, so a long pass that records nothing (a rescan of an
        unchanged tree) still commits them as it goes."""
        self._marks[directory] = token
        self._pending += 1
        if self._commit_due():
            with self._timed():
                self.commit()

    def is_complete(self, directory: bytes, token: str) -> bool:
        if directory in self._marks:
            return self._marks[directory] == token
        with self._timed():
            row = self.connection.execute("SELECT token FROM complete WHERE path = ?", (directory,)).fetchone()
        return row is not None and row[0] == token

    def _write_marks(self) -> None:
        if self._marks:
            self.connection.executemany("INSERT OR REPLACE INTO complete (path, token) VALUES (?, ?)",
                                        self._marks.items())
            self._marks.clear()

    def commit(self) -> None:
        self._write_marks()
        self.connection.execute("COMMIT")
        self.connection.execute("BEGIN")
        self._pending = 0
        self._last_commit = time.monotonic()

    def close(self, keep_marks: bool = True) -> None:
        """``keep_marks=False`` when the pass is over: its completion marks could only ever
        serve a resumed run of it, so those not yet written are dropped instead of costing a
        commit (with its fsyncs) per shard at the end of every unchanged pass."""
        with self._timed():
            if keep_marks:
                self._write_marks()
            self.connection.execute("COMMIT")
            self.connection.close()

    @contextmanager
    def _timed(self):
        """Wall and CPU time in sqlite: with more ranks than cores the wall time also counts
        the moments the kernel ran another rank, so both are reported."""
        wall, cpu = time.perf_counter(), time.thread_time()
        recorder.current.begin("state")
        try:
            yield
        except sqlite3.Error as err:  # damage deep in the file, which opening it could not see
            raise state_error(self.path, err) from None
        finally:
            recorder.current.end()
            self.seconds += time.perf_counter() - wall
            self.cpu_seconds += time.thread_time() - cpu


def _select(rows: dict[bytes, tuple], names: list[bytes]) -> dict[bytes, tuple]:
    found = {}
    for name in names:
        row = rows.get(name)
        if row is not None:
            found[name] = row
    return found


def _pack_columns(names, times, ops) -> tuple[bytes, bytes, bytes]:
    """The one layout of records, in a segment and on the wire: names NUL-joined, times as
    float64, operations as bytes."""
    return b"\0".join(names), array("d", times).tobytes(), bytes(ops)


def _unpack_columns(names: bytes, times: bytes) -> tuple[list[bytes], list[float]]:
    return (names.split(b"\0") if times else []), memoryview(times).cast("d").tolist()


def _stored_rows(segments: Iterable[tuple[bytes, bytes]]) -> int:
    """Rows stored in (names, times) segments, a name overridden by a later segment counted
    again: an upper bound on the directory's names, read from the times' length alone."""
    return sum(len(times) for _, times in segments) // 8  # one float64 per row


def _merge_segments(segments: Iterable[tuple[bytes, bytes]]) -> dict[bytes, float]:
    """name -> sync time from (names, times) segments in order, later ones overriding: a
    split and a float cast per segment, no per-row Python step in sqlite (a per-row SELECT
    cost ~1 us a row)."""
    rows: dict[bytes, float] = {}
    for names, times in segments:
        rows.update(zip(*_unpack_columns(names, times)))
    return rows


def _encode_rows(directory: bytes, rows: list[tuple[bytes, float, int]]) -> bytes:
    return pack_items([directory, *_pack_columns(*(zip(*rows) if rows else ((), (), ())))])


def _decode_columns(payload: bytes) -> tuple[bytes, list[bytes], list[float], bytes]:
    directory, names, times, ops = unpack_items(payload)
    return directory, *_unpack_columns(names, times), ops


def _decode_rows(payload: bytes) -> tuple[bytes, list[tuple[bytes, float, int]]]:
    directory, names, times, ops = _decode_columns(payload)
    return directory, list(zip(names, times, ops))


class SyncState:
    """The per-path state as every rank sees it during one walk."""

    def __init__(self, state_dir: str, rank: int, size: int, ignore_cache: bool = False,
                 pass_token: str = "", resuming: bool = False) -> None:
        self.state_dir = state_dir
        self.rank = rank
        self.size = size
        self.ignore_cache = ignore_cache
        self.shards = shard_count(state_dir, size)
        self._owned: dict[int, ShardFile] = {}
        self._remote = RowCache()  # whole directories other ranks sent
        self._waiters: dict[bytes, deque] = {}  # directory -> [names, callback, sent] awaiting a reply
        self._large: set[bytes] = set()  # directories too large to be sent whole: asked batch by batch
        self.lookups_sent = 0
        self.pass_token = pass_token
        self.resuming = resuming and bool(pass_token)
        self._directories: dict[bytes, list] = {}  # owner side: [batches listed or None, done, all ok]
        self._complete_answers: dict[bytes, bool] = {}
        self._progress_out: dict[int, list[bytes]] = {}  # owner rank -> progress held back
        self._progress_since = 0.0
        self.sqlite_seconds = 0.0  # summed over this rank's shards when closed
        self.sqlite_cpu_seconds = 0.0

    def services(self) -> dict:
        return {TAG_LOOKUP: self._serve_lookup, TAG_LOOKUP_REPLY: self._take_reply, TAG_RECORD: self._serve_record,
                TAG_DIRECTORY_PROGRESS: self._serve_progress, TAG_COMPLETE_ASK: self._serve_complete_ask,
                TAG_COMPLETE_REPLY: self._take_complete_reply}

    # -- which directories this pass has completed (for resuming a pass) -------------------
    def directory_listed(self, ctx: WorkContext, directory: bytes, batches: int, ok: bool) -> None:
        """The lister of ``directory`` made ``batches`` stat batches (``ok``: it read it all)."""
        self._progress(ctx, directory, batches, ok)

    def batch_done(self, ctx: WorkContext, directory: bytes, ok: bool) -> None:
        """One batch of ``directory`` was ingested (``ok``: every entry succeeded)."""
        self._progress(ctx, directory, -1, ok)

    def completed_earlier(self, ctx: WorkContext, directory: bytes) -> bool:
        """Whether a run of this same pass (one that died or was stopped) finished every
        entry of ``directory``: then resuming need not stat them again."""
        if not self.resuming:
            return False
        shard, owner = self.owner(directory)
        if owner == self.rank:
            return self._shard(shard).is_complete(directory, self.pass_token)
        ctx.send(pack_items([directory]), owner, TAG_COMPLETE_ASK)
        ctx.wait_until(lambda: directory in self._complete_answers)
        return self._complete_answers.pop(directory)

    def _progress(self, ctx: WorkContext, directory: bytes, batches: int, ok: bool) -> None:
        """Held back and sent many to a message (one per batch was most of an unchanged pass's
        messages): when this rank runs out of work (:meth:`flush`), when one owner's share
        is large, or when the oldest is a second old.  A rank killed meanwhile only costs
        those directories a second look when the pass is resumed."""
        if not self.pass_token:
            return
        owner = self.owner(directory)[1]
        if owner == self.rank:
            self._count_progress(directory, batches, ok)
            return
        if not self._progress_out:
            self._progress_since = time.monotonic()
        held = self._progress_out.setdefault(owner, [])
        held.append(_PROGRESS.pack(batches, int(ok)) + directory)
        if len(held) >= _PROGRESS_PER_MESSAGE:
            ctx.send(pack_items(self._progress_out.pop(owner)), owner, TAG_DIRECTORY_PROGRESS)
        elif time.monotonic() - self._progress_since > _PROGRESS_HOLD_S:
            self.flush(ctx)

    def flush(self, ctx: WorkContext) -> None:
        """Send the progress held back (the engine calls this whenever the rank is idle)."""
        while self._progress_out:
            owner, held = self._progress_out.popitem()
            ctx.send(pack_items(held), owner, TAG_DIRECTORY_PROGRESS)

    def _serve_progress(self, payload: bytes, source: int, engine) -> None:
        for progress in unpack_items(payload):
            batches, ok = _PROGRESS.unpack_from(progress)
            self._count_progress(progress[_PROGRESS.size:], batches, bool(ok))

    def _count_progress(self, directory: bytes, batches: int, ok: bool) -> None:
        counts = self._directories.setdefault(directory, [None, 0, True])
        if batches >= 0:
            counts[0] = batches
        else:
            counts[1] += 1
        counts[2] = counts[2] and ok
        if counts[0] is not None and counts[1] >= counts[0]:
            del self._directories[directory]
            if counts[2]:
                self._shard(self.owner(directory)[0]).mark_complete(directory, self.pass_token)

    def _serve_complete_ask(self, payload: bytes, source: int, engine) -> None:
        (directory,) = unpack_items(payload)
        done = self._shard(self.owner(directory)[0]).is_complete(directory, self.pass_token)
        engine.send(bytes([done]) + directory, source, TAG_COMPLETE_REPLY)

    def _take_complete_reply(self, payload: bytes, source: int, engine) -> None:
        self._complete_answers[payload[1:]] = bool(payload[0])

    def home_rank(self, directory: bytes) -> int | None:
        """The rank that owns ``directory``'s shard, where its listing is best done; None when
        some ranks own no shard (a state made by a smaller run): homes would then crowd onto
        the ranks that do."""
        return self.owner(directory)[1] if self.shards >= self.size else None

    def owner(self, directory: bytes) -> tuple[int, int]:
        shard = shard_of(directory, self.shards)
        return shard, shard % self.size

    def _shard(self, shard: int) -> ShardFile:
        found = self._owned.get(shard)
        if found is None:
            found = ShardFile(os.path.join(self.state_dir, f"shard-{shard:04d}.sqlite"))
            self._owned[shard] = found
        return found

    # -- what the ingest sink calls ------------------------------------------------------
    def lookup(self, ctx: WorkContext, directory: bytes, names: list[bytes]) -> dict[bytes, float]:
        """Previous records of ``names`` in ``directory`` (empty with --ignore_cache, which
        skips reads only)."""
        found: list[Mapping[bytes, float]] = []
        if not self.lookup_async(ctx, directory, names, found.append):
            with recorder.current.span("state"):
                ctx.wait_until(lambda: bool(found))
        return _select(found[0], names)

    def at_hand(self, directory: bytes) -> Mapping[bytes, float] | None:
        """The directory's records (name -> last sync time; read-only) if no message is
        needed for them (a local shard, or a directory fetched before), else None."""
        if self.ignore_cache:
            return {}
        shard, owner = self.owner(directory)
        if owner == self.rank:
            return self._shard(shard).directory_rows(directory)
        return self._remote.get(directory)

    def lookup_async(self, ctx: WorkContext, directory: bytes, names: list[bytes],
                     on_reply: Callable[[Mapping[bytes, float]], None]) -> bool:
        """Like lookup, without waiting: ``on_reply`` gets records of at least ``names`` (read
        only) when they arrive (at once, and True is returned, when they are at hand).  It may
        run inside message handling, so it must only queue work.

        The owner answers with the whole directory when it is small, which this rank keeps:
        the other batches of a directory usually come to the same rank, and then cost no
        message at all (those that come meanwhile wait for that reply).  A large directory is
        answered with the names asked for, batch by batch."""
        rows = self.at_hand(directory)
        if rows is not None:
            on_reply(rows)
            return True
        waiting = self._waiters.get(directory)
        if waiting is None:
            waiting = self._waiters[directory] = deque()
        request = [names, on_reply, False]
        if not waiting or directory in self._large:
            self._ask(ctx, directory, request)
        waiting.append(request)  # the requests sent come first: replies answer them in order
        return False

    def _ask(self, ctx: WorkContext, directory: bytes, request: list) -> None:
        request[2] = True
        self.lookups_sent += 1
        ctx.send(pack_items([directory, *request[0]]), self.owner(directory)[1], TAG_LOOKUP)

    def record(self, ctx: WorkContext, directory: bytes, rows: list[tuple[bytes, float, int]]) -> None:
        if not rows:
            return
        shard, owner = self.owner(directory)
        if owner == self.rank:
            self._shard(shard).record(directory, rows)
        else:
            ctx.send(_encode_rows(directory, rows), owner, TAG_RECORD)

    def close(self, pass_over: bool = False) -> None:
        """``pass_over``: the walk ended without being stopped, so the pass is complete."""
        for shard in self._owned.values():
            shard.close(keep_marks=not pass_over)
            self.sqlite_seconds += shard.seconds
            self.sqlite_cpu_seconds += shard.cpu_seconds
        self._owned.clear()

    # -- services --------------------------------------------------------------------------
    def _serve_lookup(self, payload: bytes, source: int, engine) -> None:
        directory, *names = unpack_items(payload)
        whole, segments = self._shard(self.owner(directory)[0]).reply_columns(directory, names)
        engine.send(pack_items([_WHOLE if whole else _PART, directory,
                                *(column for segment in segments for column in segment)]), source, TAG_LOOKUP_REPLY)

    def _take_reply(self, payload: bytes, source: int, engine) -> None:
        kind, directory, *columns = unpack_items(payload)
        rows = _merge_segments(zip(columns[::2], columns[1::2]))
        waiting = self._waiters[directory]
        _, callback, _ = waiting.popleft()  # the oldest request sent: this reply answers it
        if callback is not None:
            callback(rows)
        if kind == _WHOLE:  # kept; it answers every request of the directory made meanwhile
            self._remote.put(directory, rows)
            for request in waiting:
                if request[1] is not None:
                    request[1](rows)
                    request[1] = None
            waiting = deque(request for request in waiting if request[2])  # their replies are still due
        else:  # a large directory: each waiting batch asks for its own names
            self._large.add(directory)
            for request in waiting:
                if not request[2]:
                    self._ask(engine, directory, request)
        if waiting:
            self._waiters[directory] = waiting
        else:
            del self._waiters[directory]

    def _serve_record(self, payload: bytes, source: int, engine) -> None:
        directory, rows = _decode_rows(payload)
        self._shard(self.owner(directory)[0]).record(directory, rows)
