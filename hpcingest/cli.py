"""The `hpcingest` command line: parses arguments and hands off to one module per command."""

from __future__ import annotations

import argparse
import os
import sys

from hpcingest import __version__
from hpcingest.launch import launcher_rank


class _Parser(argparse.ArgumentParser):
    """Only the first task prints usage errors, so `srun -n 256` shows one message, not 256."""

    def error(self, message: str):  # type: ignore[override]
        if launcher_rank() == 0:
            self.print_usage(sys.stderr)
            print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def add_walk_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that walks a source (old framework names)."""
    parser.add_argument("--files_per_task", type=int, default=50, metavar="N",
                        help="names per stat batch, the unit of stealable work (default 50)")
    parser.add_argument("--stat_threads", type=int, default=1, metavar="K",
                        help="threads per rank statting a batch at once (default 1): K requests in flight per "
                             "rank where a stat is a round trip to a metadata server (Lustre, GPFS)")
    parser.add_argument("--max_rate", type=float, default=None, metavar="N",
                        help="at most N entries per second for the whole job (spares a shared metadata server)")
    parser.add_argument("--exclude_file_type", nargs=1, default=None, metavar="TYPES",
                        help="comma list of regular,directory,character,block,socket,pipe,link")
    parser.add_argument("--exclude_file_name", nargs="+", default=None, metavar="REGEX",
                        help="skip non-directories whose absolute path re.match()es any REGEX")
    parser.add_argument("--exclude_directory_name", nargs="+", default=None, metavar="REGEX",
                        help="skip directories (and their subtrees) whose absolute path re.match()es any REGEX")


def add_s3_options(parser: argparse.ArgumentParser) -> None:
    """The S3 source options (old framework names and defaults); --s3_keypair makes SRC /bucket/prefix."""
    s3 = parser.add_argument_group("S3 source")
    s3.add_argument("--s3_keypair", metavar="FILE", help="file with the access key (line 1) and secret (line 2)")
    s3.add_argument("--s3_endpoint_domain", default="s3.amazonaws.com", metavar="HOST[:PORT]")
    s3.add_argument("--s3_region_name", default="us-east-1")
    s3.add_argument("--s3_proxy_url", metavar="URL", help="http://HOST:PORT or http://USER@HOST:PORT; the "
                    "password goes in $HPCINGEST_S3_PROXY_PASSWORD or --s3_proxy_password_file, never here")
    s3.add_argument("--s3_proxy_password_file", metavar="FILE", help="file whose first line is the proxy password")
    s3.add_argument("--s3_insecure_connection", action="store_true", help="plain http instead of https")
    s3.add_argument("--s3_multipart_chunksize_in_mib", type=int, default=8, metavar="N")


def add_log_options(parser: argparse.ArgumentParser) -> None:
    """The options the old tool took on every command (logging, its profile file, Redis)."""
    parser.add_argument("--log_filename", help="JSON-lines log file (default: stderr); one file per rank: FILE.rankN")
    parser.add_argument("--log_level", default="WARNING", help="DEBUG, INFO, WARNING (default), ERROR")
    parser.add_argument("--log_when", help="rotate like TimedRotatingFileHandler: S, M, H, D, midnight, W0-W6")
    parser.add_argument("--log_interval", type=int, default=None,
                        help="rotation interval in --log_when units (default 1; without --log_when it has no effect)")
    for legacy in ("--profile_filename", "--profile_when", "--profile_interval", "--profile_level"):
        parser.add_argument(legacy, help="accepted for old scripts and ignored with a warning (see --profile)")
    for legacy in ("--redis_host", "--redis_port", "--redis_db"):
        parser.add_argument(legacy, help="accepted and ignored with a warning (hpcingest needs no Redis)")


def add_start_parser(commands) -> None:
    start = commands.add_parser(
        "start", help="ingest SRC into the iRODS collection TARGET",
        description="Ingest (register or put) every entry of SRC into TARGET with all ranks. "
                    "Options keep the iRODS Automated Ingest Framework's names and defaults.")
    start.add_argument("src", metavar="SRC", help="source directory (or /bucket/prefix with --s3_keypair)")
    start.add_argument("target", metavar="TARGET_COLLECTION", help="absolute iRODS collection path")
    start.add_argument("--job_name", help="name of the job (default: a new UUID); rerun a name to resume it")
    start.add_argument("--job_dir", help="where job directories live, on a filesystem all nodes see "
                       "(default $HPCINGEST_HOME/jobs, else ~/.hpcingest/jobs)")
    start.add_argument("-i", "--interval", type=int, help="periodic job: start a pass every N seconds")
    start.add_argument("--event_handler", metavar="FILE", help="an automated-ingest event-handler .py file")
    start.add_argument("--synchronous", action="store_true",
                       help="exit non-zero when anything failed, and print where the failure report is")
    start.add_argument("--progress", action="store_true", help="show a live progress display")
    start.add_argument("--ignore_cache", action="store_true", help="ignore last-sync times (they are still written)")
    start.add_argument("--initial_ingest", action="store_true",
                       help="skip catalog existence checks: every entry is treated as new")
    start.add_argument("--irods_idle_disconnect_seconds", type=int, default=60, metavar="N",
                       help="disconnect from iRODS after N idle seconds, reconnect when needed (default 60)")
    start.add_argument("--irods_retry_seconds", type=float, default=60.0, metavar="N",
                       help="how long to keep trying to reach iRODS, at start and after a lost connection, "
                       "before giving up (default 60)")
    start.add_argument("--irods_connections", type=int, metavar="K",
                       help="at most K ranks hold iRODS connections, each an agent with a catalog database "
                            "connection on the server; the others send them their batches (default 16; see "
                            "\"Sizing --irods_connections\" in the README)")
    start.add_argument("--stall_after", type=float, default=300.0, metavar="SECONDS",
                       help="when no rank has made progress for this long, say so in `watch`, `list` and the "
                            "log (job_stalled), with what the ranks wait for (default 300)")
    start.add_argument("--dead_rank_timeout", type=float, default=60.0, metavar="S",
                       help="a rank that sends no heartbeat for S seconds (killed, its node lost) ends the job "
                            "with a resumable checkpoint instead of leaving the others waiting (default 60)")
    start.add_argument("--min_age", type=float, metavar="SECONDS",
                       help="landing zones: leave entries changed less than SECONDS ago for a later pass "
                            "(counted as too young, not failed)")
    start.add_argument("--metrics_file", metavar="F",
                       help="keep Prometheus metrics of the job in F (node_exporter's textfile collector), "
                            "replaced atomically every few seconds")
    start.add_argument("--checksum", action="store_true", help="have the server compute and store checksums")
    start.add_argument("--verify_checksum", action="store_true",
                       help="verify each PUT end to end; a mismatch is a failure")
    add_walk_options(start)
    add_log_options(start)
    start.add_argument("--profile", action="store_true",
                       help="record every rank's activity timeline; `hpcingest profile JOB` draws it")
    for legacy in ("--file_queue", "--path_queue", "--restart_queue"):
        start.add_argument(legacy, help="accepted and ignored with a warning (no Celery queues)")
    add_s3_options(start)


def add_job_control_parsers(commands) -> None:
    def job_parser(name: str, help_text: str, with_job: bool = True) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text, description=help_text)
        if with_job:
            parser.add_argument("job", metavar="JOB", help="job name")
        parser.add_argument("--job_dir", help="where job directories live (default $HPCINGEST_HOME/jobs, "
                            "else ~/.hpcingest/jobs)")
        add_log_options(parser)
        return parser

    listing = job_parser("list", "list jobs as JSON: {periodic, singlepass, stopped}", with_job=False)
    listing.add_argument("--prune", type=float, metavar="DAYS",
                         help="first remove the jobs (record and sync state) that ended more than DAYS days "
                              "ago; a running or waiting job is never removed")
    stop = job_parser("stop", "stop a running job: ranks finish their current item, checkpoint and exit")
    stop.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the ranks (default 60)")
    watch = job_parser("watch", "show a job's live progress until it ends")
    watch.add_argument("--interval", type=float, default=None, help="seconds between updates")
    report = job_parser("report", "show the failure report of a job's last pass")
    report.add_argument("--json", action="store_true", help="as JSON")
    job_parser("resume", "run a job again (same options) to finish a pass that died or was stopped")
    profile = job_parser("profile", "draw the per-rank activity timeline of a job run with --profile: "
                         "a self-contained HTML file, a PNG and a usage table")
    profile.add_argument("--pass", dest="pass_number", type=int, metavar="N",
                         help="which pass (default: the last one recorded)")
    profile.add_argument("--output", metavar="DIR", help="where the HTML and PNG go (default: the job directory)")
    profile.add_argument("--json", action="store_true", help="print the usage table as JSON")


def warn_ignored_options(args) -> None:
    """A job command's old options that take no effect, one line each (`start` says them
    itself, once, from rank 0)."""
    from hpcingest.compat.options import ignored_option_warnings

    if launcher_rank() == 0:
        for warning in ignored_option_warnings(args):
            print(f"hpcingest {args.command}: warning: {warning}", file=sys.stderr)


def build_parser(prog: str = "hpcingest") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description=(
        "MPI-parallel ingest of parallel-filesystem trees and S3 buckets into iRODS. "
        "Run under srun or mpiexec for many ranks, or alone for one."))
    parser.add_argument("--version", action="version", version=f"hpcingest {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    scan = commands.add_parser("scan", help="walk a directory tree in parallel and summarize it (no iRODS)",
                               description="Walk SRC with every rank and print a summary.")
    scan.add_argument("src", metavar="SRC", help="directory to walk (or /bucket/prefix with --s3_keypair)")
    add_walk_options(scan)
    add_s3_options(scan)
    scan.add_argument("--list", metavar="FILE",
                      help="write every entry's path relative to SRC, NUL-terminated, into FILE")
    scan.add_argument("--json", metavar="FILE", help="write the summary as JSON into FILE "
                      "(keys include files, directories, symlinks, other, bytes = total size of "
                      "regular files, errors, elapsed_s, ranks)")
    scan.add_argument("--quiet", action="store_true", help="print no summary")

    add_start_parser(commands)
    add_job_control_parsers(commands)

    demo = commands.add_parser("demo", help="quick start: generate a sample tree and run the parallel job on it")
    demo.add_argument("--workdir", default="hpcingest-demo", help="where the sample tree and results go")
    demo.add_argument("--ranks", type=int, default=2, help="MPI ranks to start with mpiexec (default 2)")
    demo.add_argument("--files", type=int, default=20_000, help="files in the sample tree (default 20000)")

    tree = commands.add_parser("sample-tree", help="generate a deterministic sample tree (benchmarks, tests)")
    tree.add_argument("dir", metavar="DIR")
    tree.add_argument("--files", type=int, default=10_000)
    tree.add_argument("--seed", type=int, default=0)
    tree.add_argument("--layout", choices=("balanced", "skewed"), default="balanced")

    from hpcingest.serve.options import add_serve_parser

    add_serve_parser(commands)

    commands.add_parser("zone", add_help=False, help="serve the built-in iRODS test zone (see `zone --help`)")
    return parser


def console_main() -> None:
    """The ``hpcingest`` script: the command line, then the process's end (launch.exit_process)."""
    from hpcingest.launch import exit_process

    exit_process(main())


