"""The job API end to end with the mpiexec launcher: real requests, real MPI runs, the real zone."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hpcingest import sample
from tests.ingest.conftest import catalog, source_view
from tests.landing_zone import Writer, check_landed_once, landed, pass_summaries, wait_for, write_through_passes
from tests.launchers import hpcingest_argv
from tests.serve.conftest import Service, flat_tree, handler_text, service_environment, stop_all, write_yaml

TOKEN_MARKER = "handler-text-marker-7d41"
HANDLER = f"""# {TOKEN_MARKER}
from irods_capability_automated_ingest.core import Core


class event_handler(Core):
    pass
"""


def metrics(service: Service) -> dict[tuple, float]:
    """GET /metrics (no token needed), parsed by prometheus_client's own text parser."""
    response = service.request("GET", "/metrics", token=None)
    assert response.status == 200 and response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.body.decode()) for sample in family.samples}


def test_a_curled_yaml_job_runs_to_done_with_the_catalog_equal_to_the_tree(service, zone, tmp_path):
    tree = tmp_path / "tree"
    sample.generate(tree, files=300, seed=3, max_file_size=64)
    target = f"{zone.home}/served{os.getpid()}"
    job_file = write_yaml(tmp_path / "job.yaml", root=str(tree), target=target, append_json="{}",
                          event_handler="handler", event_handler_data=HANDLER, files_per_task=20)
    submitted = service.curl_put("first", job_file)
    assert submitted["job_name"] == "first" and submitted["state"] in ("pending", "running")
    assert set(submitted["ignored"]) == {"append_json", "event_handler"}
    view = service.wait_for("first", ("done",))
    assert catalog(zone, target).objects == source_view(tree).objects
    with open(os.path.join(service.job_dir, "first", "summary.json")) as f:
        summary = json.load(f)
    assert view["pass"] == 1 and view["failures"] == 0 and view["summary"] == summary
    assert view["progress"]["entries"] == summary["entries"] and view["progress"]["percent"] == 100.0
    assert [job["job_name"] for job in service.request("GET", "/job").json()] == ["first"]

    # /metrics: the counts of the summary
    found = metrics(service)
    labels = (("job", "first"),)
    assert found[("hpcingest_job_state", (("job", "first"), ("state", "done")))] == 1.0
    assert found[("hpcingest_job_state", (("job", "first"), ("state", "running")))] == 0.0
    assert found[("hpcingest_job_pass", labels)] == 1
    assert found[("hpcingest_job_entries_scanned", labels)] == summary["entries"]
    for outcome, expected in (("created", sum(summary["created"].values())),
                              ("updated", sum(summary["updated"].values())), ("unchanged", summary["unchanged"]),
                              ("failed", summary["failed"]), ("too_young", summary["too_young"])):
        assert found[("hpcingest_job_files", (("job", "first"), ("outcome", outcome)))] == expected, outcome
    assert found[("hpcingest_job_bytes_uploaded", labels)] == summary["bytes_put"]
    assert found[("hpcingest_job_bytes_registered", labels)] == summary["bytes_registered"]
    for api, latency in summary["irods_calls"].items():
        assert found[("hpcingest_job_irods_calls", (("api", api), ("job", "first")))] == latency["calls"]

    # the handler text: stored 0600 in the job directory, never echoed
    handler = os.path.join(service.job_dir, "first", "handler.py")
    assert open(handler).read() == HANDLER and os.stat(handler).st_mode & 0o777 == 0o600
    for path in ("/job", "/job/first", "/job/first/failures", "/"):
        assert TOKEN_MARKER.encode() not in service.request("GET", path).body, path
    assert TOKEN_MARKER not in service.log and service.token not in service.log

    # DELETE of a job that ended removes it
    assert service.request("DELETE", "/job/first").status == 204
    assert service.request("GET", "/job/first").status == 404 and not os.path.exists(handler)


def job_directories(service: Service) -> list[str]:
    return sorted(os.listdir(service.job_dir)) if os.path.isdir(service.job_dir) else []


