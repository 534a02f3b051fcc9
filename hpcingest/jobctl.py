"""Job control from any node that sees the job directory: list, stop, watch, report, resume, profile."""

from __future__ import annotations

import datetime
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass

from hpcingest.escaping import json_safe, terminal_text
from hpcingest.ingest.display import ProgressDisplay
from hpcingest.ingest.failures import read_report
from hpcingest.ingest.monitor import read_progress, request_stop, stall_report, stall_threshold
from hpcingest import outputs
from hpcingest.jobdir import JobDirectory, JobError, JobRecord, job_root, list_jobs
from hpcingest.slurmchain import Chain, ChainError, active_chain, load_chain, stop_chain


WATCH_INTERVAL_MAX_S = 86400.0  # a day between updates: anything longer is no watching
STOP_TIMEOUT_MAX_S = 7 * 86400.0  # a week: ranks finish their current item, never take that long


def check_number(value: float, option: str, *, unit: str, maximum: float = math.inf,
                 zero_allowed: bool = False) -> float:
    """``value`` of ``option`` if it is a finite number above 0 (or 0 itself, ``zero_allowed``)
    and at most ``maximum``, else a JobError (exit 2).  argparse's float() takes "nan" and
    "inf": NaN fails every comparison, so ``days < 0`` let it through and a cutoff of NaN
    pruned every job; an infinite or huge number overflows a sleep or a deadline."""
    low_ok = value >= 0 if zero_allowed else value > 0
    if not (math.isfinite(value) and low_ok and value <= maximum):
        bounds = "0 or more" if zero_allowed else "more than 0"
        if maximum != math.inf:
            bounds += f", at most {maximum:g}"
        raise JobError(f"{option} takes a number of {unit} ({bounds}), not {value:g}")
    return value


def _root(args) -> str:
    return job_root(args.job_dir)


def _job(args, read_only: bool = False) -> JobDirectory:
    """The job named on the command line, refused unless the running user owns it (see
    JobDirectory.check_trusted).  ``read_only`` commands (watch, report) may show another
    user's job, which only root can read anyway, with a note: they print its files
    (escaped) and never act on them.  Its record is read here, so a damaged one is the same
    clear error for every command (`report` said "no failed or skipped entries")."""
    job = JobDirectory(_root(args), args.job)
    if not job.exists():
        raise JobError(f"job {args.job!r} does not exist in {job.root}")
    owner = job.owned_by_someone_else()
    if read_only and owner is not None:
        print(f"hpcingest {args.command}: note: job {args.job!r} belongs to {owner}; showing it read-only",
              file=sys.stderr)
    else:
        job.check_trusted()
    job.load()
    return job


def describe(job: JobDirectory, chain: Chain | None = None) -> dict:
    """A job as `list` shows it.  The counts of a pass that runs, or died part-way, come from
    its ranks' progress reports; those of a pass that ended, from the job record.  A job run
    as a chain of Slurm jobs (``chain``, jobs/slurm/periodic.sbatch) waits between passes."""
    from hpcingest.ingest.job import job_is_alive

    record = job.load()
    reported = record.status in ("running", "waiting")  # the ranks' reports hold the counts
    status = record.status
    if reported and not job_is_alive(job):
        status = "died"
    elif chain is not None and not reported:
        status = "waiting"  # for the chain's next pass
    progress, ranks, _ = read_progress(job.path)
    live = reported and status != "died"
    counters = record.counters or {}
    elapsed = (time.time() if live else (record.end_time or time.time())) - (record.start_time or time.time())
    pass_elapsed = max(1e-9, progress.time - progress.pass_start) if progress.pass_start else 0.0
    info = {
        "job_name": record.job_name, "status": status, "pass": record.pass_number,
        "source": record.source, "target": record.target,
        "files": progress.entries if reported else counters.get("files", 0),
        "bytes": progress.bytes if reported else counters.get("bytes", 0),
        "bytes_registered": progress.bytes_registered if reported else counters.get("bytes_registered", 0),
        "failures": progress.failed if reported else counters.get("failures", 0),
        "retries": progress.retries if reported else counters.get("retries", 0),
        "too_young": progress.too_young if reported else counters.get("too_young", 0),
        "elapsed_s": round(elapsed, 3), "start_epoch_s": record.start_time,
        "rate": round(progress.entries / pass_elapsed, 1) if live and pass_elapsed else 0.0,
        "ranks": ranks,
        **old_framework_fields(progress if reported or ranks else None, counters, elapsed, record.start_time),
    }
    info.update(stall_report(job.path, stall_threshold(record.options), live))
    if chain is not None:
        info.update(slurm_job_id=chain.slurm_job_id, next_slurm_job_id=chain.next_slurm_job_id,
                    next_run=chain.next_run, interval=chain.interval)
    return info


