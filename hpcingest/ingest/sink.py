"""The ingest sink: each batch of one directory's entries becomes collections and data objects.

Per batch, before any per-file work: one sync-state lookup (whichever rank owns the shard)
and, for the entries the state cannot vouch for, one catalog query for the whole batch
(``DATA_NAME in (...)``, and one for subcollections).  Then each entry is decided
(hpcingest.ingest.decide) and acted on through the event handler's hooks, with the
handler's retries, delay and timeout applied per entry: one bad file never costs the rest
of its batch.  Successful entries get their sync time (taken before the work) recorded.
"""

from __future__ import annotations

import logging
import os
import posixpath
import signal
import stat
import time
import uuid
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import compress
from operator import attrgetter
from typing import Any, Callable

from hpcingest.compat.utils import Operation
from hpcingest.engine import WorkContext
from hpcingest.handler import EventHandler, HandlerError
from hpcingest.ingest.config import IngestConfig
from hpcingest.ingest.content import FileContent, S3Content, removed_on_failure
from hpcingest.ingest.deletion import DeletionSweep
from hpcingest.ingest.decide import Change, classify, needs_catalog, object_sync_time, sync_time, too_young
from hpcingest.ingest.catalog import CatalogObject, CatalogView, catalog_view
from hpcingest.ingest.failures import Failure, FailureLog, describe_error, errno_name, old_log_fields
from hpcingest.ingest.halt import refused_registration_message, request_halt
from hpcingest.irods.connection import IrodsConnection
from hpcingest.irods.errors import IrodsOperationError, is_privilege_refusal, operation_error
from hpcingest.jobdir import JobDirectory
from hpcingest.lazy import lazy_module
from hpcingest.naming import (MAX_PATH_BYTES, REASON_UNICODE, LogicalName, catalog_physical_path, logical_path,
                              path_bytes, special_file_avu)
from hpcingest.profile import recorder
from hpcingest.records import Entry, EntryBatch, EntryType, WalkError
from hpcingest.sources import posix_open
from hpcingest.sources.posix import BATCHES_KEPT_BY_LISTER
from hpcingest.syncstate import WHOLE_REPLY_ROWS, SyncState

ops = lazy_module("hpcingest.irods.operations")

RESUME = b"R"  # a local work item: ingest the batches whose sync state has arrived
_MAX_WAITING = 64
_PUT_FAMILY = (Operation.PUT, Operation.PUT_SYNC, Operation.PUT_APPEND)
_MODE, _SIZE, _MTIME, _CTIME = (attrgetter(f"st_{n}") for n in ("mode", "size", "mtime", "ctime"))
_NEVER_UPLOADED = (EntryType.PIPE, EntryType.CHARACTER, EntryType.BLOCK, EntryType.SOCKET, EntryType.LINK)
# a FIFO or device registered in place would be opened by whoever reads the object back: a read
# blocks an agent forever (a FIFO) or never ends (/dev/zero); sockets and links are kept, as before
_NEVER_REGISTERED = (EntryType.PIPE, EntryType.CHARACTER, EntryType.BLOCK)
_REGISTER_FAMILY = (Operation.REGISTER_SYNC.name, Operation.REGISTER_AS_REPLICA_SYNC.name)


class EntryTimeout(Exception):
    """The handler's timeout() ran out for one entry."""


