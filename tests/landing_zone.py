"""The landing-zone case of --min_age, shared by the plain `start --interval` test and the
service's: an instrument appends to a file for longer than one interval while a periodic job
ingests the directory; the file must land once, complete."""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import os
import threading
import time
from collections import Counter

from tests.ingest.conftest import hooks
from tests.launchers import HANG_GUARD_S

CHUNK = b"0123456789abcdef" * 64  # 1 KiB per append


class Writer(threading.Thread):
    """Appends a chunk to ``path`` every ``gap_s`` seconds until :meth:`finish`, and always
    for at least ``at_least_s`` seconds (longer than one interval of the job)."""

    def __init__(self, path: str, gap_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.path, self.gap_s = path, gap_s
        self._done = threading.Event()
        self.started = self.ended = 0.0

    def run(self) -> None:
        self.started = time.time()
        with open(self.path, "ab") as f:
            while not self._done.is_set():
                f.write(CHUNK)
                f.flush()
                time.sleep(self.gap_s)
        self.ended = time.time()

    def finish(self) -> None:
        self._done.set()
        self.join()


def pass_summaries(job_path: str) -> list[dict]:
    summaries = []
    for path in sorted(glob.glob(os.path.join(job_path, "summaries", "pass-*.json"))):
        with open(path) as f:
            summaries.append(json.load(f))
    return summaries


def wait_for(condition, what: str, poll_s: float = 0.2):
    deadline = time.monotonic() + HANG_GUARD_S  # a hung job fails the test; not a performance limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"not after {HANG_GUARD_S} s: {what}")


def write_through_passes(writer: Writer, job_path: str, interval: float) -> None:
    """Keep the writer going for more than one interval and until a pass has ended while it
    wrote (and so found the file too young); then stop it."""
    writer.start()
    wait_for(lambda: time.time() - writer.started > 1.5 * interval
             and any(s["too_young"] for s in pass_summaries(job_path)),
             "a pass that ended while the file was written")
    writer.finish()


def sha2(path: str) -> str:
    with open(path, "rb") as f:
        return "sha2:" + base64.b64encode(hashlib.sha256(f.read()).digest()).decode()


def landed(zone, logical: str, local: str):
    """The object's (size, checksum) once it is there with the file's final size, else None."""
    from irods.exception import DataObjectDoesNotExist

    with zone.session() as session:
        try:
            obj = session.data_objects.get(logical)
        except DataObjectDoesNotExist:
            return None
        return (obj.size, obj.checksum) if obj.size == os.path.getsize(local) else None


def check_landed_once(zone, logical: str, local: str, hook_log: str, job_path: str) -> None:
    """The file is in the catalog complete (size, checksum and bytes), it was created once and
    never modified, and no pass counted it as failed."""
    size, checksum = landed(zone, logical, local)
    assert size == os.path.getsize(local)
    assert checksum == sha2(local)
    with zone.session() as session, session.data_objects.open(logical, "r") as f:
        assert f.read() == open(local, "rb").read()
    events = Counter(hooks(hook_log))
    assert events[("pre_data_obj_create", logical)] == 1
    assert events[("pre_data_obj_modify", logical)] == 0
    summaries = pass_summaries(job_path)
    assert any(s["too_young"] for s in summaries) and not any(s["failed"] for s in summaries)