def old_framework_fields(progress, counters: dict, elapsed: float, start: float | None) -> dict:
    """The fields the old tool's `list` printed per job (its ``sync_job.asdict()``), in its
    formats, so monitors written for it parse this output: a task is a stat batch (up to
    ``--files_per_task`` entries, the unit the old tool queued), a failed task a batch with a
    failed entry, a retried task one retry.  ``progress``: the ranks' reports of the newest run
    (a running pass, or one that died or was stopped part-way, where the batches listed but
    not yet ingested are the remaining tasks); None for a pass whose counts are in the record."""
    if progress is not None:
        total, done = progress.walk.batches_made, progress.batches
        failed, retried = progress.failed_batches, progress.retries
    else:
        total = done = counters.get("batches", 0)
        failed, retried = counters.get("failed_batches", 0), counters.get("retries", 0)
    return {
        "total_tasks": max(total, done), "remaining_tasks": max(0, total - done),
        "failed_tasks": failed, "retried_tasks": retried,
        "elapsed_time": str(datetime.timedelta(milliseconds=round(elapsed * 1000))),
        "start_time": datetime.datetime.fromtimestamp(start or 0, tz=datetime.timezone.utc)
                      .isoformat(timespec="milliseconds"),
    }


def cmd_list(args) -> int:
    root = _root(args)
    if args.prune is not None:
        for name, why in prune_jobs(root, args.prune):
            print(f"hpcingest list: pruned job {name} ({why})", file=sys.stderr)
    listing = {"periodic": [], "singlepass": [], "stopped": []}
    for job in list_jobs(root):
        chain = active_chain(job)
        info = json_safe(describe(job, chain))  # a source path that is not UTF-8 gets source_b64
        if info["status"] == "stopped":
            listing["stopped"].append(info)
        elif chain is not None or job.load().periodic:
            listing["periodic"].append(info)
        else:
            listing["singlepass"].append(info)
    print(json.dumps(listing, indent=2))
    return 0


def prune_jobs(root: str, days: float) -> list[tuple[str, str]]:
    """Removes the job directories (record, sync state, reports) of jobs that ended more than
    ``days`` days ago.  Never a job that runs or waits for its next pass, nor one whose chain
    of Slurm jobs still has a pass queued: such a job is only pruned once it has not been heard
    of (record and progress reports untouched) for ``days`` days, which no running job allows.
    Returns the jobs removed and why."""
    from hpcingest.ingest.job import job_is_alive

    check_number(days, "--prune", unit="days", zero_allowed=True)
    cutoff = time.time() - days * 86400
    pruned = []
    for job in list_jobs(root):
        record = job.load()
        last_heard = max([record.end_time or 0, record.start_time or 0, _mtime(job.record_path),
                          read_progress(job.path)[0].time])
        if last_heard > cutoff or active_chain(job) is not None:
            continue
        if record.status in ("running", "waiting") and job_is_alive(job):
            continue
        if _remove_job_directory(job, _mtime(job.record_path)):
            pruned.append((job.name, f"{record.status}, last active "
                                     f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(last_heard))}"))
    return pruned


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _remove_job_directory(job: JobDirectory, record_mtime: float) -> bool:
    """Moved aside first (one rename: no reader sees half a job, no start finds it), then
    removed; put back instead if its record changed since it was judged (a start got there
    first)."""
    doomed = os.path.join(job.root, f".pruned-{job.name}-{os.getpid()}")
    os.rename(job.path, doomed)
    if _mtime(os.path.join(doomed, "job.json")) != record_mtime:
        os.rename(doomed, job.path)
        return False
    shutil.rmtree(doomed)
    return True


