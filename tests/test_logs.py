"""JSON-lines logs: old fields plus rank and host, rotation, option checks, secrets never written."""

from __future__ import annotations

import base64
import json
import os
import socket
import time

import pytest

from hpcingest import logs
from hpcingest.logs import LogOptions, LogOptionsError


@pytest.fixture(autouse=True)
def fresh_logs():
    logs.close_all()
    yield
    logs.close_all()
    logs.set_identity(None, 1)


def read_lines(path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_lines_carry_the_old_fields_plus_rank_and_host(tmp_path):
    logs.set_identity(0, 1)
    logger = logs.get_logger(LogOptions(str(tmp_path / "ingest.log"), "INFO"))
    logger.info("succeeded", path="/src/a", target="/zone/a")
    logger.debug("not written")
    logger.warning("retry_task", attempt=2)
    lines = read_lines(tmp_path / "ingest.log")  # one process keeps the old file name
    assert [line["event"] for line in lines] == ["succeeded", "retry_task"]
    first = lines[0]
    assert (first["level"], first["logger"], first["rank"], first["host"]) == (
        "info", f"irods_sync/{tmp_path / 'ingest.log'}/INFO", 0, socket.gethostname())
    assert (first["path"], first["target"]) == ("/src/a", "/zone/a")
    assert first["@timestamp"][:4].isdigit() and first["@timestamp"][-6] in "+-"  # local time with its offset
    assert lines[1]["level"] == "warning" and lines[1]["attempt"] == 2


def test_each_rank_of_many_writes_its_own_file(tmp_path):
    logs.set_identity(3, 8)
    logs.get_logger({"filename": str(tmp_path / "job.log"), "level": "INFO"}).info("walk dir", path="/x")
    assert os.listdir(tmp_path) == ["job.log.rank3"]
    assert read_lines(tmp_path / "job.log.rank3")[0]["rank"] == 3


def test_default_level_is_warning_like_the_old_tool(tmp_path):
    logger = logs.get_logger({"filename": str(tmp_path / "w.log")})
    logger.info("dropped")
    logger.error("failed_task", path="/a")
    assert [line["event"] for line in read_lines(tmp_path / "w.log")] == ["failed_task"]
    assert logs.get_logger({"filename": str(tmp_path / "w.log")}) is logger  # one logger per options


def test_secrets_are_blanked_by_key_and_by_value(tmp_path):
    logs.register_secret("s3cr3t-Passw0rd")
    logger = logs.get_logger({"filename": str(tmp_path / "s.log"), "level": "DEBUG"})
    logger.info("connecting", password="anything", s3_secret_key="abc", nested={"irods_password": "x", "n": 1},
                message="auth with s3cr3t-Passw0rd failed", items=["s3cr3t-Passw0rd"])
    try:
        raise RuntimeError("bad password s3cr3t-Passw0rd")
    except RuntimeError:
        logger.exception("failed_task")
    text = (tmp_path / "s.log").read_text()
    assert "s3cr3t-Passw0rd" not in text
    first, second = read_lines(tmp_path / "s.log")
    assert first["password"] == first["s3_secret_key"] == first["nested"]["irods_password"] == logs.REDACTED
    assert first["nested"]["n"] == 1 and first["message"] == "auth with *** failed" and first["items"] == ["***"]
    assert "RuntimeError: bad password ***" in second["exception"]


def test_rotation_with_only_when_given_uses_an_interval_of_one(tmp_path):
    path = tmp_path / "rot.log"
    options = LogOptions(str(path), "INFO", when="S").validate()  # the old tool crashed here
    logger = logs.get_logger(options)
    logger.info("first")
    time.sleep(1.2)  # TimedRotatingFileHandler rolls over at the next whole interval
    logger.info("second")
    files = sorted(os.listdir(tmp_path))
    assert len(files) == 2 and files[0] == "rot.log" and files[1].startswith("rot.log.")
    assert [line["event"] for line in read_lines(tmp_path / files[1])] == ["first"]
    assert [line["event"] for line in read_lines(path)] == ["second"]


@pytest.mark.parametrize("options, message", [
    (LogOptions(level="LOUD"), "--log_level 'LOUD'"),
    (LogOptions(filename="x", when="fortnight"), "--log_when 'fortnight'"),
    (LogOptions(filename="x", when="H", interval=0), "--log_interval must be at least 1"),
    (LogOptions(filename="/nonexistent/dir/x.log"), "does not exist or is not writable"),
])
def test_bad_options_are_named(options, message):
    with pytest.raises(LogOptionsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        options.validate()


def test_a_filtered_call_does_no_work(tmp_path):
    logger = logs.get_logger({"filename": str(tmp_path / "f.log"), "level": "WARNING"})
    assert not logs.enabled_for(logger, 20) and logs.enabled_for(logger, 30)
    logger.info("hot path", path=object())  # not even rendered: the object has no JSON form
    assert not (tmp_path / "f.log").exists()  # delay=True: no file until a line is written


def test_names_that_are_not_utf8_are_valid_json_text_with_their_bytes(tmp_path):
    from tests.test_escaping import strictly_valid

    logger = logs.get_logger(LogOptions(str(tmp_path / "ingest.log"), "INFO"))
    name = os.fsdecode(b"/src/caf\xe9\n\x1b[2J")
    logger.info("succeeded", path=name, target="/zone/caf\u00e9", extra={"nested": name})
    (text,) = open(tmp_path / "ingest.log", encoding="utf-8").read().splitlines()
    assert strictly_valid(text)
    line = json.loads(text)
    assert line["path"] == "/src/caf\\xe9\n\x1b[2J" and line["target"] == "/zone/caf\u00e9"
    assert base64.b64decode(line["path_b64"]) == b"/src/caf\xe9\n\x1b[2J" and "target_b64" not in line
    assert line["extra"] == {"nested": "/src/caf\\xe9\n\x1b[2J"}
