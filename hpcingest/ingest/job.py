"""`hpcingest start`: validate on rank 0, prepare the target, walk with every rank, summarize.

Rank 0 does everything that can fail for the whole job before any rank works (options,
source, handler file, iRODS credentials, the job directory, the root target collection and
``pre_job``) and broadcasts either the job setup or one error line.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from hpcingest import collectives, logs
from hpcingest.compat.utils import Operation
from hpcingest.engine import Closing, EngineAborted, EngineStats
from hpcingest.escaping import terminal_text
from hpcingest.exclusions import ExclusionError
from hpcingest.handler import EventHandler, HandlerError, load_handler, validate_handler
from hpcingest.ingest.config import ConfigError, IngestConfig, build_config
from hpcingest.ingest.failures import FailureLog, merge_reports
from hpcingest.ingest.funnel import FORWARDED, Funnel, establish
from hpcingest.ingest import liveness
from hpcingest.ingest.halt import clear_halt, halt_reason
from hpcingest.ingest.interrupts import StopOnSignals
from hpcingest.ingest.monitor import (STALE_AFTER_S, PassMonitor, Progress, WalkTally, clear_progress, read_progress,
                                      stop_path)
from hpcingest.ingest.content import FileContent, S3Content
from hpcingest.ingest.display import ProgressDisplay
from hpcingest.ingest.sink import RESUME, IngestSink, _noop
from hpcingest.ingest.summary import IngestSummary, RankPart, summarize
from hpcingest.irods import timing
from hpcingest.irods.connection import IrodsConnection, RetryPolicy
from hpcingest.irods.errors import IrodsError
from hpcingest.irods.settings import IrodsSettings, IrodsSettingsError, resolve_settings
from hpcingest.launch import validated_on_root
from hpcingest.profile import recorder
from hpcingest.jobdir import JobDirectory, JobError, JobRecord, write_private
from hpcingest.joblock import JobLock
from hpcingest.lazy import lazy_module
from hpcingest.sources import S3SourceError, WalkOptionError, open_source
from hpcingest.sources.posix import SourceRootError
from hpcingest.syncstate import StateError, SyncState, check_state
from hpcingest.walk import run_walk

ops = lazy_module("hpcingest.irods.operations")

_USAGE_ERRORS = (ConfigError, WalkOptionError, ExclusionError, SourceRootError, S3SourceError, HandlerError, IrodsSettingsError,
                 IrodsError, JobError, StateError)


@dataclass
class JobSetup:
    config: IngestConfig
    settings: IrodsSettings
    base_meta: dict[str, Any]
    resuming: bool = False  # the first pass continues one that died or was stopped


def base_meta(config: IngestConfig) -> dict[str, Any]:
    """The job-level ``meta`` keys old handlers rely on (peer.md §2.4)."""
    root = os.fsdecode(config.root)
    return {
        "job_name": config.job_name, "root": root, "path": root, "target": config.target,
        "root_target_collection": config.target, "src_path": root,
        "restart_queue": "restart", "path_queue": "path", "file_queue": "file", "queue_name": "file",
        "interval": config.interval, "ignore_cache": config.ignore_cache, "initial_ingest": config.initial_ingest,
        "synchronous": config.synchronous, "progress": config.progress, "profile": config.profile,
        "files_per_task": config.files_per_task, "idle_disconnect_seconds": config.idle_disconnect_s,
        "exclude_file_type": sorted(t.value for t in config.exclusions.types),
        "exclude_file_name": [p.pattern for p in config.exclusions.file_patterns],
        "exclude_directory_name": [p.pattern for p in config.exclusions.directory_patterns],
        "event_handler": config.handler_filename, "event_handler_key": config.job_name,
        # the old shape; there is no profile file and no Redis here, so those values are None
        "config": {"log": dict(config.log), "profile": dict.fromkeys(("filename", "when", "interval", "level")),
                   "redis": dict.fromkeys(("host", "port", "db"))},
        **s3_meta(config),
    }


def s3_meta(config: IngestConfig) -> dict[str, Any]:
    """The old ``meta`` keys of an S3 job, without the access and secret keys: meta reaches
    handler code and its logs; a handler that needs S3 itself reads the keypair file it names."""
    if config.s3 is None:
        return {"s3_keypair": None, "s3_prefix": None}
    from hpcingest.sources.s3 import parse_s3_source

    bucket, prefix = parse_s3_source(os.fsdecode(config.root))
    options = config.s3.public_options()
    return {**options, "s3_secure_connection": not config.s3.insecure, "s3_prefix": prefix, "s3_bucket": bucket}


def make_source(config: IngestConfig):
    """The source of the job and how PUT reads from it."""
    source = open_source(config.root, config.files_per_task, config.exclusions, config.s3, config.stat_threads)
    if config.s3 is None:
        return source, FileContent(config.root)
    return source, S3Content(source, verify=config.verify_checksum)


def prepare(args, argv: list[str]) -> JobSetup:
    """Everything that must hold before any rank starts; raises one of _USAGE_ERRORS."""
    config = build_config(args)
    resumed = getattr(args, "resumed_source", None)
    if resumed and resumed != os.fsdecode(config.root):
        raise JobError(f"job {config.job_name!r} walked {resumed!r}; its command line now names "
                       f"{os.fsdecode(config.root)!r} (a link that moved?): not resumed, so nothing the job "
                       "registered is taken for gone; run `hpcingest start` with the source you mean")
    jobdir = JobDirectory(config.job_root, config.job_name)
    if os.path.lexists(jobdir.path):
        jobdir.check_trusted()  # another user's job directory: refused before any handler code runs
    handler = validate_handler(config.handler_text, config.handler_filename)
    settings = resolve_settings()
    jobdir.create()  # refuses a job directory another user could have prepared
    JobLock(jobdir.path, config.job_name).acquire()  # atomic: a second run stops here, before any work
    previous = jobdir.load() if jobdir.exists() else None
    if previous is not None and previous.status in ("running", "waiting"):
        if job_is_alive(jobdir):
            raise JobError(f"job {config.job_name!r} is already running (see `hpcingest list`; a job that "
                           f"died on another node counts as running until its progress is "
                           f"{STALE_AFTER_S:.0f} s old)")
        config.warnings.append(f"job {config.job_name!r} died during pass {previous.pass_number}; resuming it")
    check_state(jobdir.state_dir)  # a damaged checkpoint: one line now, not a traceback from one rank mid-walk
    if os.path.exists(stop_path(jobdir.path)):
        os.unlink(stop_path(jobdir.path))  # a stop request of an earlier run
    liveness.reset(jobdir.path)
    clear_halt(jobdir.path)
    meta = base_meta(config)
    record = JobRecord(job_name=config.job_name, source=os.fsdecode(config.root), target=config.target,
                       options=config.options_for_record(), handler_text=config.handler_text,
                       handler_filename=config.handler_filename, status="running",
                       periodic=config.interval is not None, pass_number=1, start_time=time.time(),
                       launch={"host": socket.gethostname(), "pid": os.getpid()}, argv=argv, cwd=os.getcwd(),
                       last_pass_entries=previous.last_pass_entries if previous else None)
    if previous is not None and previous.status in ("running", "waiting"):
        record.start_time = previous.start_time
    # a pass that died or was stopped part-way is resumed under its token: the directories
    # it finished are not statted again; anything else starts the job's next pass
    resuming = previous is not None and previous.pass_token and not previous.pass_complete
    record.pass_token = previous.pass_token if resuming else uuid.uuid4().hex
    if previous is not None:
        record.pass_number = previous.pass_number + (0 if resuming else 1)
    try:
        begin_pass(settings, handler, config, meta)
    except _USAGE_ERRORS:
        if previous is None:  # a new job that never began: a record saying so, not a bare directory
            record.status, record.end_time, record.pass_number, record.pass_token = "failed", time.time(), 0, ""
            jobdir.save(record)
        raise
    jobdir.save(record)
    return JobSetup(config, settings, meta, resuming=bool(resuming))


def begin_pass(settings: IrodsSettings, handler: EventHandler, config: IngestConfig, meta: dict) -> None:
    """Per pass, on rank 0: the root target collection and its hooks, then pre_job."""
    logger = logs.get_logger(config.log)
    with IrodsConnection(settings, idle_disconnect_seconds=None, retry=RetryPolicy(config.irods_retry_s)) as connection:
        connection.call(lambda session: session.server_version)  # credentials fail here, once, clearly
        prepare_target(connection, handler, config, meta, logger)
        handler.guarded("pre_job", lambda: handler.pre_job(logger, meta))


def job_is_alive(jobdir: JobDirectory) -> bool:
    """Whether a job recorded as running still runs: on the launching host the rank-0
    process tells; elsewhere, whether rank 0's heartbeat (written for the whole run, between
    periodic passes too) or any rank's progress is younger than STALE_AFTER_S."""
    record = jobdir.load()
    launch = record.launch or {}
    pid = launch.get("pid")
    if launch.get("host") == socket.gethostname() and isinstance(pid, int) and pid > 0:
        alive = _process_alive(pid)
        if alive is not None:
            return alive
    beat = liveness.heartbeat_age(jobdir.path)
    if beat is not None and beat < STALE_AFTER_S:
        return True
    _, ranks, age = read_progress(jobdir.path)
    if ranks:
        return age < STALE_AFTER_S
    return record.start_time is not None and time.time() - record.start_time < STALE_AFTER_S


