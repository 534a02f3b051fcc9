"""A real `hpcingest serve` for the tests: a subprocess on a free port of 127.0.0.1, talked to
over HTTP (curl where the old README used it), its jobs real MPI runs or Slurm batch jobs."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

from tests.ingest.conftest import HANDLERS
from tests.launchers import HANG_GUARD_S, hpcingest_argv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytest.importorskip("aiohttp", reason="hpcingest serve needs the serve extra: pip install 'hpcingest[serve]'")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Service:
    """One `hpcingest serve` process; restart() runs a new one on the same files."""

    tmp_path: object
    env: dict
    options: list[str] = field(default_factory=list)
    launcher: str = "mpiexec"
    process: subprocess.Popen | None = None
    url: str = ""
    runs: int = 0
    context: ssl.SSLContext | None = None  # how an https service is verified

    @property
    def job_dir(self) -> str:
        return str(self.tmp_path / "jobs")

    @property
    def token_file(self) -> str:
        return str(self.tmp_path / "serve.token")

    @property
    def token(self) -> str:
        with open(self.token_file) as f:
            return f.readline().strip()

    @property
    def log(self) -> str:
        return "".join(open(self.tmp_path / f"serve-{run}.log", errors="replace").read()
                       for run in range(1, self.runs + 1))

    def start(self) -> "Service":
        self.runs += 1
        log = self.tmp_path / f"serve-{self.runs}.log"
        argv = hpcingest_argv("serve", "--port", "0", "--launcher", self.launcher, "--job_dir", self.job_dir,
                              "--token_file", self.token_file, *self.options)
        with open(log, "wb") as out:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                            env=self.env)
        deadline = time.monotonic() + HANG_GUARD_S
        while time.monotonic() < deadline:
            found = re.search(r"listening on (\S+)/\n", log.read_text(errors="replace"))
            if found:
                self.url = found.group(1)
                return self
            assert self.process.poll() is None, log.read_text(errors="replace")
            time.sleep(0.1)
        raise AssertionError(f"the service did not listen within {HANG_GUARD_S} s")

    def stop(self) -> int:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=HANG_GUARD_S)
        return self.process.returncode if self.process is not None else 0

    def restart(self) -> "Service":
        self.stop()
        return self.start()

    def request(self, method: str, path: str, body: bytes | None = None, *, token: str | None = "",
                headers: dict | None = None, context: ssl.SSLContext | None = None) -> Response:
        """``token``: "" sends the service's token, None sends none, else that one."""
        scheme, host, port = re.match(r"(https?)://([^:/]+):(\d+)", self.url).groups()
        if scheme == "https":
            connection = http.client.HTTPSConnection(host, int(port), context=context or self.context,
                                                     timeout=HANG_GUARD_S)
        else:
            connection = http.client.HTTPConnection(host, int(port), timeout=HANG_GUARD_S)
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token or self.token}"
        try:
            connection.request(method, path, body=body, headers=sent)
            reply = connection.getresponse()
            return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read())
        finally:
            connection.close()

    def job(self, name: str) -> dict:
        response = self.request("GET", f"/job/{name}")
        assert response.status == 200, response.body
        return response.json()

    def wait_for(self, name: str, states: tuple[str, ...], condition=lambda view: True) -> dict:
        """Poll GET /job/<name> until its state is one of ``states`` (and ``condition`` holds)."""
        deadline = time.monotonic() + HANG_GUARD_S  # a hung job fails the test; not a performance limit
        view: dict = {}
        while time.monotonic() < deadline:
            view = self.job(name)
            if view["state"] in states and condition(view):
                return view
            assert view["state"] in ("pending", "running") or view["state"] in states, view
            time.sleep(0.3)
        raise AssertionError(f"job {name} not {states} after {HANG_GUARD_S} s: {view}")

    def curl_put(self, name: str, yaml_file: str) -> dict:
        """Submit as the old README does: curl a YAML file."""
        result = subprocess.run(["curl", "-sS", "-X", "PUT", "-H", "Content-Type: application/x-yaml",
                                 "-H", f"Authorization: Bearer {self.token}", "--data-binary", f"@{yaml_file}",
                                 "-w", "\n%{http_code}", f"{self.url}/job/{name}"],
                                capture_output=True, text=True, timeout=HANG_GUARD_S)
        body, _, code = result.stdout.rpartition("\n")
        assert code == "201", (code, body, result.stderr)
        return json.loads(body)


def service_environment(zone, tmp_path, extra: dict | None = None) -> dict:
    return {**os.environ, **zone.environ(), "PYTHONPATH": ROOT, "HPCINGEST_HOME": str(tmp_path / "home"),
            "HPCINGEST_PYTHON": sys.executable, **(extra or {})}


@pytest.fixture
def service(zone, tmp_path):
    """A service with the mpiexec launcher (2 ranks), on the session's zone."""
    running = Service(tmp_path, service_environment(zone, tmp_path)).start()
    yield running
    stop_all(running)


def stop_all(running: Service) -> None:
    """DELETE whatever still runs (a failed test leaves no job behind), then stop the service."""
    if running.process is not None and running.process.poll() is None:
        for view in running.request("GET", "/job").json():
            if view["state"] in ("pending", "running"):
                running.request("DELETE", f"/job/{view['job_name']}")
    running.stop()


def flat_tree(path, files: int):
    """A directory of ``files`` one-byte files."""
    path.mkdir()
    for i in range(files):
        (path / f"f{i}").write_bytes(b"x")
    return path


def handler_text(name: str) -> str:
    """A test handler's source, to send as event_handler_data."""
    with open(os.path.join(HANDLERS, name)) as f:
        return f.read()


def write_yaml(path, **keys) -> str:
    """A job file like the old README's (JSON is YAML, and keeps strings exact)."""
    lines = [f"{key}: {json.dumps(value)}" for key, value in keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)
