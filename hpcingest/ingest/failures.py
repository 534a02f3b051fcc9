"""The failure report: one JSON line per failed or skipped entry, one file per rank.

Per file, never per batch: a line says which path, what was attempted, the iRODS error name
and code (or errno), and how many attempts were made.  Rank files are merged when the pass ends.

Every line is valid JSON text for any parser: ``path`` (and any other field) is valid UTF-8,
with bytes that are not UTF-8 shown as ``\\xNN``, and ``path_b64`` holds the exact bytes of
such a name (see hpcingest.escaping).
"""

from __future__ import annotations

import errno
import json
import os
import traceback
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hpcingest.escaping import exact_fields, json_safe
from hpcingest.typedjson import RecordTypeError, record_from_json


@dataclass(frozen=True)
class Failure:
    path: str  # source path, decoded with surrogateescape so nothing is lost
    logical_path: str | None
    operation: str
    kind: str  # "failed" or "skipped"
    error: str  # iRODS error name, errno name, or exception class
    code: int | None
    message: str
    attempts: int

    def to_record(self) -> dict:
        """The JSON object of a report line: valid UTF-8, exact bytes in ``*_b64`` fields."""
        return json_safe(asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_record())

    @classmethod
    def from_json(cls, line: str) -> "Failure":
        """A report line, as written now or before ``*_b64`` fields existed; ValueError when
        it is not one (not JSON, not an object, a field of the wrong type)."""
        record = json.loads(line)
        if not isinstance(record, dict):
            raise RecordTypeError("a report line is a JSON object")
        record = exact_fields(record)
        return record_from_json(cls, {f.name: record.get(f.name) for f in fields(cls)})


class FailureLog:
    """Appends this rank's failures to its own file (created only when needed)."""

    def __init__(self, directory: str, rank: int) -> None:
        self.path = os.path.join(directory, f"failures.rank{rank:05d}.jsonl")
        self._file = None
        self.failed = 0
        self.skipped = 0

    def add(self, failure: Failure) -> None:
        if self._file is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._file = open(fd, "a", encoding="utf-8", errors="surrogateescape")
        self._file.write(failure.to_json() + "\n")
        self._file.flush()
        if failure.kind == "skipped":
            self.skipped += 1
        else:
            self.failed += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def merge_reports(directory: str, output: str) -> int:
    """Concatenate the rank files into one report; returns the number of lines."""
    parts = sorted(f for f in os.listdir(directory) if f.startswith("failures.rank") and f.endswith(".jsonl"))
    count = 0
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
        for part in parts:
            path = os.path.join(directory, part)
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                for line in f:
                    out.write(line)
                    count += 1
            os.unlink(path)
    return count


@dataclass
class Report:
    """A failure report as read back: its good lines, and how many lines could not be read."""

    failures: list[Failure] = field(default_factory=list)
    unreadable: int = 0


def read_report(path: str) -> Report:
    """Every line that is a failure; a damaged line (a crash leaves a half-written last one)
    is counted, not fatal, so one bad line never hides the others."""
    report = Report()
    if not os.path.exists(path):
        return report
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                report.failures.append(Failure.from_json(line))
            except ValueError:  # JSON, base64 and field type errors alike
                report.unreadable += 1
    return report


def describe_error(err: BaseException) -> tuple[str, int | None]:
    """The name and code a failure report line carries: the iRODS error, the errno, or the type."""
    name = getattr(err, "name", None)
    if isinstance(name, str):
        return name, getattr(err, "code", None)
    if isinstance(err, OSError) and err.errno:
        return errno_name(err.errno), err.errno
    return type(err).__name__, None


def old_log_fields(err: BaseException) -> dict[str, Any]:
    """``exc``, ``einfo`` and ``traceback`` as the old framework's ``failed_task`` and
    ``retry_task`` lines carried them (Celery's ``on_failure``/``on_retry``): the exception's
    repr, the formatted traceback (what Celery's ExceptionInfo holds), and the frames of
    ``traceback.extract_tb`` as the old JSON renderer wrote them.  For an exception raised in
    a handler hook these name the handler file's own lines.  All text, so the log's secret
    scrubbing sees every character."""
    frames = traceback.extract_tb(err.__traceback__)
    return {"exc": repr(err),
            "einfo": "".join(traceback.format_exception(type(err), err, err.__traceback__)).rstrip("\n"),
            "traceback": [repr(frame) for frame in frames]}


def errno_name(code: int) -> str:
    return errno.errorcode.get(code, f"errno {code}")