def _process_alive(pid: int) -> bool | None:
    """True/False for a local pid (a zombie is dead), None when it cannot be told."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return None


def prepare_target(connection: IrodsConnection, handler: EventHandler, config: IngestConfig,
                   meta: dict[str, Any], logger) -> None:
    """The root target collection, with missing ancestors, and its coll hooks once per pass."""
    root_meta = dict(meta, task="sync_dir", entry_type="dir", is_link=False, is_socket=False)

    def action(session) -> None:
        operation = handler.guarded("operation", lambda: handler.operation(session, root_meta), _irods_failure)
        options = {} if operation is Operation.NO_OP else {"allow_redirect": False}
        missing = []
        path = config.target
        while path != "/" and not session.collections.exists(path):
            missing.append(path)
            path = posixpath.dirname(path)
        if not missing:
            handler.guarded("coll_modify", lambda: handler.run_event("coll_modify", _noop, logger, session,
                                                                     root_meta, **options), _irods_failure)
            return
        if path == "/":
            raise ConfigError(f"target collection {config.target!r}: zone {missing[-1].strip('/')!r} does not exist")
        for collection in reversed(missing):
            create = _noop if operation is Operation.NO_OP else (
                lambda *a, c=collection, **k: ops.ensure_collection(session, c))
            handler.guarded("coll_create", lambda: handler.run_event(
                "coll_create", create, logger, session, dict(root_meta, target=collection), **options),
                _irods_failure)

    identity = handler.guarded("as_user", lambda: handler.as_user(root_meta))
    as_zone, as_user = identity if identity else (None, None)
    try:
        connection.call(action, as_user=as_user, as_zone=as_zone)
    except IrodsError as err:
        raise ConfigError(f"cannot prepare target collection {config.target!r}: {err}") from None


def _irods_failure(err: BaseException) -> bool:
    """An iRODS error or a lost connection, raised inside a handler hook or not: the connection
    layer retries or reports it; anything else a hook raises is the handler's own failure."""
    from hpcingest.irods.errors import is_auth_failure, is_connection_lost, operation_error

    return isinstance(err, IrodsError) or is_auth_failure(err) or is_connection_lost(err) \
        or operation_error(err) is not None


