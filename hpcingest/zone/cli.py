"""``hpcingest zone``: run the built-in iRODS test zone in the foreground until SIGTERM/SIGINT.

The password is taken from $HPCINGEST_ZONE_PASSWORD or ``--password-file`` so that it never has
to appear in a process listing; ``--password`` exists for interactive convenience only.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import sys
import threading

from .clientenv import ClientEnvironment, write_client_files
from .state import SUPPORTED_VERSIONS, ZoneConfig

PASSWORD_ENV = "HPCINGEST_ZONE_PASSWORD"
DEFAULT_PASSWORD = "rods"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hpcingest zone", description="Run the built-in iRODS test zone.")
    parser.add_argument("--root", required=True, help="directory for the catalog, vaults and client files")
    parser.add_argument("--port", required=True, type=int, help="TCP port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--zone", default="tempZone")
    parser.add_argument("--user", default="rods", help="the rodsadmin user")
    parser.add_argument("--password", help=f"admin password (prefer ${PASSWORD_ENV} or --password-file)")
    parser.add_argument("--password-file", help="file whose first line is the admin password")
    parser.add_argument("--version", default="4.3.4", choices=SUPPORTED_VERSIONS,
                        help="iRODS version to report (decides which login flow clients use)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="network delay added to every API reply (requests already sent go on being served)")
    parser.add_argument("--service-ms", type=float, default=0.0,
                        help="time each API request occupies its connection, like a slow agent (the reply "
                             "leaves after it, plus --latency-ms, and only then is the next request served)")
    parser.add_argument("--cores", type=int, default=0,
                        help="with --service-ms: at most this many requests in service at once, like a server "
                             "with that many cores (the others wait their turn); 0 (the default) serves every "
                             "connection at once")
    parser.add_argument("--max-db-connections", type=int, default=97,
                        help="database connections the catalog allows; every agent (client connection) holds "
                             "one, and the one past it is refused as iRODS 5.0.2 refuses it (default 97: "
                             "PostgreSQL's max_connections 100 minus its 3 superuser slots)")
    parser.add_argument("--allow-path-registration", action="store_true",
                        help="let rodsusers register files in place, like a site whose core.re sets "
                             "msiSetChkFilePathPerm(\"noChkPathPerm\") (the default, as in iRODS, is "
                             "\"disallowPathReg\": only a rodsadmin may)")
    parser.add_argument("--log-level", default="WARNING", type=str.upper,
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def _password(args: argparse.Namespace) -> str:
    if args.password is not None:
        return args.password
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as source:
            return source.readline().rstrip("\n")
    return os.environ.get(PASSWORD_ENV, DEFAULT_PASSWORD)


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not 0 <= args.port <= 65535:
        print(f"hpcingest zone: invalid port {args.port}", file=sys.stderr)
        return 2
    if args.latency_ms < 0 or args.service_ms < 0 or args.cores < 0:
        print("hpcingest zone: --latency-ms, --service-ms and --cores must not be negative", file=sys.stderr)
        return 2
    if args.max_db_connections < 1:
        print("hpcingest zone: --max-db-connections must be at least 1", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from .server import ZoneServer

    try:
        password = _password(args)
        if not password:
            raise ValueError("the admin password must not be empty")
        root = os.path.abspath(args.root)
        config = ZoneConfig(root=root, zone=args.zone, user=args.user, host=args.host, port=args.port,
                            version=args.version, latency_ms=args.latency_ms, service_ms=args.service_ms,
                            cores=args.cores, max_db_connections=args.max_db_connections,
                            allow_path_registration=args.allow_path_registration)
        server = ZoneServer(config, password)
        write_client_files(root, ClientEnvironment("localhost", server.port, args.zone, args.user), password)
    except (OSError, ValueError, sqlite3.Error) as exc:
        print(f"hpcingest zone: cannot start: {exc}", file=sys.stderr)
        return 1
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
        signal.signal(signal.SIGINT, lambda *_: server.shutdown())
        signal.signal(signal.SIGUSR1, lambda *_: server.request_stats_write())
    print(f"hpcingest zone: zone {args.zone} listening on {args.host}:{server.port} (root {root})", flush=True)
    try:
        server.serve_forever()
    finally:
        server.state.catalog.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
