"""What a user sees of a run: per-rank JSON logs, the pass summary, the profile, and no secret anywhere.

One 4-rank job (and its unchanged second pass) is shared by the tests of this module; it runs
as a user made for it, with a password long enough to be recognised wherever it might leak.
The user is a rodsadmin because the job registers in place, which iRODS's default policy
allows only a rodsadmin (PATH_REG_NOT_ALLOWED otherwise).
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import stat
import subprocess
import uuid

import numpy as np
import pytest

from hpcingest.escaping import exact_fields, json_display
from hpcingest.profile.render import palette
from hpcingest.profile.timeline import load_timeline
from hpcingest.sample import generate
from tests.browser import open_page, row_colour_counts
from tests.ingest.conftest import HANDLERS, OLD_HANDLERS, catalog, source_view
from tests.launchers import Launcher, hpcingest_argv, run

RANKS = 4


class Job:
    def __init__(self, tmp, zone) -> None:
        self.tmp, self.zone = tmp, zone
        self.user = f"obs{os.getpid()}"
        self.password = "Pw-" + secrets.token_hex(12)
        self.target = f"/{zone.zone}/home/{self.user}/observed"
        self.jobs = str(tmp / "jobs")
        self.log = str(tmp / "logs" / "ingest.log")
        os.makedirs(os.path.dirname(self.log))
        self.tree = generate(str(tmp / "tree"), files=1500, seed=11)
        self.results: list[subprocess.CompletedProcess] = []

    def env(self) -> dict[str, str]:
        # the IRODS_* set, as the old framework allows: the password is in the environment only
        return {"IRODS_ENVIRONMENT_FILE": "", "IRODS_AUTHENTICATION_FILE": "", "IRODS_HOST": self.zone.host,
                "IRODS_PORT": str(self.zone.port), "IRODS_USER_NAME": self.user, "IRODS_ZONE_NAME": self.zone.zone,
                "IRODS_PASSWORD": self.password}

    def start(self) -> subprocess.CompletedProcess:
        argv = hpcingest_argv("start", os.fsdecode(self.tree.root), self.target, "--synchronous",
                              "--job_name", "observed", "--job_dir", self.jobs, "--profile",
                              "--log_filename", self.log, "--log_level", "INFO", "--log_when", "D",
                              "--profile_filename", "/ignored/by/hpcingest")
        result = run(Launcher("mpiexec", RANKS), argv, env=self.env())
        self.results.append(result)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        return result

    def summary(self) -> dict:
        with open(os.path.join(self.jobs, "observed", "summary.json")) as f:
            return json.load(f)

    def log_lines(self) -> dict[int, list[dict]]:
        lines = {}
        for rank in range(RANKS):
            with open(f"{self.log}.rank{rank}") as f:
                lines[rank] = [json.loads(line) for line in f]
        return lines


@pytest.fixture(scope="module")
def job(tmp_path_factory, zone):
    from irods.exception import UserDoesNotExist
    from irods.session import iRODSSession

    made = Job(tmp_path_factory.mktemp("observed"), zone)
    with zone.session() as admin:
        admin.users.create(made.user, "rodsadmin")
        admin.users.modify(made.user, "password", made.password)
    try:
        made.first = made.start()
        made.first_summary = made.summary()
        made.first_lines = made.log_lines()
        made.catalog = catalog(zone, made.target)
        made.second = made.start()
        made.second_summary = made.summary()
        yield made
    finally:
        with iRODSSession(host=zone.host, port=zone.port, user=made.user, password=made.password,
                          zone=zone.zone) as own:
            if own.collections.exists(made.target):
                own.collections.remove(made.target, recurse=True, force=True)
        with zone.session() as admin:
            try:
                admin.users.remove(made.user)
            except UserDoesNotExist:
                pass


def test_every_rank_writes_json_lines_with_the_old_fields_rank_and_host(job):
    assert sorted(os.listdir(os.path.dirname(job.log))) == [f"ingest.log.rank{r}" for r in range(RANKS)]
    for rank, lines in job.first_lines.items():
        assert lines, f"rank {rank} wrote nothing"
        for line in lines:
            assert {"event", "level", "logger", "@timestamp", "rank", "host"} <= set(line)
            assert line["rank"] == rank
    events = [line for lines in job.first_lines.values() for line in lines]
    succeeded = [e for e in events if e["event"] == "succeeded"]
    summary = job.first_summary
    # one "succeeded" line per object and per collection made below the target
    assert len(succeeded) == sum(summary["created"].values()) + summary["collections_created"]
    assert {e["path"] for e in succeeded} >= {os.path.join(os.fsdecode(job.tree.root), "group00")}


def test_the_second_pass_logs_each_unchanged_file_by_its_old_event_name(job):
    lines = [line for rank in range(RANKS) for line in job.log_lines()[rank]]
    unchanged = [line for line in lines if line["event"] == "succeeded_file_has_not_changed"]
    assert job.second_summary["unchanged"] > 0
    assert len(unchanged) == job.second_summary["unchanged"]


def test_the_summary_counts_match_the_source_and_the_catalog(job):
    summary, root = job.first_summary, os.fsdecode(job.tree.root)
    kinds: dict[str, int] = {}
    size = 0
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            st = os.lstat(os.path.join(top, name))
            kind = {stat.S_IFREG: "regular", stat.S_IFDIR: "directory", stat.S_IFLNK: "link"}[stat.S_IFMT(st.st_mode)]
            kinds[kind] = kinds.get(kind, 0) + 1
            size += st.st_size if stat.S_ISREG(st.st_mode) else 0
    assert summary["entries_by_type"] == kinds
    assert summary["bytes_scanned"] == size
    assert summary["entries"] == sum(kinds.values()) == sum(summary["entries_per_rank"])
    assert summary["created"] == {"REGISTER_SYNC": len(job.catalog.objects)}
    assert summary["collections_created"] == len(job.catalog.collections) - 1  # the target is made before
    registrations = summary["irods_calls"]["PHY_PATH_REG_AN"]
    assert registrations["calls"] == len(job.catalog.objects)
    assert 0 < registrations["p50_ms"] <= registrations["p95_ms"] <= registrations["p99_ms"] <= registrations["max_ms"]
    assert summary["failed"] == summary["skipped"] == 0
    second = job.second_summary
    assert second["unchanged"] == second["entries"] and "PHY_PATH_REG_AN" not in second["irods_calls"]
    for number, kept in ((1, summary), (2, second)):  # each pass's summary is kept
        with open(os.path.join(job.jobs, "observed", "summaries", f"pass-{number:04d}.json")) as f:
            assert json.load(f) == kept
    text = job.first.stdout.decode()
    assert "PHY_PATH_REG_AN" in text and "p95 ms" in text and "regular 1,5" in text


def test_the_profile_has_a_row_per_rank_covering_the_pass(job):
    timeline = load_timeline(os.path.join(job.jobs, "observed", "profile", "pass-0002"))
    assert [r.rank for r in timeline.ranks] == list(range(RANKS))
    elapsed = job.second_summary["elapsed_s"]
    assert timeline.ended - timeline.started >= 0.9 * elapsed  # the summary's clock also counts its gather
    for rank in timeline.ranks:
        segments = rank.segments
        covered = float(np.sum(segments["end"] - segments["start"]))
        assert covered >= 0.8 * rank.wall_s, f"rank {rank.rank}: only {covered:.3f} of {rank.wall_s:.3f} s attributed"
        assert np.all(segments["start"][1:] >= segments["end"][:-1] - 1e-9)  # exclusive segments
    first = load_timeline(os.path.join(job.jobs, "observed", "profile", "pass-0001"))
    kinds = set().union(*(r.kinds for r in first.ranks))
    assert {"list", "stat", "sink", "state", "irods:PHY_PATH_REG_AN"} <= kinds


def test_profile_command_draws_the_html_png_and_usage_table(job, tmp_path):
    result = run(None, hpcingest_argv("profile", "observed", "--job_dir", job.jobs, "--pass", "1",
                                      "--output", str(tmp_path), "--json"))
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    usage = json.loads(result.stdout)
    rows = usage["ranks"] if isinstance(usage, dict) else usage
    assert [row["rank"] for row in rows] == list(range(RANKS))
    assert os.path.getsize(tmp_path / "profile-observed-pass1.html") > 0
    assert os.path.getsize(tmp_path / "profile-observed-pass1.png") > 0
    missing = run(None, hpcingest_argv("profile", "observed", "--job_dir", job.jobs, "--pass", "9"))
    assert missing.returncode == 2 and b"Traceback" not in missing.stderr


def test_the_real_runs_timeline_opens_offline_in_a_browser_with_a_row_per_rank(job, tmp_path, browser):
    result = run(None, hpcingest_argv("profile", "observed", "--job_dir", job.jobs, "--output", str(tmp_path)))
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    page = tmp_path / "profile-observed-pass2.html"  # the last pass recorded
    open_page(browser, page)  # rendered, no console error, nothing fetched but the file
    assert browser.execute_script("return document.body.dataset.rows") == str(RANKS)
    timeline = load_timeline(os.path.join(job.jobs, "observed", "profile", "pass-0002"))
    colours = sorted(set(palette(kind for rank in timeline.ranks for kind in rank.kinds).values()))
    for row, counts in enumerate(row_colour_counts(browser, RANKS, colours)):
        assert counts is not None, f"row {row} is off screen"
        drawn = sum(v for k, v in counts.items() if k != "area")
        assert drawn >= 0.5 * counts["area"], f"rank {row}'s row is mostly empty: {counts}"


def test_the_password_is_nowhere(job):
    secret = job.password.encode()
    for result in job.results:
        assert secret not in result.stdout and secret not in result.stderr
    written = [p for p in glob.glob(os.path.join(job.tmp, "**"), recursive=True) if os.path.isfile(p)]
    assert any(p.endswith(".rank0") for p in written) and any(p.endswith("job.json") for p in written)
    for path in written:
        if "/tree/" in path:
            continue
        with open(path, "rb") as f:
            assert secret not in f.read(), path


def test_bad_log_options_fail_before_work(zone, tmp_path):
    result = run(None, hpcingest_argv("start", str(tmp_path), f"{zone.home}/never", "--log_level", "LOUD"),
                 env=zone.environ())
    assert result.returncode == 2 and b"--log_level 'LOUD'" in result.stderr and b"Traceback" not in result.stderr


def test_a_log_filename_that_is_a_directory_fails_before_work(zone, tmp_path):
    """It was taken, and the first line logged failed mid-pass: a traceback, the job left
    "running", and the entry being logged reported as failed with EISDIR."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_bytes(b"a")
    result = run(None, hpcingest_argv("start", str(tmp_path / "src"), f"{zone.home}/never", "--job_dir",
                                      str(tmp_path / "jobs"), "--log_filename", str(tmp_path / "src")),
                 env=zone.environ())
    assert result.returncode == 2 and b"is a directory" in result.stderr and b"Traceback" not in result.stderr
    assert not (tmp_path / "jobs").exists() or not os.listdir(tmp_path / "jobs")