def run(comm, args, argv: list[str] | None = None) -> int:
    rank = comm.Get_rank()
    setup = validated_on_root(comm, "start", lambda: prepare(args, argv or []), _USAGE_ERRORS)
    if setup is None:
        return 2
    config = setup.config
    if rank == 0:
        for warning in config.warnings:
            print(f"hpcingest start: warning: {warning}", file=sys.stderr)
    jobdir = JobDirectory(config.job_root, config.job_name)
    stop, abort = threading.Event(), threading.Event()

    def lost(message: str) -> None:  # the watch thread: every wait of the engine raises from now on
        stop.set()
        abort.set()

    with StopOnSignals(jobdir.path, stop) as signals, \
            liveness.PeerWatch(jobdir.path, rank, comm.Get_size(), config.dead_rank_timeout_s, lost,
                               lambda message, wrote: leave_lost(jobdir, message, wrote)) as watch, \
            metrics_file(config, jobdir, rank):
        try:
            status = run_passes(comm, setup, jobdir, stop, abort, signals)
        except StateError:  # damage only this rank's shard showed: the job ends (hpcingest.launch)
            with contextlib.suppress(OSError, JobError):
                jobdir.update(status="failed", end_time=time.time())
            raise
        except EngineAborted:
            watch.handled()
            leave_lost(jobdir, watch.lost or "a rank was lost", watch.wrote_notice)
        if signals.exit_code is not None and rank == 0:
            return signals.exit_code
        return status


def metrics_file(config: IngestConfig, jobdir: JobDirectory, rank: int):
    """`start --metrics_file F`: rank 0 keeps F up to date for node_exporter (hpcingest.serve.metrics)."""
    if config.metrics_file is None or rank != 0:
        return contextlib.nullcontext()
    from hpcingest.serve.metrics import MetricsFile

    return MetricsFile(config.metrics_file, jobdir)


