"""The `hpcingest serve` command line (kept apart from the service, so `hpcingest --help`
works without the serve extra installed)."""

from __future__ import annotations

import argparse

DEFAULT_PORT = 8080
MAX_BODY_BYTES = 1 << 20  # a job request with its handler text; larger is 413


def add_serve_parser(commands) -> None:
    serve = commands.add_parser(
        "serve", help="the old framework's REST job API (PUT/GET/DELETE /job), a status page and metrics",
        description="Serve the iRODS Automated Ingest Framework's job API on top of Slurm (or local mpiexec), "
                    "with a live status page at / and Prometheus metrics at /metrics. Needs the serve extra: "
                    "pip install 'hpcingest[serve]'.")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this host only)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free one)")
    serve.add_argument("--launcher", choices=("slurm", "mpiexec"),
                       help="how jobs run (default: slurm when sbatch is here and a controller answers, else mpiexec)")
    serve.add_argument("--ranks", type=int, metavar="N",
                       help="ranks of a job that does not ask (mpiexec default 2; under Slurm the scripts' default "
                            "or --sbatch_option's --ntasks)")
    serve.add_argument("--token_file", metavar="F",
                       help="file with the API token (default $HPCINGEST_HOME/serve.token, else "
                            "~/.hpcingest/serve.token; created with a random token, mode 0600)")
    serve.add_argument("--tls_cert", metavar="F", help="certificate (PEM) to serve HTTPS only")
    serve.add_argument("--tls_key", metavar="F", help="its private key (PEM)")
    serve.add_argument("--sbatch_option", action="append", default=[], metavar="OPT",
                       help="an option for every sbatch, e.g. --sbatch_option=--partition=ingest (repeatable; "
                            "write it with '=')")
    serve.add_argument("--slurm_scripts", metavar="DIR",
                       help="directory of ingest.sbatch and periodic.sbatch (default: hpcingest's jobs/slurm)")
    serve.add_argument("--job_dir", help="where job directories live, on a filesystem every node sees "
                       "(default $HPCINGEST_HOME/jobs, else ~/.hpcingest/jobs)")
    serve.add_argument("--max_body", type=int, default=MAX_BODY_BYTES, metavar="BYTES",
                       help=f"largest request body accepted (default {MAX_BODY_BYTES}); larger is refused with 413")


def check_serve_options(args: argparse.Namespace) -> str | None:
    """A one-line complaint about the options, or None."""
    if bool(args.tls_cert) != bool(args.tls_key):
        return "--tls_cert and --tls_key go together"
    if not 0 <= args.port <= 65535:
        return f"--port {args.port} is not a port number"
    if args.ranks is not None and args.ranks < 1:
        return "--ranks must be at least 1"
    if args.max_body < 1024:
        return "--max_body must be at least 1024 bytes"
    return None
