"""`hpcingest serve`: check the options, read (or create) the token, pick the launcher, listen."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import sys

from hpcingest.jobdir import JobError, job_root as resolve_job_root


def run(args) -> int:
    def fail(message: str) -> int:
        print(f"hpcingest serve: error: {message}", file=sys.stderr)
        return 2

    from hpcingest.serve.options import check_serve_options

    problem = check_serve_options(args)
    if problem:
        return fail(problem)
    try:
        import aiohttp  # noqa: F401
        import prometheus_client  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as err:
        return fail(f"needs the serve extra ({err.name} is missing): pip install 'hpcingest[serve]'")
    from hpcingest.serve.app import make_app
    from hpcingest.serve.auth import Authenticator, TokenError, default_token_file, load_or_create_token
    from hpcingest.serve.launchers import LaunchError, LocalLauncher, SlurmLauncher, choose_launcher, \
        default_scripts_dir
    from hpcingest.serve.service import JobService

    token_file = os.path.abspath(args.token_file or default_token_file())
    try:
        token, created = load_or_create_token(token_file)
        context = tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
        kind = choose_launcher(args.launcher)
        launcher = SlurmLauncher(args.slurm_scripts or default_scripts_dir(), args.sbatch_option, args.ranks) \
            if kind == "slurm" else LocalLauncher(args.ranks)
    except (TokenError, LaunchError) as err:
        return fail(str(err))
    except (OSError, ssl.SSLError) as err:
        return fail(f"TLS certificate or key: {err}")
    try:  # made now: jobs are submitted there, and a root that cannot hold them must not answer 500s
        job_root = resolve_job_root(args.job_dir, create=True)
    except JobError as err:
        return fail(str(err))
    app = make_app(JobService(job_root, launcher), Authenticator(token), secure=context is not None,
                   max_body=args.max_body)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    print(f"hpcingest serve: token file {token_file}{' (created)' if created else ''}; launcher {kind}; "
          f"job directory {job_root}", file=sys.stderr)
    if context is None and args.host not in ("127.0.0.1", "::1", "localhost"):
        print("hpcingest serve: warning: listening beyond this host without TLS: the token travels in clear text "
              "(--tls_cert/--tls_key)", file=sys.stderr)
    try:
        asyncio.run(_serve(app, args.host, args.port, context))
    except OSError as err:
        return fail(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}")
    return 0


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


async def _serve(app, host: str, port: int, context: ssl.SSLContext | None) -> None:
    """Listen until TERM or INT; jobs go on without the service (they live in their job directories)."""
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=context).start()
    scheme = "https" if context else "http"
    for address in runner.addresses:
        shown = f"[{address[0]}]" if ":" in address[0] else address[0]
        print(f"hpcingest serve: listening on {scheme}://{shown}:{address[1]}/", file=sys.stderr, flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    try:
        await stopped.wait()
    finally:
        await runner.cleanup()