def main(argv: list[str] | None = None, prog: str = "hpcingest") -> int:
    """``prog``: the name usage lines show (the old module's when run through hpcingest.compat.irods_sync)."""
    try:
        return _main(argv, prog)
    except BrokenPipeError:
        from hpcingest.launch import reader_gone

        return reader_gone()


def _main(argv: list[str] | None, prog: str) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["zone"]:
        from hpcingest.zone.cli import main as zone_main

        return zone_main(argv[1:])
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.command == "scan":
        from hpcingest import scan
        from hpcingest.launch import run_collectively

        return run_collectively(lambda comm: scan.run(comm, args))
    if args.command in ("start", "resume"):
        from hpcingest.ingest import job
        from hpcingest.irods.connection import load_client
        from hpcingest.launch import run_collectively

        if launcher_rank() == 0:
            load_client()  # rank 0 logs in before any rank may start: load the client meanwhile

        if args.command == "resume":
            from hpcingest import jobctl
            from hpcingest.jobdir import JobError

            warn_ignored_options(args)
            try:
                resumption = jobctl.enter_resumption(args)
                argv = resumption.argv
                args = parser.parse_args(["start", *argv])
                args.resumed_source = resumption.source
            except JobError as err:
                if launcher_rank() == 0:
                    print(f"hpcingest resume: error: {err}", file=sys.stderr)
                return 2
        else:
            argv = argv[1:]
        return run_collectively(lambda comm: job.run(comm, args, argv))
    if args.command in ("list", "stop", "watch", "report", "profile"):
        from hpcingest import jobctl
        from hpcingest.jobdir import JobError

        warn_ignored_options(args)
        try:
            return getattr(jobctl, f"cmd_{args.command}")(args)
        except JobError as err:
            print(f"hpcingest {args.command}: error: {err}", file=sys.stderr)
            return 2
    if args.command == "serve":
        from hpcingest.serve.main import run as serve

        return serve(args)
    if args.command == "demo":
        from hpcingest import demo

        return demo.run(args)
    if args.command == "sample-tree":
        from hpcingest import sample

        try:
            made = sample.generate(args.dir, files=args.files, seed=args.seed, layout=args.layout)
        except sample.SampleTreeError as err:
            print(f"hpcingest sample-tree: error: {err}", file=sys.stderr)
            return 2
        except OSError as err:
            from hpcingest.outputs import describe

            print(f"hpcingest sample-tree: error: {describe(err)}", file=sys.stderr)
            return 1
        print(f"{os.fsdecode(made.root)}: {made.files:,} files, {made.directories:,} directories, "
              f"{made.bytes:,} bytes")
        return 0
    parser.print_help()
    return 2
