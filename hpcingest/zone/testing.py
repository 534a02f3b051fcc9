"""Start a zone for tests and benchmarks, or use the real zone the environment points at.

Typical use in a test suite::

    from hpcingest.zone.testing import zone_from_environment_or_start

    with zone_from_environment_or_start(tmp_path) as zone:
        with zone.session() as session:          # an iRODSSession as the zone's admin
            session.collections.create(zone.home + "/x")

``zone.builtin`` says whether the zone is the built-in one; tests that need built-in-only
features (restart, ``api_stats``, ``root``) must skip when it is False.  The password is passed
to a subprocess zone through the environment, never on its command line.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from irods.session import iRODSSession

    from .state import ZoneConfig

from .clientenv import AUTH_FILE_NAME, ENV_FILE_NAME, ClientEnvironment, read_client_files, write_client_files
from .cli import PASSWORD_ENV

_STARTUP_TIMEOUT = 60.0
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class RunningZone:
    """A zone a client can talk to: address, admin credentials, client files and how to stop it."""

    host: str
    port: int
    zone: str
    user: str
    password: str = field(repr=False)  # never shown in test failure output
    env_file: str
    auth_file: str
    root: str | None
    default_resource: str = "demoResc"
    builtin: bool = True
    _server: Any = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        """The zone's process id when it runs as a subprocess (None in-process or for a real zone)."""
        return self._process.pid if self._process is not None else None

    @property
    def home(self) -> str:
        return f"/{self.zone}/home/{self.user}"

    def environ(self) -> dict[str, str]:
        """The variables that point PRC (and icommands) at this zone."""
        return {"IRODS_ENVIRONMENT_FILE": self.env_file, "IRODS_AUTHENTICATION_FILE": self.auth_file}

    def session(self, **kwargs: Any) -> "iRODSSession":
        """An iRODSSession as the zone's admin (extra kwargs such as ``client_user`` pass through)."""
        from irods.session import iRODSSession

        return iRODSSession(host=self.host, port=self.port, user=self.user, password=self.password,
                            zone=self.zone, **kwargs)

    def api_stats(self) -> dict[str, dict]:
        """Per-API request counts and service times (built-in zone only)."""
        if not self.builtin:
            raise RuntimeError("api_stats is only available from the built-in zone")
        if self._server is not None:
            return self._server.state.stats.snapshot()
        import json

        stats_path = os.path.join(self.root or "", "api_stats.json")
        before = os.stat(stats_path).st_mtime_ns if os.path.exists(stats_path) else 0
        assert self._process is not None
        self._process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.exists(stats_path) and os.stat(stats_path).st_mtime_ns != before:
                with open(stats_path, encoding="utf-8") as source:
                    return json.load(source)
            time.sleep(0.01)
        raise TimeoutError("the zone did not write its statistics")

    def wait(self) -> int | None:
        """Wait for a subprocess zone to exit (after a signal) and return its exit status."""
        return self._process.wait() if self._process is not None else None

    def stop(self) -> None:
        """Stop the zone (idempotent); the catalog stays in ``root`` for a restart."""
        if self._server is not None:
            self._server.shutdown()
            if self._thread is not None:
                self._thread.join()
            self._server.state.catalog.close()
            self._server = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                self._process.wait()
            self._process = None


def start_zone(root: str | os.PathLike, *, subprocess_mode: bool = False, port: int = 0, zone: str = "tempZone",
               user: str = "rods", password: str = "rods", version: str = "4.3.4", latency_ms: float = 0.0,
               host: str = "127.0.0.1", service_ms: float = 0.0, cores: int = 0, max_db_connections: int = 97,
               allow_path_registration: bool = False, service_account: str | None = None) -> RunningZone:
    """Start a built-in zone on ``root`` (a thread in this process, or a child process).

    ``service_account`` runs the zone as a child process under that (unprivileged) account, as a
    real server runs under its own: it then reads and writes only what that account may, so a
    test that leans on the server sharing its user or its private directories fails here as it
    would against a real zone.  Only root can switch accounts; ``root`` is handed to the account.
    """
    from .state import ZoneConfig

    root = os.path.abspath(os.fspath(root))
    os.makedirs(root, mode=0o700, exist_ok=True)
    config = ZoneConfig(root=root, zone=zone, user=user, host=host, port=port, version=version,
                        latency_ms=latency_ms, service_ms=service_ms, cores=cores,
                        max_db_connections=max_db_connections, allow_path_registration=allow_path_registration)
    if subprocess_mode or service_account:
        return _start_subprocess(config, password, service_account)
    from .server import ZoneServer

    server = ZoneServer(config, password)
    env_file, auth_file = write_client_files(root, ClientEnvironment("localhost", server.port, zone, user), password)
    thread = threading.Thread(target=server.serve_forever, name="zone-accept", daemon=True)
    thread.start()
    return RunningZone(host, server.port, zone, user, password, env_file, auth_file, root,
                       _server=server, _thread=thread)


