"""A real S3 endpoint for the tests: moto's standalone server on loopback, with IAM checks on.

moto accepts any credentials until its IAM authentication is switched on, so the fixture
creates an IAM user with an allow-everything policy and an access key while it is still
open, then POSTs ``0`` to ``/moto-api/reset-auth`` (the server side of moto's
``INITIAL_NO_AUTH_ACTION_COUNT``): from then on every request must be SigV4-signed with a
key moto issued, so a wrong secret gets ``SignatureDoesNotMatch`` and an unknown key
``InvalidAccessKeyId`` from the server itself, and a user without a policy ``AccessDenied``.

``SlowDownProxy`` is an HTTP proxy (``--s3_proxy_url``) that answers some requests with
S3's ``503 SlowDown`` before they reach the server, to show that throttling is retried; it
can also require proxy credentials (``407`` without them).
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Iterator
from urllib.parse import urlsplit

import pytest

START_TIMEOUT_S = 60
_ALLOW_ALL = json.dumps({"Version": "2012-10-17",
                         "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_keypair(path: str, access_key: str, secret_key: str) -> str:
    """A keypair file in the old framework's format, private like a real one (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{access_key}\n{secret_key}\n")
    return path


@dataclass
class S3TestServer:
    """A running moto server: where it is, a working keypair file, and boto3 helpers."""

    endpoint: str  # "127.0.0.1:PORT", the --s3_endpoint_domain form
    keypair: str  # path of a keypair file with valid, fully permitted credentials
    access_key: str
    secret_key: str = field(repr=False)
    workdir: str = ""
    region: str = "us-east-1"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def options(self, keypair: str | None = None) -> list[str]:
        """The --s3_* options that reach this server (plain http)."""
        return ["--s3_keypair", keypair or self.keypair, "--s3_endpoint_domain", self.endpoint,
                "--s3_insecure_connection", "--s3_region_name", self.region]

    def client(self, service: str = "s3", access_key: str | None = None, secret_key: str | None = None):
        import boto3
        from botocore.config import Config

        config = Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                        max_pool_connections=32, retries={"mode": "standard", "max_attempts": 5})
        return boto3.session.Session().client(
            service, endpoint_url=self.url, region_name=self.region, config=config,
            aws_access_key_id=access_key or self.access_key, aws_secret_access_key=secret_key or self.secret_key)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def put_objects(self, bucket: str, objects: dict[str, bytes] | Iterable[tuple[str, bytes]],
                    threads: int = 16) -> None:
        """Upload many objects at once (the server is threaded; 10k keys take seconds)."""
        client = self.client()
        items = list(objects.items() if isinstance(objects, dict) else objects)
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(lambda kv: client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), items):
                pass

    def delete_objects(self, bucket: str, keys: Iterable[str]) -> None:
        client = self.client()
        for key in keys:
            client.delete_object(Bucket=bucket, Key=key)

    def new_keypair(self, user: str, policy: str | None = _ALLOW_ALL) -> str:
        """Another IAM user with its own access key (``policy=None``: no permissions at all);
        returns the path of its keypair file."""
        iam = self.client("iam")
        iam.create_user(UserName=user)
        if policy is not None:
            iam.put_user_policy(UserName=user, PolicyName="policy", PolicyDocument=policy)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return write_keypair(os.path.join(self.workdir, f"{user}.keypair"), key["AccessKeyId"],
                             key["SecretAccessKey"])


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3TestServer]:
    """moto's S3 server on 127.0.0.1 for the session, with IAM authentication enforced."""
    workdir = str(tmp_path_factory.mktemp("s3server"))
    with _moto_process(workdir) as port:
        yield _enable_authentication(workdir, port)


CLOCK_BEHIND_S = 30


@pytest.fixture(scope="module")
def s3_server_behind(tmp_path_factory) -> Iterator[S3TestServer]:
    """Like ``s3_server``, but its objects are stamped CLOCK_BEHIND_S seconds behind the real
    clock (tests/moto_behind.py)."""
    workdir = str(tmp_path_factory.mktemp("s3server-behind"))
    with _moto_process(workdir, clock_behind_s=CLOCK_BEHIND_S) as port:
        yield _enable_authentication(workdir, port)