def run_passes(comm, setup: JobSetup, jobdir: JobDirectory, stop: threading.Event, abort: threading.Event,
               signals: StopOnSignals) -> int:
    rank = comm.Get_rank()
    config = setup.config
    status = 0
    while True:
        record = collectives.bcast_object(comm, jobdir.load() if rank == 0 else None)
        outcome = run_pass(comm, setup, jobdir, record, stop, abort)
        setup.resuming = False  # later periodic passes are new passes
        if rank == 0:
            summary = summarize(config, outcome)
            stopped = os.path.exists(stop_path(jobdir.path))
            if config.progress:
                display = ProgressDisplay(jobdir)
                display.show_once()  # every rank's final counts are written by now
                if display.tty:
                    print()
            status = max(status, finish(setup, jobdir, summary, stopped, signals.name))
        if config.interval is None:
            return status  # one pass: nothing to agree on (rank 0 had every rank's part); 0 elsewhere
        again = rank == 0 and not stopped and next_pass(setup, jobdir, outcome.started)
        if not collectives.bcast_object(comm, again):
            return status if rank == 0 else 0


def leave_lost(jobdir: JobDirectory, message: str, wrote_notice: bool) -> None:
    """End this rank after a lost peer: one rank (the one that noticed first) says why and
    records the job as died; nobody waits for MPI to finish (hpcingest.ingest.liveness)."""
    if wrote_notice:
        print(f"hpcingest start: error: {message}; the job ends here with its checkpoint: rerun the same "
              f"command (or `hpcingest resume {jobdir.name}`) to finish the pass", file=sys.stderr)
        try:
            jobdir.update(status="died", end_time=time.time())
        except (OSError, JobError):
            pass
    liveness.exit_now(liveness.EXIT_RANK_LOST)


def next_pass(setup: JobSetup, jobdir: JobDirectory, started: float) -> bool:
    """Rank 0 between periodic passes: wait for the next start (start to start), then begin
    it; False when the job was stopped meanwhile or the next pass cannot begin."""
    config = setup.config
    due = started + config.interval
    if time.time() > due:
        print(f"hpcingest start: pass took longer than --interval {config.interval} s; the next one starts now",
              file=sys.stderr)
    jobdir.update(status="waiting")
    while time.time() < due:
        if os.path.exists(stop_path(jobdir.path)):
            jobdir.update(status="stopped", end_time=time.time())
            return False
        time.sleep(min(1.0, max(0.0, due - time.time())))
    handler = load_handler(config.handler_text, config.handler_filename)
    try:
        begin_pass(setup.settings, handler, config, setup.base_meta)
    except _USAGE_ERRORS as err:
        print(f"hpcingest start: error: cannot begin the next pass: {err}", file=sys.stderr)
        jobdir.update(status="failed", end_time=time.time())
        return False
    record = jobdir.load()
    jobdir.update(status="running", pass_number=record.pass_number + 1, pass_token=uuid.uuid4().hex,
                  pass_complete=False)
    return True


def run_pass(comm, setup: JobSetup, jobdir: JobDirectory, record: JobRecord, stop: threading.Event,
             abort: threading.Event):
    config = setup.config
    handler = load_handler(config.handler_text, config.handler_filename)
    logger = logs.get_logger(config.log)
    state = SyncState(jobdir.state_dir, comm.Get_rank(), comm.Get_size(), ignore_cache=config.ignore_cache,
                      pass_token=record.pass_token, resuming=setup.resuming)
    failures = FailureLog(jobdir.path, comm.Get_rank())
    profile_dir = jobdir.profile_dir(record.pass_number)
    if config.profile:
        recorder.preload()
        if comm.Get_rank() == 0:
            clear_profile(profile_dir)  # a resumed pass may run with fewer ranks than the run before
    if comm.Get_rank() == 0:
        clear_progress(jobdir.path)  # likewise: an earlier run's reports would be summed in
    collectives.barrier(comm)
    timing.timer.take()  # only this pass's calls from here on
    profile = recorder.activate() if config.profile else None
    started, cpu_started = time.time(), time.process_time()
    with IrodsConnection(setup.settings, idle_disconnect_seconds=config.idle_disconnect_s,
                         retry=RetryPolicy(config.irods_retry_s)) as connection:
        source, content = make_source(config)
        sink = IngestSink(config, handler, connection, state, failures, logger, setup.base_meta, content)
        funnel = Funnel(sink, comm.Get_rank(), establish(comm, connection, config.irods_connections, logger),
                        stop=stop)
        walk = WalkTally(funnel)
        snapshot = lambda done: Progress.from_counters(sink.counters, walk.counts, record.pass_number,  # noqa: E731
                                                       started, record.pass_token, comm.Get_size(), done)
        try:
            with PassMonitor(jobdir.path, comm.Get_rank(), snapshot, stop, stall_after=config.stall_after,
                             logger=logger) as monitor, \
                    progress_display(config, jobdir, comm.Get_rank()):

                def closing(stats: EngineStats) -> Closing:
                    """This rank's part is over: what it wrote is closed and its final counts are
                    written before the walk's closing round carries its share of the summary to
                    rank 0 (so no collective is left after the walk)."""
                    # a walk that ended without a stop needs no more marks (a stop this rank did
                    # not see costs the resume some statting again, nothing else)
                    state.close(pass_over=not stop.is_set())
                    failures.close()
                    monitor.finish()
                    sink.counters.connections_opened = connection.stats.sessions_opened
                    sink.counters.agents_refused = connection.stats.agents_refused
                    sink.counters.state_seconds = state.sqlite_seconds
                    sink.counters.state_cpu_seconds = state.sqlite_cpu_seconds
                    sink.counters.cpu_seconds = time.process_time() - cpu_started
                    return Closing(report=RankPart.of(sink.counters, stats, timing.timer.take()).to_bytes())

                stats = run_walk(comm, source, walk, services={**state.services(), **funnel.services()},
                                 sink_items={FORWARDED: funnel.process_forwarded, RESUME[0]: sink.resume},
                                 stop=stop, max_rate=config.max_rate, on_idle=state.flush, abort=abort,
                                 closing=closing)
        finally:
            state.close()  # closed by now unless the walk failed
            failures.close()
            content.close()
    if profile is not None:
        profile.save(profile_dir, config.job_name, record.pass_number, comm.Get_rank())
        recorder.deactivate()
    return PassOutcome(started, stats.reports, profile_dir if profile is not None else None)