def test_bad_requests_get_their_status_and_leave_nothing_behind(service, zone, tmp_path):
    tree = flat_tree(tmp_path / "tree", 1)
    good = f"root: {tree}\ntarget: {zone.home}/bad{os.getpid()}\n".encode()
    assert service.request("PUT", "/job/kept", good).status == 201
    service.wait_for("kept", ("done",))
    before = job_directories(service)

    refused = [
        ("PUT", "/job/a", good, None, 401, "missing or wrong token"),
        ("PUT", "/job/a", good, "not-the-token-at-all-0123456789", 401, "missing or wrong token"),
        ("GET", "/job", None, None, 401, "missing or wrong token"),
        ("DELETE", "/job/kept", None, "wrong", 401, "missing or wrong token"),
        ("PUT", "/job/a", b"root: [unclosed\n", "", 400, "not valid YAML"),
        ("PUT", "/job/a", good + b"bogus_key: 1\n", "", 400, "bogus_key: unknown key"),
        ("PUT", "/job/a", good + b"files_per_task: lots\n", "", 400, "files_per_task: must be a whole number"),
        ("PUT", "/job/a", b"!!python/object/apply:os.system ['true']\n", "", 400, "not valid YAML"),
        ("PUT", "/job/-a", good, "", 400, "invalid job name"),
        ("PUT", "/job/" + "a" * 129, good, "", 400, "invalid job name"),
        ("PUT", "/job/a%2F..%2Fb", good, "", 400, "invalid job name"),
        ("PUT", "/job/kept", good, "", 409, "job 'kept' exists"),
        ("PUT", "/job/a", good + b"# " + b"x" * (1 << 20) + b"\n", "", 413, "Too Large"),
        ("PUT", "/job/a", f"root: {tree}/missing\ntarget: {zone.home}/x\n".encode(), "", 400, "missing"),
        ("GET", "/job/nosuch", None, "", 404, "no job 'nosuch'"),
        ("GET", "/job/kept/failures?limit=0", None, "", 400, "limit 1 to"),
    ]
    for method, path, body, token, status, words in refused:
        response = service.request(method, path, body, token=token)
        assert response.status == status, (method, path, response.status, response.body[:300])
        assert words in response.json()["error"], (path, response.body[:300])
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Bearer")
    assert job_directories(service) == before  # nothing created, nothing removed
    assert service.job("kept")["state"] == "done"
    assert not subprocess.run(["pgrep", "-f", "--", "--job_name=a( |$)"], capture_output=True).stdout  # nothing ran
    assert "Traceback" not in service.log


def test_a_periodic_job_runs_passes_until_delete_stops_it(service, zone, tmp_path):
    tree = tmp_path / "tree"
    sample.generate(tree, files=50, seed=5, max_file_size=16)
    target = f"{zone.home}/periodic{os.getpid()}"
    service.curl_put("every", write_yaml(tmp_path / "job.yaml", root=str(tree), target=target, interval=2))
    view = service.wait_for("every", ("running",), lambda v: v["pass"] >= 2 and v["waiting"])
    assert view["periodic"] and view["interval"] == 2 and view["launcher"] == "mpiexec"
    response = service.request("DELETE", "/job/every")
    assert response.status == 202 and response.json()["stop_requested"]
    stopped = service.wait_for("every", ("stopped",))
    assert stopped["pass"] >= 2 and catalog(zone, target).objects == source_view(tree).objects
    record = json.load(open(os.path.join(service.job_dir, "every", "job.json")))
    assert record["status"] == "stopped"  # `hpcingest list` agrees
    wait_for(lambda: not subprocess.run(["pgrep", "-f", "--", "--job_name=every"], capture_output=True).stdout,
             "the local run to end")


def test_a_restarted_service_still_reports_the_running_job_until_it_finishes(slow_zone, tmp_path):
    zone = slow_zone
    running = Service(tmp_path, service_environment(zone, tmp_path)).start()
    try:
        tree = tmp_path / "tree"
        sample.generate(tree, files=2000, seed=6, max_file_size=16)
        target = f"{zone.home}/restart{os.getpid()}"
        running.curl_put("long", write_yaml(tmp_path / "job.yaml", root=str(tree), target=target))
        running.wait_for("long", ("running",), lambda v: v["progress"]["entries"] > 0)
        assert running.stop() == 0
        running.start()
        view = running.job("long")
        assert view["state"] == "running" and view["launcher"] == "mpiexec", view
        done = running.wait_for("long", ("done",))
        assert done["progress"]["entries"] == len(source_view(tree).objects) + len(source_view(tree).collections) - 1
        assert catalog(zone, target).objects == source_view(tree).objects
    finally:
        stop_all(running)


def test_failures_are_paged(service, zone, tmp_path):
    tree = flat_tree(tmp_path / "tree", 7)
    target = f"{zone.home}/fail{os.getpid()}"
    service.curl_put("failing", write_yaml(tmp_path / "job.yaml", root=str(tree), target=target,
                                           event_handler_data=handler_text("failing.py")))
    view = service.wait_for("failing", ("failed",))
    assert view["failures"] == 7 and "7 entries failed" in view["reason"]
    pages = [service.request("GET", f"/job/failing/failures?offset={offset}&limit=3").json()
             for offset in (0, 3, 6)]
    assert [len(page["failures"]) for page in pages] == [3, 3, 1] and {p["total"] for p in pages} == {7}
    paths = sorted(entry["path"] for page in pages for entry in page["failures"])
    assert paths == sorted(str(tree / f"f{i}") for i in range(7))
    assert all(entry["error"] == "RuntimeError" for page in pages for entry in page["failures"])
    with open(os.path.join(service.job_dir, "failing", "failures.jsonl"), "a") as report:
        report.write('{"path": "/half-writ')  # what a rank that died mid-write leaves (it was a 500)
    page = service.request("GET", "/job/failing/failures?limit=10").json()
    assert page["total"] == 7 and len(page["failures"]) == 7 and page["unreadable"] == 1
    found = metrics(service)
    assert found[("hpcingest_job_state", (("job", "failing"), ("state", "failed")))] == 1.0
    assert found[("hpcingest_job_files", (("job", "failing"), ("outcome", "failed")))] == 7