class _moto_process:
    """Start moto's server on a free port, wait until it answers, kill it at exit."""

    def __init__(self, workdir: str, clock_behind_s: float = 0) -> None:
        self.workdir = workdir
        self.process: subprocess.Popen | None = None
        self.program = [sys.executable, "-m", "moto.server"] if not clock_behind_s else \
            [sys.executable, os.path.join(os.path.dirname(__file__), "moto_behind.py"), str(clock_behind_s)]

    def __enter__(self) -> int:
        for _ in range(3):  # the free port can be taken between probing and binding
            port = free_port()
            log = open(os.path.join(self.workdir, "moto.log"), "ab")
            self.process = subprocess.Popen([*self.program, "-H", "127.0.0.1", "-p", str(port)],
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            log.close()
            if _wait_until_up(self.process, port):
                return port
            self._stop()
        raise RuntimeError(f"moto server did not start; see {self.workdir}/moto.log")

    def __exit__(self, *exc) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_until_up(process: subprocess.Popen, port: int) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=2).read()
            return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    return False


def _enable_authentication(workdir: str, port: int) -> S3TestServer:
    """Create the test user while moto is open, then make it check every signature."""
    open_server = S3TestServer(f"127.0.0.1:{port}", "", "any", "any", workdir)
    iam = open_server.client("iam")
    iam.create_user(UserName="ingest")
    iam.put_user_policy(UserName="ingest", PolicyName="all", PolicyDocument=_ALLOW_ALL)
    key = iam.create_access_key(UserName="ingest")["AccessKey"]
    request = urllib.request.Request(f"{open_server.url}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).read()
    keypair = write_keypair(os.path.join(workdir, "ingest.keypair"), key["AccessKeyId"], key["SecretAccessKey"])
    return S3TestServer(open_server.endpoint, keypair, key["AccessKeyId"], key["SecretAccessKey"], workdir)


_SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
              b"<Message>Please reduce your request rate.</Message><RequestId>test</RequestId></Error>")
_HOP_BY_HOP = {"connection", "proxy-connection", "keep-alive", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade"}


class SlowDownProxy:
    """A plain-http forward proxy that throttles: every ``every``-th first attempt of a
    request (botocore's ``amz-sdk-request: attempt=1``) gets ``503 SlowDown``, retries pass.
    With ``corrupt`` it also damages the bodies of some GETs, as a faulty network path would.

    So each request is throttled at most once and a correct client always gets through,
    while one that does not retry SlowDown fails."""

    def __init__(self, every: int = 2, corrupt: str | None = None, credentials: str | None = None) -> None:
        self.every = every  # 0: never throttle
        self.corrupt = corrupt  # GETs of URL paths ending with this get one byte of their body flipped
        # "user:password": requests without this Proxy-Authorization get 407, as a real proxy answers
        self.credentials = credentials
        self.authorized = 0
        self.refused = 0
        self.corrupted = 0
        self.requests = 0
        self.throttled = 0
        self.retried = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.credentials is not None:
                    expected = "Basic " + base64.b64encode(proxy.credentials.encode()).decode()
                    allowed = self.headers.get("Proxy-Authorization") == expected
                    with proxy._lock:
                        proxy.authorized += allowed
                        proxy.refused += not allowed
                    if not allowed:
                        self._reply(407, [("Proxy-Authenticate", 'Basic realm="test"')], b"")
                        return
                attempt = self.headers.get("amz-sdk-request", "attempt=1").split(";")[0].strip()
                with proxy._lock:
                    proxy.requests += 1
                    first = attempt == "attempt=1"
                    throttle = first and bool(proxy.every) and proxy.requests % proxy.every == 0
                    proxy.throttled += throttle
                    proxy.retried += not first
                if throttle:
                    self._reply(503, [("Content-Type", "application/xml")], _SLOW_DOWN)
                    return
                url = urlsplit(self.path)
                upstream = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    upstream.request(self.command, url.path + (f"?{url.query}" if url.query else ""), body, headers)
                    response = upstream.getresponse()
                    data = response.read()
                    if proxy.corrupt and self.command == "GET" and url.path.endswith(proxy.corrupt) and data:
                        data = bytes([data[0] ^ 0xFF]) + data[1:]
                        with proxy._lock:
                            proxy.corrupted += 1
                    self._reply(response.status,
                                [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP
                                 and k.lower() != "content-length"], data)
                finally:
                    upstream.close()

            def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "SlowDownProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