def stop_records_idle_job(job: JobDirectory, record: JobRecord, status: str) -> bool:
    """Whether stopping a job that is not running (its ``status``; its ``record`` as read)
    records it stopped: a periodic job between passes (--interval, or a chain of Slurm jobs,
    which the stop has just ended) and one whose ranks died are; a one-pass job that finished
    or failed keeps saying so."""
    return status == "died" or record.periodic or load_chain(job) is not None


def cmd_stop(args) -> int:
    check_number(args.timeout, "--timeout", unit="seconds", maximum=STOP_TIMEOUT_MAX_S)
    job = _job(args)
    try:
        cancelled = stop_chain(job)
    except ChainError as err:
        raise JobError(f"cannot end the chain of Slurm jobs of job {args.job}: {err}") from None
    if cancelled is not None:
        print(f"job {args.job}: its next pass, Slurm job {cancelled}, is cancelled")
    info = describe(job)
    if info["status"] not in ("running", "waiting"):
        if stop_records_idle_job(job, job.load(), info["status"]):
            job.update(status="stopped")
            print(f"job {args.job} is not running ({info['status']}); recorded as stopped")
        else:
            print(f"job {args.job} is not running ({info['status']}); nothing to stop")
        return 0
    request_stop(job.path, "hpcingest stop")
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        if job.load().status in ("stopped", "finished", "failed"):
            job.update(status="stopped")
            print(f"job {args.job} stopped")
            return 0
        time.sleep(0.5)
    print(f"hpcingest stop: error: job {args.job} did not stop within {args.timeout} s "
          "(the stop request stays in place)", file=sys.stderr)
    return 1


def cmd_watch(args) -> int:
    if args.interval is not None:
        check_number(args.interval, "--interval", unit="seconds", maximum=WATCH_INTERVAL_MAX_S)
    job = _job(args, read_only=True)
    display = ProgressDisplay(job, period_s=args.interval)
    try:
        while True:
            display.show_once()
            status = describe(job)["status"]
            if status not in ("running", "waiting"):
                if display.tty:
                    print()
                record = job.load()
                print(f"job {args.job}: {status}; {json.dumps(record.counters)}")
                return 1 if (record.counters or {}).get("failures") else 0
            time.sleep(display.period_s)
    except KeyboardInterrupt:
        return 0


def cmd_report(args) -> int:
    """The failure report, one line per entry: ``path: message`` last, every field escaped
    (hpcingest.escaping), so no name can reach the terminal raw or forge a line; ``--json``
    gives the exact bytes of names that are not UTF-8 in ``path_b64``.

    A report with lines that cannot be read (a crash leaves a half-written last line, a disk
    can damage any) still shows every line that can, and says on stderr how many could not:
    hiding the rest would lose what they say.  The exit status is 0 unless no line at all could
    be read (2, as for a damaged job record): then there is nothing to show."""
    job = _job(args, read_only=True)
    report = read_report(job.failures_path)
    failures = report.failures
    if report.unreadable:
        level = "error" if not failures else "warning"
        print(f"hpcingest report: {level}: {report.unreadable} line(s) of the failure report "
              f"{terminal_text(job.failures_path, sys.stderr.encoding)} could not be read (damaged or "
              f"half-written); {len(failures)} line(s) could", file=sys.stderr)
    status = 2 if report.unreadable and not failures else 0
    if args.json:
        print(json.dumps([f.to_record() for f in failures], indent=2))
        return status
    if not failures:
        if not report.unreadable:
            print(f"job {args.job}: no failed or skipped entries in the last pass")
        return status

    def shown(text: object) -> str:
        return terminal_text(str(text), sys.stdout.encoding)

    print(f"{'kind':8s} {'operation':26s} {'error':36s} {'tries':>5s}  path: message")
    for f in failures:
        print(f"{shown(f.kind):8s} {shown(f.operation)[:26]:26s} {shown(f.error)[:36]:36s} {f.attempts:5d}  "
              f"{shown(f.path)}: {shown(f.message)}")
    print(f"{len(failures)} entries ({sum(f.kind == 'failed' for f in failures)} failed, "
          f"{sum(f.kind == 'skipped' for f in failures)} skipped)")
    return status