@contextmanager
def time_limit(seconds: float):
    """Interrupt the entry's work after ``seconds`` (SIGALRM), like the old soft time limit."""
    if not seconds or seconds <= 0:
        yield
        return

    def expire(signum, frame):
        raise EntryTimeout(f"timed out after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class IngestCounters:
    """What this rank did; summed over ranks for the pass summary."""

    entries: int = 0
    batches: int = 0  # stat batches ingested: the old framework's "tasks"
    failed_batches: int = 0  # batches with an entry that failed (not merely skipped)
    by_type: Counter = field(default_factory=Counter)  # entries by EntryType value
    bytes_scanned: int = 0  # sizes of the regular files seen
    unchanged: int = 0
    created: Counter = field(default_factory=Counter)  # by operation name
    updated: Counter = field(default_factory=Counter)
    metadata_only: int = 0
    ignored_existing: int = 0  # PUT leaves existing objects alone
    collections_created: int = 0
    collections_existing: int = 0
    failed: int = 0
    skipped: int = 0
    too_young: int = 0  # changed less than --min_age ago: left for a later pass
    retries: int = 0
    bytes_put: int = 0
    bytes_registered: int = 0  # sizes of the files registered in place (created or updated)
    catalog_queries: int = 0
    state_lookups: int = 0
    deleted_objects: int = 0  # delete modes: gone from the source, unregistered or removed
    deleted_collections: int = 0
    connections_opened: int = 0
    agents_refused: int = 0  # logins the iRODS server answered without an agent (see hpcingest.irods.refusal)
    directories_resumed: int = 0  # finished by an earlier run of this pass: not statted again
    state_seconds: float = 0.0
    state_cpu_seconds: float = 0.0
    cpu_seconds: float = 0.0


def _noop(*args: Any, **options: Any) -> None:
    """The operation of a hook-only event (NO_OP, ctime-only changes, existing collections)."""


class IngestSink:
    def __init__(self, config: IngestConfig, handler: EventHandler, connection: IrodsConnection,
                 state: SyncState, failures: FailureLog, logger: Any, base_meta: dict[str, Any],
                 content: FileContent | S3Content | None = None) -> None:
        self.config = config
        self.handler = handler
        self.connection = connection
        self.state = state
        self.failures = failures
        self.logger = logger
        self._log_per_file = logger.is_enabled_for(logging.INFO)  # the old tool's per-file INFO lines
        # the built-in handler registers every new file alike, so those can be pipelined
        self._pipeline_registrations = config.handler_text is None and config.s3 is None
        self.base_meta = base_meta
        self.char_map = handler.character_map()
        self.counters = IngestCounters()
        self.deletion = DeletionSweep(self)
        self.content = content if content is not None else FileContent(config.root)
        self._ready: deque = deque()  # (batch, previous state) ready to ingest
        self._waiting = 0  # batches whose state lookup is still travelling
        self._euid = os.geteuid()
        self._groups = set(os.getgroups()) | {os.getegid()}
        self.halted = False  # the server refused this user registration: nothing more is tried

    # -- the sink protocol ---------------------------------------------------------------
    def consume(self, batch: EntryBatch, ctx: WorkContext) -> None:
        """Ask for the batch's sync state and carry on: a remote shard answers later, and the
        batch is resumed then as local work (with more ranks than cores a reply can take
        milliseconds, which would otherwise be lost per batch)."""
        with recorder.current.span("sink"):
            self._consume(batch, ctx)

    def _consume(self, batch: EntryBatch, ctx: WorkContext) -> None:
        self.counters.state_lookups += 1
        has_subdirectories = self._count_scanned(batch).get(stat.S_IFDIR)
        previous = self.state.at_hand(batch.directory)
        if previous is not None or has_subdirectories:
            # most batches find the state at hand (a local shard, or a directory fetched for an
            # earlier batch); one with subdirectories waits for it, since they are listed as
            # soon as this returns and their collections must exist by then
            self._ingest(batch, previous if previous is not None else
                         self.state.lookup(ctx, batch.directory, batch.names), ctx)
            return
        while self._waiting >= _MAX_WAITING:  # bound the batches held while their state travels
            ctx.wait_until(lambda: bool(self._ready) or self._waiting < _MAX_WAITING)
            self._drain_ready(ctx)
        self._waiting += 1

        def resume(previous) -> None:
            self._waiting -= 1
            self._ready.append((batch, previous))
            ctx.push_local(RESUME)

        self.state.lookup_async(ctx, batch.directory, batch.names, resume)

    def home_rank(self, directory: bytes) -> int | None:
        """Source hook: a directory is best listed by the rank that owns its sync state, since
        whoever lists it also stats most of its batches: the state is then read locally
        instead of asked for and sent back."""
        return self.state.home_rank(directory)

    @property
    def batches_kept_by_lister(self) -> int:
        """Source hook: a directory small enough for its state to travel whole is best statted
        where it was listed, its home, where that state is read locally; past that size every
        batch asks for just its own records wherever it runs, so the rest is dealt out."""
        return max(BATCHES_KEPT_BY_LISTER, WHOLE_REPLY_ROWS // self.config.files_per_task)

    def completed_earlier(self, directory: bytes, ctx: WorkContext) -> bool:
        """Source hook: a directory an earlier run of this pass finished is not statted again."""
        done = self.state.completed_earlier(ctx, directory)
        self.counters.directories_resumed += done
        return done

    def wants_listing(self, directory: bytes) -> bool:
        """Source hook: whether a delete mode applies to ``directory`` (then the lister hands
        over its complete listing through ``directory_names``)."""
        return self.deletion.wants_listing(directory)

    def directory_names(self, directory: bytes, names: list[bytes], ctx: WorkContext) -> None:
        """Source hook: every name ``directory`` holds; what its collection has beyond them goes."""
        with recorder.current.span("delete"):
            self.deletion.sweep(directory, names, ctx)

    def listed(self, directory: bytes, batches: int, ok: bool, ctx: WorkContext) -> None:
        """Source hook: how many batches a directory made, for completion tracking."""
        self.state.directory_listed(ctx, directory, batches, ok)

    def resume(self, item: bytes, ctx: WorkContext) -> None:
        """Local work item: ingest the batches whose sync state has arrived."""
        self._drain_ready(ctx)

    def _drain_ready(self, ctx: WorkContext) -> None:
        with recorder.current.span("sink"):
            while self._ready:
                self._ingest(*self._ready.popleft(), ctx)

    def _ingest(self, batch: EntryBatch, previous, ctx: WorkContext) -> None:
        counters = self.counters
        failed, troubles = counters.failed, counters.failed + counters.skipped + counters.too_young
        if not self.halted:
            self._ingest_entries(batch, previous, ctx)
        # a batch that left an entry (failed, skipped, too young) is looked at again when the pass resumes
        ok = batch.errors == 0 and counters.failed + counters.skipped + counters.too_young == troubles \
            and not self.halted
        counters.batches += 1
        counters.failed_batches += counters.failed > failed
        self.state.batch_done(ctx, batch.directory, ok)

    def _ingest_entries(self, batch: EntryBatch, previous, ctx: WorkContext) -> None:
        if previous:  # the unchanged majority never becomes Entry objects
            stats = batch.stats
            keep = list(compress(range(len(stats)), map(needs_catalog, map(_MTIME, stats), map(_CTIME, stats),
                                                        map(previous.get, batch.names))))
            self.counters.unchanged += len(batch) - len(keep)
            if self._log_per_file and len(keep) < len(batch):
                self._log_unchanged_entries(batch, set(keep))
            if not keep:
                return  # the common case of a rescan: nothing to look at, nothing to record
            batch = EntryBatch(batch.directory, [batch.names[i] for i in keep], [batch.stats[i] for i in keep],
                               batch.excluded, batch.errors, batch.statted_at)
        pending = batch.entries()
        if self.config.min_age:
            pending = self._leave_young(pending)
        names = {e.relpath: logical_path(self.config.target, self.config.root, e.relpath, self.char_map)
                 for e in pending}
        pending = [e for e in pending if not self._skipped_up_front(e, names[e.relpath])]
        catalog = self._catalog(batch.directory, pending, names)
        synced = sync_time(batch.statted_at, batch.stats, whole_seconds=self.config.s3 is not None)
        done = []
        if self._pipeline_registrations and catalog.known:
            pending = self._register_new_files(pending, names, catalog, synced, done, ctx)
        for entry in pending:
            if self.halted:
                break
            ctx.poll()  # a batch of uploads takes long: keep answering steal and state requests
            operation = self._sync_entry(entry, names[entry.relpath], previous.get(entry.name), catalog, ctx)
            if operation is not None:
                done.append((entry.name, synced if self.config.s3 is None else object_sync_time(synced, entry.mtime),
                             operation))
        self.state.record(ctx, batch.directory, done)

    def _leave_young(self, pending: list[Entry]) -> list[Entry]:
        """--min_age: entries changed too recently are neither ingested nor recorded as synced,
        so a later pass takes them once they are complete.  Directories are always taken: the
        collections must exist for what they hold."""
        now, min_age = time.time(), self.config.min_age
        young = [e.type is not EntryType.DIRECTORY and too_young(e.ctime, now, min_age) for e in pending]
        if not any(young):
            return pending
        self.counters.too_young += sum(young)
        if self._log_per_file:
            for entry in compress(pending, young):
                self.logger.info("too_young", path=self._source(entry), min_age=min_age)
        return [e for e, is_young in zip(pending, young) if not is_young]

    def _register_new_files(self, pending: list[Entry], names: dict[bytes, LogicalName], catalog: CatalogView,
                            synced: float, done: list, ctx: WorkContext) -> list[Entry]:
        """Register the batch's new regular files with pipelined requests; returns what is left
        for the one-by-one path (everything else, and any registration that failed).

        Only for the built-in handler (REGISTER_SYNC, no hooks, no proxying, no path mapping):
        with a handler file each entry may choose its own operation and run hooks around its
        create, which must happen in order, one request at a time."""
        new, left, registrations = [], [], []
        for entry in pending:
            name = names[entry.relpath]
            plain_new_file = entry.type is EntryType.REGULAR and name.reason is None \
                and catalog.objects.get(name.path) is None
            physical = catalog_physical_path(os.path.join(self.config.root, entry.relpath)) if plain_new_file else ""
            if plain_new_file and path_bytes(physical) <= MAX_PATH_BYTES:  # else skipped one by one
                new.append(entry)
                registrations.append(ops.Registration(physical, name.path, entry.size, entry.mtime))
            else:
                left.append(entry)
        if len(new) < 2:
            return pending
        try:
            outcomes = self.connection.call(ops.register_pipelined, registrations, self.config.checksum)
        except Exception as err:  # noqa: BLE001 - the one-by-one path decides each entry again
            self.logger.warning("pipelined_register_failed", count=len(new), error=str(err))
            return pending
        ctx.poll()
        refused = next((outcome for outcome in outcomes if is_privilege_refusal(outcome)), None)
        if refused is not None:
            self._halt(refused, ctx)
            return []
        for entry, registration, outcome in zip(new, registrations, outcomes):
            if outcome is not None and not (outcome.name in _REPLAYED and self.connection.call(
                    _landed, registration.logical_path, registration.size, registration.physical_path)):
                left.append(entry)  # retried and reported there, one by one
                continue
            self.counters.created[Operation.REGISTER_SYNC.name] += 1
            self.counters.bytes_registered += entry.size
            done.append((entry.name, synced, Operation.REGISTER_SYNC.value))
            if self._log_per_file:
                self.logger.info("succeeded", path=self._source(entry), target=names[entry.relpath].path,
                                 outcome="created:REGISTER_SYNC")
        return left

    def _count_scanned(self, batch: EntryBatch) -> Counter:
        """Counts the batch's entries by type and bytes; returns the counts by file-type bits."""
        counters = self.counters
        counters.entries += len(batch)
        stats = batch.stats
        modes = Counter(map(stat.S_IFMT, map(_MODE, stats)))
        for mode, count in modes.items():
            counters.by_type[EntryType.from_mode(mode).value] += count
        regular = modes.get(stat.S_IFREG)
        if regular == len(stats):
            counters.bytes_scanned += sum(map(_SIZE, stats))
        elif regular:
            counters.bytes_scanned += sum(st.st_size for st in stats if stat.S_ISREG(st.st_mode))
        return modes

    def _log_unchanged_entries(self, batch: EntryBatch, changed: set[int]) -> None:
        """The old tool's per-file line for a file it skipped (only at --log_level INFO)."""
        for i, name in enumerate(batch.names):
            if i not in changed:
                self.logger.info("succeeded_file_has_not_changed",
                                 path=os.fsdecode(os.path.join(self.config.root, batch.relpath(name))))

    def error(self, error: WalkError) -> None:
        path = os.fsdecode(os.path.join(self.config.root, error.relpath))
        self.failures.add(Failure(path, None, error.operation, "skipped", errno_name(error.errno),
                                  error.errno, error.message, 1))
        self.counters.skipped += 1
        self.logger.error("skipped_unreadable", path=path, operation=error.operation, errno=error.errno,
                          error=error.message)

    # -- catalog --------------------------------------------------------------------------
    def _catalog(self, directory: bytes, pending: list[Entry], names: dict[bytes, LogicalName]) -> CatalogView:
        if self.config.initial_ingest or not pending:
            return CatalogView.empty()
        collection = logical_path(self.config.target, self.config.root, directory, self.char_map).path
        files = [os.path.basename(names[e.relpath].path) for e in pending if e.type is not EntryType.DIRECTORY]
        dirs = [os.path.basename(names[e.relpath].path) for e in pending if e.type is EntryType.DIRECTORY]
        try:
            with recorder.current.span("catalog"):
                view = self.connection.call(catalog_view, collection, files, dirs)
        except Exception as err:  # the batch's entries are decided one by one instead
            self.logger.warning("catalog_query_failed", collection=collection, error=str(err))
            return CatalogView.unknown()
        self.counters.catalog_queries += view.queries
        return view

    # -- per entry ------------------------------------------------------------------------
    def _meta(self, entry: Entry, name: LogicalName) -> dict[str, Any]:
        is_dir = entry.type is EntryType.DIRECTORY
        meta = dict(self.base_meta)
        meta.update(
            path=self._source(entry), target=name.path, task="sync_dir" if is_dir else "sync_file",
            entry_type="dir" if is_dir else "file", is_link=entry.type is EntryType.LINK,
            is_socket=entry.type is EntryType.SOCKET, is_empty_dir=None,
            mtime=entry.mtime, ctime=entry.ctime, size=entry.size,
        )
        meta.update(name.meta_fields())
        return meta

    def _source(self, entry: Entry) -> str:
        return os.fsdecode(os.path.join(self.config.root, entry.relpath))

    def _sync_entry(self, entry: Entry, name: LogicalName, previous, catalog: CatalogView,
                    ctx: WorkContext) -> int | None:
        """The Operation value that was applied (for the sync state), or None on failure."""
        meta = self._meta(entry, name)
        if entry.type is EntryType.DIRECTORY:
            action = self._collection_action(entry, name, meta, catalog)
        else:
            action = self._data_object_action(entry, name, meta, previous, catalog)
        if not self._attempt(entry, name, meta, action, ctx):
            return None
        return Operation[meta["operation"]].value

    def _attempt(self, entry: Entry, name: LogicalName, meta: dict, action: Callable, ctx: WorkContext) -> bool:
        """Run one entry's action with the handler's retries, delay and timeout."""
        handler, logger = self.handler, self.logger
        log_config = meta["config"]["log"]  # what the old framework passes these three as "logger"
        task_id = str(uuid.uuid1())  # one per entry, kept over its retries as Celery kept a task's

        def give_up(err: Exception, attempts: int) -> bool:
            self.report_failure(meta["path"], name.path, meta.get("operation", "?"), err, attempts,
                                task=meta["task"], task_id=task_id)
            return False

        try:  # the handler's answers for this entry (they may depend on meta): a bad one fails the entry
            max_retries = handler.guarded("max_retries", lambda: handler.max_retries(log_config, meta))
            timeout = handler.guarded("timeout", lambda: handler.timeout(log_config, meta))
            identity = handler.guarded("as_user", lambda: handler.as_user(meta))
        except HandlerError as err:
            return give_up(err, 0)
        as_zone, as_user = identity if identity else (None, None)
        attempt = 0
        while True:
            attempt += 1
            try:
                with time_limit(timeout):
                    outcome = self.connection.call(action, as_user=as_user, as_zone=as_zone)
                self._count(outcome)
                logger.info("succeeded", path=meta["path"], target=name.path, outcome=outcome)
                return True
            except Exception as err:  # noqa: BLE001 - every entry error is reported, never fatal
                if isinstance(err, EntryTimeout):
                    self.connection.cleanup()  # the protocol may have been cut mid-message
                refused = operation_error(err)
                if meta.get("operation") in _REGISTER_FAMILY and is_privilege_refusal(refused):
                    self._halt(refused, ctx)
                    return False
                if attempt > max_retries:
                    return give_up(err, attempt)
                self.counters.retries += 1
                logger.warning("retry_task", path=meta["path"], target=name.path, attempt=attempt, error=str(err),
                               **self._old_task_fields(meta["task"], task_id, err))
                try:
                    delay = handler.guarded("delay", lambda: handler.delay(log_config, meta, attempt))
                except HandlerError as bad:
                    return give_up(bad, attempt)
                if delay > 0:
                    deadline = time.monotonic() + delay
                    ctx.wait_until(lambda: time.monotonic() >= deadline)

    def _halt(self, refused: IrodsOperationError, ctx: WorkContext) -> None:
        """End the job on every rank (hpcingest.ingest.halt): the server refuses this user
        every registration, so each file would fail alike."""
        if self.halted:
            return
        self.halted = True
        message = refused_registration_message(refused)
        self.logger.error("job_halted", error=refused.name, code=refused.code, message=message)
        request_halt(JobDirectory(self.config.job_root, self.config.job_name).path, message)
        ctx.request_stop()

    def report_failure(self, source: str, target: str, operation: str, err: Exception, attempts: int = 1,
                       task: str = "delete", task_id: str | None = None) -> None:
        """One failed entry (or deletion): counted, in the failure report, and a failed_task line."""
        error_name, code = describe_error(err)
        self.counters.failed += 1
        if task == "delete":  # outside any batch: a task of its own, as the old framework's delete tasks were
            self.counters.failed_batches += 1
        self.failures.add(Failure(source, target, operation, "failed", error_name, code, str(err), attempts))
        self.logger.error("failed_task", path=source, target=target, operation=operation, error=error_name,
                          code=code, message=str(err), attempts=attempts,
                          **self._old_task_fields(task, task_id or str(uuid.uuid1()), err))

    def _old_task_fields(self, task: str, task_id: str, err: BaseException) -> dict[str, Any]:
        """The old framework's fields of a failed_task or retry_task line (task names as in
        ``meta["task"]``; see hpcingest.ingest.failures.old_log_fields)."""
        if not self.logger.is_enabled_for(logging.WARNING):
            return {}  # not written: spare formatting the traceback
        return {"task": task, "job_name": self.config.job_name, "task_id": task_id, **old_log_fields(err)}

    def _skip(self, entry: Entry, name: LogicalName, operation: str, why: str, message: str) -> str:
        self.failures.add(Failure(self._source(entry), name.path, operation, "skipped", why, None, message, 1))
        self.counters.skipped += 1
        self.logger.error("skipped", path=self._source(entry), target=name.path, reason=why)
        return "skipped"

    def _skipped_up_front(self, entry: Entry, name: LogicalName) -> bool:
        """Skip (and report) an entry no operation can take: its iRODS path is too long for
        iRODS, or it is a file this process may not read."""
        size = path_bytes(name.path)
        if size > MAX_PATH_BYTES:
            self._skip(entry, name, "path_too_long", "USER_PACKSTRUCT_INPUT_ERR",
                       f"the iRODS path is {size:,} bytes; iRODS takes paths of at most {MAX_PATH_BYTES:,} bytes "
                       "(MAX_NAME_LEN) and refuses longer ones")
            return True
        if entry.type is EntryType.REGULAR and not self._readable(entry):
            self._skip(entry, name, "unreadable", "EACCES", "the file is not readable by the ingesting user")
            return True
        return False

    def _register_refusal(self, entry: Entry, name: LogicalName, operation: str, physical: str) -> str | None:
        """A file whose path is too long to register is skipped: the server would cut the path
        it records, which then names another file, or none, without an error."""
        size = path_bytes(physical)
        if size <= MAX_PATH_BYTES:
            return None
        return self._skip(entry, name, operation, "physical_path_too_long",
                          f"the file's path is {size:,} bytes; iRODS keeps at most {MAX_PATH_BYTES:,} bytes of a "
                          "registered path (MAX_NAME_LEN) and would record it cut, naming another file: not "
                          "registered (a PUT mode copies it)")

    def _readable(self, entry: Entry) -> bool:
        """Whether this process may read the file; the cheap answer from the mode bits first,
        then access(2) to be sure (it knows ACLs and capabilities).  The old tool tested the
        group-read bit only and skipped files their owner could read."""
        mode = entry.mode
        if mode & stat.S_IROTH or (entry.uid == self._euid and mode & stat.S_IRUSR) or \
                (entry.gid in self._groups and mode & stat.S_IRGRP):
            return True
        return posix_open.readable(self.config.root, entry.relpath)

    def _count(self, outcome: str) -> None:
        kind, _, operation = outcome.partition(":")
        if kind == "created":
            self.counters.created[operation] += 1
        elif kind == "updated":
            self.counters.updated[operation] += 1
        elif kind == "metadata":
            self.counters.metadata_only += 1
        elif kind == "ignored":
            self.counters.ignored_existing += 1
        elif kind == "collection-created":
            self.counters.collections_created += 1
        elif kind == "collection-existing":
            self.counters.collections_existing += 1

    # -- collections ----------------------------------------------------------------------
    def _collection_action(self, entry: Entry, name: LogicalName, meta: dict, catalog: CatalogView):
        handler, logger = self.handler, self.logger

        def action(session) -> str:
            operation = handler.operation(session, meta)
            meta["operation"] = operation.name
            exists = catalog.has_collection(name.path, session)
            options = {} if operation is Operation.NO_OP else {"allow_redirect": False}
            if exists:
                handler.run_event("coll_modify", _noop, logger, session, meta, **options)
                self._annotate_collection(session, name)  # an earlier run may have stopped in between
                return "collection-existing"
            if operation is Operation.NO_OP:
                handler.run_event("coll_create", _noop, logger, session, meta, **options)
                return "collection-existing"
            handler.run_event("coll_create", lambda *a, **k: ops.ensure_collection(session, name.path),
                              logger, session, meta, **options)
            self._annotate_collection(session, name)
            return "collection-created"

        return action

    # -- data objects ---------------------------------------------------------------------
    def _data_object_action(self, entry: Entry, name: LogicalName, meta: dict, previous,
                            catalog: CatalogView):
        handler, logger, config = self.handler, self.logger, self.config
        runs = 0

        def action(session) -> str:
            nonlocal runs
            runs += 1  # a second run follows a reconnect or a retry: earlier writes may have landed
            operation = handler.operation(session, meta)
            meta["operation"] = operation.name
            # a re-run follows a lost connection: what the batch's query saw may have changed since
            found = catalog.data_object(name.path, session, fresh=runs > 1)
            change = classify(entry.mtime, entry.ctime, previous, found is not None)
            options = {} if operation is Operation.NO_OP else {"allow_redirect": False}
            if operation is Operation.NO_OP:
                event = "data_obj_create" if found is None else "data_obj_modify"
                handler.run_event(event, _noop, logger, session, meta, **options)
                return "metadata:NO_OP"
            if operation in _PUT_FAMILY and entry.type in _NEVER_UPLOADED:
                return self._skip(entry, name, operation.name, f"not_uploaded_{entry.type.value}",
                                  f"{entry.type.value} entries are never opened for upload")
            if operation not in _PUT_FAMILY and entry.type in _NEVER_REGISTERED:
                return self._skip(entry, name, operation.name, f"not_registered_{entry.type.value}",
                                  f"{entry.type.value} entries are never registered: reading the object "
                                  "back would open the special file")
            resource = handler.to_resource(session, meta, **options)
            if operation in _PUT_FAMILY and found is not None and _unfinished(found, entry, previous):
                logger.warning("put_unfinished_object", path=meta["path"], target=name.path,
                               catalog_size=found.size, size=entry.size, good=found.has_good_replica)
                return self._put(session, operation, entry, name, meta, options, found, resource, runs > 1,
                                 unfinished=True)
            if change is Change.METADATA:
                handler.run_event("data_obj_modify", _noop, logger, session, meta, **options)
                return "metadata:" + operation.name
            if operation in (Operation.REGISTER_SYNC, Operation.REGISTER_AS_REPLICA_SYNC):
                physical = handler.target_path(session, meta, **options) or catalog_physical_path(
                    os.path.join(config.root, entry.relpath))
                refused = self._register_refusal(entry, name, operation.name, physical)
                if refused is not None:
                    return refused
                outcome = self._register(session, operation, entry, name, meta, options, found, resource, physical,
                                         runs > 1)
                if not outcome.startswith("metadata:"):
                    self.counters.bytes_registered += entry.size
                return outcome
            return self._put(session, operation, entry, name, meta, options, found, resource, runs > 1)

        return action

    def _register(self, session, operation: Operation, entry: Entry, name: LogicalName, meta: dict,
                  options: dict, found, resource: str | None, physical: str, replay: bool) -> str:
        handler, logger, config = self.handler, self.logger, self.config
        size, mtime = entry.size, int(entry.mtime)
        # a checksum needs a readable regular file at the registered path: not a link (it may
        # point at a directory or nowhere), not a remapped undecodable name (no such file)
        checksum = config.checksum and entry.type is EntryType.REGULAR and name.reason != REASON_UNICODE
        if operation is Operation.REGISTER_AS_REPLICA_SYNC and not resource:
            raise IrodsOperationError("USER_INPUT_OPTION_ERR", -130000,
                                      "REGISTER_AS_REPLICA_SYNC needs to_resource() in the event handler")
        if found is None:
            def create(*args, **kwargs):
                _replayable(lambda: ops.register(session, physical, name.path, size, mtime, resource=resource,
                                                 checksum=checksum),
                            lambda: _landed(session, name.path, size, physical), replay)
                self._annotate(session, entry, name)
            handler.run_event("data_obj_create", create, logger, session, meta, **options)
            return f"created:{operation.name}"
        if operation is Operation.REGISTER_AS_REPLICA_SYNC:
            replica = found.replica_under(resource)
            if replica is None:
                def add_replica(*args, **kwargs):
                    ops.register(session, physical, name.path, size, mtime, resource=resource, as_replica=True,
                                 checksum=checksum)
                handler.run_event("data_obj_create", add_replica, logger, session, meta, **options)
                return f"created:{operation.name}"
            if replica.physical_path != physical:
                raise IrodsOperationError(
                    "wrong_resource_or_path", None,
                    f"a replica of {name.path} under resource {resource} has path {replica.physical_path}, "
                    f"not {physical}")
            numbers = [replica.number]
        else:
            numbers = None
        if found.matches(size, mtime, numbers):
            handler.run_event("data_obj_modify", _noop, logger, session, meta, **options)
            self._annotate(session, entry, name)  # an earlier pass may have failed between register and annotate
            return "metadata:" + operation.name

        def update(*args, **kwargs):
            ops.update_replica_metadata(session, name.path, size, mtime,
                                        replica_number=numbers[0] if numbers else None)
        handler.run_event("data_obj_modify", update, logger, session, meta, **options)
        return f"updated:{operation.name}"

    def _put(self, session, operation: Operation, entry: Entry, name: LogicalName, meta: dict, options: dict,
             found, resource: str | None, replay: bool, unfinished: bool = False) -> str:
        """``unfinished``: what the catalog holds is an upload that did not finish (see
        :func:`_unfinished`), so every mode uploads the whole file again over it."""
        handler, logger, config, content = self.handler, self.logger, self.config, self.content
        checksum = config.checksum or config.verify_checksum
        if found is None:
            def create(*args, **kwargs):
                _replayable(lambda: content.put(session, entry, name.path, resource, checksum, overwrite=False),
                            lambda: _landed(session, name.path, entry.size, None), replay)
                self._verify(session, entry, name.path)
                self._annotate(session, entry, name)
            handler.run_event("data_obj_create", create, logger, session, meta, operation, **options)
            self.counters.bytes_put += entry.size
            return f"created:{operation.name}"
        if operation is Operation.PUT and not unfinished:
            logger.debug("put_ignored_existing", path=meta["path"], target=name.path)
            return "ignored:PUT"
        if operation is Operation.PUT_APPEND and not unfinished and entry.size >= found.size and found.size > 0:
            def append(*args, **kwargs):
                content.append(session, entry, name.path, found.size)
                self._verify(session, entry, name.path, recompute=True)
            handler.run_event("data_obj_modify", append, logger, session, meta, operation, **options)
            self.counters.bytes_put += entry.size - found.size
            return f"updated:{operation.name}"
        if operation is Operation.PUT_APPEND:
            logger.warning("append_source_shrank", path=meta["path"], target=name.path,
                           catalog_size=found.size, size=entry.size)

        def overwrite(*args, **kwargs):
            content.put(session, entry, name.path, resource, checksum, overwrite=True)
            self._verify(session, entry, name.path)
        handler.run_event("data_obj_modify", overwrite, logger, session, meta, operation, **options)
        self.counters.bytes_put += entry.size
        return f"updated:{operation.name}"

    def _verify(self, session, entry: Entry, logical: str, recompute: bool = False) -> None:
        """--verify_checksum: the server's checksum of what it stored must match the source.

        ``recompute``: the object was written to in place (an append), so any stored checksum
        describes older content; the server computes it afresh."""
        if not self.config.verify_checksum:
            return
        if recompute:
            stored = ops.guarded(lambda: session.data_objects.chksum(logical, forceChksum=""))
        else:
            parent, base = posixpath.split(logical)
            info = ops.list_collection_objects(session, parent, [base]).get(base)
            stored = info.current.checksum if info is not None else None
        if not stored:
            self.content.discard(entry)
            raise IrodsOperationError("CHECKSUM_MISSING", None, f"the server stored no checksum for {logical}")
        local = self.content.checksum_like(entry, stored)
        if local != stored:  # the object is not the source: it must not stay looking like it
            with removed_on_failure(session, logical):
                raise IrodsOperationError("USER_CHKSUM_MISMATCH", -314000,
                                          f"checksum of {logical} is {stored}, the source's is {local}; "
                                          "the object was removed")

    @staticmethod
    def _annotate_collection(session, name: LogicalName) -> None:
        """The AVU that maps a digest-named collection back to its directory."""
        for avu in name.collection_avus:
            ops.add_avu_if_absent(session, name.path, avu.attribute, avu.value, avu.units, collection=True)

    def _annotate(self, session, entry: Entry, name: LogicalName) -> None:
        """The AVUs of remapped names and of links and sockets, added when absent."""
        avus = list(name.avus)
        link_text = posix_open.read_link(self.config.root, entry.relpath) if entry.type is EntryType.LINK else None
        special = special_file_avu(entry.type.value, name.source_path, link_text)
        if special is not None:
            avus.append(special)
        for avu in avus:
            ops.add_avu_if_absent(session, name.path, avu.attribute, avu.value, avu.units)


_REPLAYED = {"CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME", "OVERWRITE_WITHOUT_FORCE_FLAG"}


def _replayable(call: Callable[[], Any], landed: Callable[[], bool], replay: bool) -> None:
    """Run a create that may have been re-sent after a dropped connection.

    If the first attempt reached the server but its reply was lost, the re-sent request
    finds the object already there; that is success when the object is what we meant to make.
    """
    try:
        call()
    except IrodsOperationError as err:
        if not ((replay or err.after_retry) and err.name in _REPLAYED and landed()):
            raise


def _landed(session, logical: str, size: int, physical: str | None) -> bool:
    """Whether a re-sent create finds what the first attempt meant to make: a good replica of
    that size (and path); a stale or short one is an upload that did not finish."""
    parent, base = posixpath.split(logical)
    info = ops.list_collection_objects(session, parent, [base]).get(base)
    return info is not None and any(r.good and r.size == size and (physical is None or r.physical_path == physical)
                                    for r in info.replicas)


def _unfinished(found: CatalogObject, entry: Entry, previous: float | None) -> bool:
    """Whether an existing object is an upload that never finished, not a finished one to judge.

    No good replica: the transfer was interrupted (a dropped connection leaves it stale).  A good
    replica of another size than the source, for an entry this job never recorded as synced: a
    transfer cut short and closed (PRC's failed parallel put), or a copy whose origin nothing
    vouches for.  Once an entry was synced, a size change is the source's own change, which
    each mode treats its way (PUT leaves it alone)."""
    return not found.has_good_replica or (previous is None and not found.holds(entry.size))