@dataclass
class PassOutcome:
    """A pass as this rank saw it; on rank 0, every rank's part for :func:`summarize`."""

    started: float
    reports: list[bytes] | None  # rank 0: every rank's RankPart, packed (hpcingest.ingest.summary)
    profile_dir: str | None = None


def clear_profile(directory: str) -> None:
    os.makedirs(directory, mode=0o700, exist_ok=True)
    for name in os.listdir(directory):
        if name.startswith("rank-"):
            os.unlink(os.path.join(directory, name))


def progress_display(config: IngestConfig, jobdir: JobDirectory, rank: int):
    """`start --progress`: rank 0 shows the live display while the pass runs."""
    if not config.progress or rank != 0:
        return contextlib.nullcontext()
    return ProgressDisplay(jobdir)


def finish(setup: JobSetup, jobdir: JobDirectory, summary: IngestSummary, stopped: bool,
           stopped_by: str | None = None) -> int:
    config = setup.config
    reported = merge_reports(jobdir.path, jobdir.failures_path)
    handler = load_handler(config.handler_text, config.handler_filename)
    try:
        handler.post_job(logs.get_logger(config.log), setup.base_meta)
    except Exception as err:  # noqa: BLE001 - the user's hook: report it, do not crash
        print(f"hpcingest start: error: post_job of {config.handler_filename} failed: "
              f"{type(err).__name__}: {err}", file=sys.stderr)
        summary.failed += 1
    pass_number = jobdir.load().pass_number
    os.makedirs(os.path.dirname(jobdir.pass_summary_path(pass_number)), mode=0o700, exist_ok=True)
    for path in (jobdir.pass_summary_path(pass_number), jobdir.summary_path):
        write_private(path, summary.to_json() + "\n")
    halted = halt_reason(jobdir.path)  # a refusal that stopped every rank (hpcingest.ingest.halt)
    if halted:
        status = "failed"
    elif stopped:
        status = "stopped"
    else:
        status = "finished" if summary.failed == 0 else "failed"
    changes = {"status": status, "end_time": time.time(), "counters": summary.counters_for_record()}
    if not stopped:
        changes["last_pass_entries"] = summary.entries
        changes["pass_complete"] = True
    jobdir.update(**changes)
    print(summary.to_text(sys.stdout.encoding))
    if stopped and not halted:
        cause = f" by {stopped_by}" if stopped_by else ""
        print(f"job {config.job_name} was stopped{cause}; its checkpoint is saved: rerun the same command (or "
              f"`hpcingest resume {config.job_name}`) to finish the pass")
    if reported:
        print(f"failure report: {terminal_text(jobdir.failures_path, sys.stdout.encoding)} ({reported} entries; "
              f"`hpcingest report {config.job_name}`)")
    if halted:
        print(f"hpcingest start: error: {halted}", file=sys.stderr)
        return 1
    if config.synchronous and summary.failed and not stopped:
        return 1
    return 0