def cmd_profile(args) -> int:
    """Render a recorded pass: why here and not at the end of the run -- drawing 256 ranks
    takes seconds of one core, which the job itself should not spend."""
    from hpcingest.profile.render import (PlotUnavailable, format_usage_table, render_html, render_png, usage_json,
                                          usage_table)
    from hpcingest.profile.timeline import ProfileError, load_timeline

    job = _job(args)
    pass_number = args.pass_number or _last_profiled_pass(job)
    try:
        timeline = load_timeline(job.profile_dir(pass_number))
    except ProfileError as err:
        raise JobError(f"pass {pass_number}: {err}") from None
    stem = os.path.join(_profile_output(args.output, job), f"profile-{job.name}-pass{pass_number}")
    for suffix in (".html", ".png"):
        try:
            outputs.check_output("--output", stem + suffix, regular_only=True)
        except ValueError as err:
            raise JobError(str(err)) from None
    try:
        render_html(timeline, stem + ".html")
        try:
            render_png(timeline, stem + ".png")
            picture = stem + ".png"
        except PlotUnavailable as err:
            picture = f"not drawn: {err}"
    except OSError as err:  # a full disk, or something put in the place of a file since the check
        print(f"hpcingest profile: error: {outputs.describe(err)}", file=sys.stderr)
        return 1
    rows = usage_table(timeline)
    if args.json:
        print(json.dumps(usage_json(rows), indent=2))
    else:
        print(format_usage_table(rows))
    print(f"timeline: {stem}.html\npicture:  {picture}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _profile_output(output: str | None, job: JobDirectory) -> str:
    """The directory the pictures go to (made when missing); a --output that is a file was a
    FileExistsError traceback from os.makedirs."""
    out = os.path.abspath(output or job.path)
    if os.path.lexists(out) and not os.path.isdir(out):
        raise JobError(f"--output {out!r} exists and is not a directory: give the directory the HTML and PNG go to")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise JobError(f"--output: {outputs.describe(err)}") from None
    return out


def _last_profiled_pass(job: JobDirectory) -> int:
    root = os.path.join(job.path, "profile")
    passes = sorted(int(n[5:]) for n in (os.listdir(root) if os.path.isdir(root) else [])
                    if n.startswith("pass-") and n[5:].isdigit())
    if not passes:
        raise JobError(f"job {job.name!r} has no profile: run `hpcingest start` with --profile")
    return passes[-1]


@dataclass
class Resumption:
    """What `resume` runs: the start command's arguments, and the source they must still name."""

    argv: list[str]
    source: str


def enter_resumption(args) -> Resumption:
    """The start command of a job, to run it again under this launcher, after entering the
    directory it was started in.

    Its command line may hold relative paths (SRC, --job_dir, --event_handler): resolved
    where `resume` happens to run, they named another tree, and a delete mode then unregistered
    what that tree lacked.  They are resolved where the job started; the source they name must
    still be the job's (the caller checks it against ``source``)."""
    record, root = _job(args).load(), _root(args)  # the job root as given here, before the chdir
    if not record.argv:
        raise JobError(f"job {args.job!r} has no recorded command line to resume")
    if record.cwd:
        try:
            os.chdir(record.cwd)
        except OSError as err:
            raise JobError(f"job {args.job!r} was started in {record.cwd!r}, where its command line's relative "
                           f"paths are resolved, and that directory cannot be entered now ({err.strerror})") from None
    argv = list(record.argv)
    if "--job_name" not in argv:
        argv += ["--job_name", record.job_name]
    if "--job_dir" not in argv:
        argv += ["--job_dir", root]
    return Resumption(argv, record.source)