def _start_subprocess(config: "ZoneConfig", password: str, service_account: str | None) -> RunningZone:
    env = dict(os.environ)
    env[PASSWORD_ENV] = password
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_PARENT, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "hpcingest.zone.cli", "--root", config.root, "--port", str(config.port),
               "--host", config.host, "--zone", config.zone, "--user", config.user, "--version", config.version,
               "--latency-ms", str(config.latency_ms), "--service-ms", str(config.service_ms),
               "--cores", str(config.cores), "--max-db-connections", str(config.max_db_connections)]
    if config.allow_path_registration:
        command.append("--allow-path-registration")
    account: dict[str, Any] = {}
    if service_account:
        entry = pwd.getpwnam(service_account)
        os.chown(config.root, entry.pw_uid, entry.pw_gid)
        account = dict(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[], cwd=config.root)
        env["HOME"] = config.root
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, **account)
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        process.wait()
        process.stdout.close()
        raise RuntimeError(f"the zone did not start (exit {process.returncode})")
    actual_port = int(line.split("listening on ", 1)[1].split()[0].rsplit(":", 1)[1])
    threading.Thread(target=process.stdout.read, daemon=True).start()
    client = ClientEnvironment("localhost", actual_port, config.zone, config.user)
    if service_account:  # .irodsA is obfuscated with its reader's uid: the client's, not the server's
        env_file, auth_file = write_client_files(config.root, client, password)
    else:
        env_file, auth_file = (os.path.join(config.root, name) for name in (ENV_FILE_NAME, AUTH_FILE_NAME))
    return RunningZone(config.host, actual_port, config.zone, config.user, password, env_file, auth_file,
                       config.root, _process=process)


def environment_zone() -> RunningZone | None:
    """The real zone named by $IRODS_ENVIRONMENT_FILE (and its .irodsA), or None when unset."""
    env_file = os.environ.get("IRODS_ENVIRONMENT_FILE")
    if not env_file:
        return None
    auth_file = os.environ.get("IRODS_AUTHENTICATION_FILE") or os.path.expanduser("~/.irods/.irodsA")
    env, password = read_client_files(env_file, auth_file)
    return RunningZone(env.host, env.port, env.zone, env.user, password, env_file, auth_file, None,
                       default_resource=env.default_resource or "demoResc", builtin=False)


@contextmanager
def zone_from_environment_or_start(tmpdir: str | os.PathLike, **options: Any) -> Iterator[RunningZone]:
    """Use the real zone if $IRODS_ENVIRONMENT_FILE is set, else run a built-in one in ``tmpdir``.

    With ``service_account`` (and run as root) the built-in zone runs under that account, in a
    directory of its own under the system's temporary directory (``tmpdir`` may be private to
    root); without root privileges it runs as this user, as before.
    """
    real = environment_zone()
    if real is not None:
        yield real
        return
    root = os.path.join(os.fspath(tmpdir), "zone")
    if options.get("service_account"):
        if os.geteuid() == 0:
            root = tempfile.mkdtemp(prefix="hpcingest-zone-")
        else:
            options.pop("service_account")
    try:
        zone = start_zone(root, **options)
    except RuntimeError:
        if not options.get("service_account"):
            raise
        # e.g. a checkout the account cannot read: run as this user rather than not at all
        warnings.warn(f"the zone could not run as {options['service_account']!r}; it runs as this user, "
                      "so tests cannot tell what a server under its own account could not reach")
        shutil.rmtree(root, ignore_errors=True)
        options.pop("service_account")
        root = os.path.join(os.fspath(tmpdir), "zone")
        zone = start_zone(root, **options)
    try:
        yield zone
    finally:
        zone.stop()
        if options.get("service_account"):
            shutil.rmtree(root, ignore_errors=True)