def old_task_lines(zone, tmp_path, handler: str, event: str) -> tuple[list[dict], str]:
    tree = generate(str(tmp_path / "tree"), files=4, seed=2, max_file_size=16)
    log = str(tmp_path / "old.log")
    result = run(None, hpcingest_argv("start", os.fsdecode(tree.root), f"{zone.home}/old_fields{uuid.uuid4().hex[:8]}",
                                      "--job_name", "oldfields", "--job_dir", str(tmp_path / "jobs"),
                                      "--event_handler", handler, "--log_filename", log), env=zone.environ())
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    with open(log) as f:
        lines = [json.loads(line) for line in f]
    chosen = [line for line in lines if line["event"] == event]
    assert len(chosen) == len(source_view(tree.root).objects)
    return chosen, handler


def test_failed_task_lines_carry_the_old_fields_and_the_handlers_traceback(zone, tmp_path):
    """ELK dashboards and habits built on the old failed_task line: task, job_name, task_id,
    exc, einfo and traceback, the last two naming the handler's own line."""
    lines, handler = old_task_lines(zone, tmp_path, os.path.join(HANDLERS, "failing.py"), "failed_task")
    for line in lines:
        path = exact_fields(line)["path"]  # names that are not UTF-8 are in the tree too
        assert line["task"] == "sync_file" and line["job_name"] == "oldfields" and uuid.UUID(line["task_id"])
        assert line["exc"] == repr(RuntimeError(f"cannot take {path}"))
        assert line["einfo"].startswith("Traceback (most recent call last):") and f'File "{handler}"' in line["einfo"]
        assert line["einfo"].endswith(json_display(f"RuntimeError: cannot take {path}"))
        frame = line["traceback"][-1]  # as the old JSON renderer wrote traceback.extract_tb's frames
        assert frame.startswith(f"<FrameSummary file {handler}, line ") and frame.endswith(" in pre_data_obj_create>")
    assert len({line["task_id"] for line in lines}) == len(lines)


def test_retry_task_lines_carry_the_old_fields(zone, tmp_path):
    lines, _ = old_task_lines(zone, tmp_path, os.path.join(OLD_HANDLERS, "retry.py"), "retry_task")
    for line in lines:
        assert line["task"] == "sync_file" and line["job_name"] == "oldfields" and uuid.UUID(line["task_id"])
        assert line["exc"] == "RuntimeError('no failures')" and line["traceback"]