def test_a_landing_zone_through_the_service(service, zone, tmp_path):
    """A periodic job with min_age while a writer appends for longer than one interval: the file lands
    once, complete."""
    src, log = tmp_path / "landing", tmp_path / "hooks"
    src.mkdir()
    growing = str(src / "growing.dat")
    handler = handler_text("counting.py").replace('os.environ.get("OPERATION", "REGISTER_SYNC")', '"PUT_SYNC"')
    handler = handler.replace('os.environ["HOOK_LOG"]', repr(str(log)))
    target, interval = f"{zone.home}/served_landing{os.getpid()}", 2
    service.curl_put("landing", write_yaml(tmp_path / "job.yaml", root=str(src), target=target, interval=interval,
                                           min_age=5, checksum=True, event_handler_data=handler))
    job_path = os.path.join(service.job_dir, "landing")
    write_through_passes(Writer(growing), job_path, interval)
    wait_for(lambda: landed(zone, f"{target}/growing.dat", growing), "the complete file in the catalog")
    passes = len(pass_summaries(job_path))
    wait_for(lambda: len(pass_summaries(job_path)) > passes + 1, "two more passes")
    assert service.request("DELETE", "/job/landing").status == 202
    service.wait_for("landing", ("stopped",))
    check_landed_once(zone, f"{target}/growing.dat", growing, str(log), job_path)
    assert any(s["too_young"] for s in pass_summaries(job_path))


@pytest.fixture
def tls_files(tmp_path):
    """A self-signed certificate for 127.0.0.1 (cryptography, from the test extra)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_file, 0o600)
    return str(cert_file), str(key_file)


def test_with_a_certificate_it_serves_https_only(zone, tmp_path, tls_files):
    import ssl

    cert, key = tls_files
    running = Service(tmp_path, service_environment(zone, tmp_path), ["--tls_cert", cert, "--tls_key", key],
                      context=ssl.create_default_context(cafile=cert)).start()
    try:
        assert running.url.startswith("https://127.0.0.1:")
        assert running.request("GET", "/job").json() == []
        assert running.request("GET", "/job", token=None).status == 401
        plain = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                running.url.replace("https://", "http://") + "/metrics"],
                               capture_output=True, text=True, timeout=120)
        assert plain.stdout in ("000", "400"), plain  # no plain HTTP answer: TLS only
        login = running.request("POST", "/login", b"token=" + running.token.encode(), token=None,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert login.status == 303
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Strict" in cookie
        assert running.token not in cookie
    finally:
        stop_all(running)


def test_the_session_cookie_reads_but_never_writes(service):
    login = service.request("POST", "/login", b"token=" + service.token.encode(), token=None,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert login.status == 303 and login.headers["location"] == "/"
    cookie = login.headers["set-cookie"].split(";")[0]
    assert service.request("GET", "/job", token=None, headers={"Cookie": cookie}).status == 200
    assert service.request("PUT", "/job/x", b"root: /x\ntarget: /z/x\n", token=None,
                           headers={"Cookie": cookie}).status == 401
    wrong = service.request("POST", "/login", b"token=guess", token=None,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert wrong.status == 401 and "set-cookie" not in wrong.headers
    page = service.request("GET", "/", token=None)
    assert page.status == 401 and b'name="token"' in page.body and b"<tbody" not in page.body


def test_serve_refuses_bad_options_in_one_line(zone, tmp_path):
    env = service_environment(zone, tmp_path)
    token = tmp_path / "open.token"
    token.write_text("t" * 40 + "\n")
    os.chmod(token, 0o644)
    afile = tmp_path / "afile"  # a job root that is a file answered 500 to every GET /job
    afile.write_text("")
    for args, words in ((["--tls_cert", "/nonexistent.pem"], "--tls_cert and --tls_key go together"),
                        (["--token_file", str(tmp_path / "t"), "--job_dir", str(afile), "--launcher", "mpiexec"],
                         f"job root {afile} is not a directory"),
                        (["--tls_cert", "/nonexistent.pem", "--tls_key", "/nonexistent.key"], "TLS certificate"),
                        (["--token_file", str(token)], "can be read by other users"),
                        (["--launcher", "slurm", "--slurm_scripts", str(tmp_path)], "no ingest.sbatch")):
        result = subprocess.run(hpcingest_argv("serve", "--port", "0", *args), capture_output=True, text=True,
                                env=env, timeout=120)
        assert result.returncode == 2 and words in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
