"""JSON-lines logs through structlog, line-compatible with the old framework's.

Each line is one JSON object with the old fields (``event``, ``logger``, ``level``,
``@timestamp``) plus ``rank`` and ``host``, so scrapers written for the old tool keep
working and a line can be traced to its process.  Why per-rank files: hundreds of ranks
appending to one file interleave partial lines on NFS/Lustre, and a rotating handler
renames the file under the other writers; one writer per file avoids both.  A single
rank keeps the old file name exactly.

Names that are not UTF-8 are written as valid UTF-8 text with their exact bytes beside them
(``path`` and ``path_b64``, hpcingest.escaping), so every line is JSON any parser reads.

Secrets: values of keys that name one (password, secret, ...) and every occurrence of a
registered secret value are replaced before a line is rendered, whatever the caller
(including handler files) passes in.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import socket
import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from hpcingest.escaping import json_safe


LOGGER_PREFIX = "irods_sync"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ROTATION_WHEN = re.compile(r"^(S|M|H|D|MIDNIGHT|W[0-6])$", re.IGNORECASE)
REDACTED = "***"
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|credential|auth_key|access_key)", re.IGNORECASE)


class LogOptionsError(ValueError):
    """A log option that cannot work; reported before any rank starts."""


@dataclass(frozen=True)
class LogOptions:
    """The old ``--log_*`` options (``meta["config"]["log"]`` keeps them as a dict)."""

    filename: str | None = None
    level: str | None = None  # None: the stdlib default, WARNING
    when: str | None = None
    interval: int | None = None

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | None) -> "LogOptions":
        config = config or {}
        return cls(config.get("filename"), config.get("level"), config.get("when"), config.get("interval"))

    def as_mapping(self) -> dict[str, Any]:
        return {"filename": self.filename, "level": self.level, "when": self.when, "interval": self.interval}

    def validate(self) -> "LogOptions":
        if self.level is not None and self.level.upper() not in LEVELS:
            raise LogOptionsError(f"--log_level {self.level!r}: use one of {', '.join(LEVELS)}")
        if self.when is not None and not ROTATION_WHEN.match(self.when):
            raise LogOptionsError(f"--log_when {self.when!r}: use S, M, H, D, midnight or W0-W6")
        if self.interval is not None and self.interval < 1:
            raise LogOptionsError("--log_interval must be at least 1")
        if self.filename is not None:
            if os.path.isdir(self.filename):  # else the first line logged failed, mid-pass
                raise LogOptionsError(f"--log_filename {self.filename!r} is a directory; give a file name")
            directory = os.path.dirname(os.path.abspath(self.filename))
            if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
                raise LogOptionsError(f"--log_filename {self.filename!r}: directory {directory!r} "
                                      "does not exist or is not writable")
        return self


class _Process:
    """Who this process is, stamped on every line."""

    rank: int | None = None
    size: int = 1
    host: str = socket.gethostname()


_secrets: set[str] = set()
_loggers: dict[LogOptions, "JsonLogger"] = {}


def set_identity(rank: int | None, size: int) -> None:
    _Process.rank, _Process.size = rank, size


def register_secret(value: str | None) -> None:
    """A value that must never appear in a log line (passwords, S3 secret keys)."""
    if value and len(value) >= 6:  # shorter ones ("rods") would blank out innocent words
        _secrets.add(value)


def rank_filename(filename: str, rank: int | None, size: int) -> str:
    """``FILE`` for a single process (the old name), ``FILE.rankN`` for each of many."""
    return filename if size <= 1 or rank is None else f"{filename}.rank{rank}"


def _timestamp(logger, method: str, event: dict) -> dict:
    event["@timestamp"] = datetime.datetime.now().astimezone().isoformat(timespec="milliseconds")
    return event


def _identity(logger, method: str, event: dict) -> dict:
    event["rank"] = _Process.rank
    event["host"] = _Process.host
    return event


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return value


def _redact(logger, method: str, event: dict) -> dict:
    for key, value in event.items():
        if _SECRET_KEY.search(key):
            event[key] = REDACTED
        elif isinstance(value, (str, dict, list, tuple)):
            event[key] = _scrub(value)
    return event


def _exception_text(logger, method: str, event: dict) -> dict:
    """Render exc_info, then scrub it too (a traceback can quote a password)."""
    import structlog

    event = structlog.processors.format_exc_info(logger, method, event)
    if "exception" in event:
        event["exception"] = _scrub(event["exception"])
    return event


_handlers: list[logging.Handler] = []


def _processors() -> list:
    import structlog

    return [structlog.stdlib.add_logger_name, structlog.stdlib.add_log_level, _timestamp, _identity,
            _exception_text, _redact, _valid_json_text, structlog.processors.JSONRenderer(default=repr)]


def _valid_json_text(logger, method: str, event: dict) -> dict:
    """Paths that are not UTF-8 as valid UTF-8 text plus their exact bytes in ``<key>_b64``:
    a lone surrogate written as ``\\udcXX`` is not JSON other tools can read."""
    return json_safe(event)


def _handler(options: LogOptions) -> logging.Handler:
    if options.filename is None:
        return logging.StreamHandler(sys.stderr)
    filename = rank_filename(options.filename, _Process.rank, _Process.size)
    if options.when is not None:
        from logging.handlers import TimedRotatingFileHandler

        # interval defaults to 1: the old tool crashed when only --log_when was given
        return TimedRotatingFileHandler(filename, when=options.when, interval=options.interval or 1, delay=True)
    return logging.FileHandler(filename, delay=True)


def _at_level(level: int, method: str) -> Callable[..., None]:
    """A logging method: one comparison when the line is below the level, else structlog's."""
    def log(self: "JsonLogger", event: Any = None, **kw: Any) -> None:
        if self.level <= level:
            getattr(self.structlog(), method)(event, **kw)

    log.__name__ = method
    return log


class JsonLogger:
    """What ``get_logger`` hands out: ``logger.info("event", key=value)`` like the old tool.

    The level test happens here, first, so a call below the level is one comparison on the
    hot paths that log per file; structlog (and the log file) are set up only when a line is
    actually written, which spares every rank of a quiet job the import.  Anything else a
    structlog logger offers (``bind``, ...) is passed through.
    """

    __slots__ = ("options", "level", "_structlog")

    def __init__(self, options: LogOptions) -> None:
        self.options = options
        self.level = logging.getLevelName(options.level.upper()) if options.level else logging.WARNING
        self._structlog = None

    def is_enabled_for(self, level: int) -> bool:
        return level >= self.level

    def structlog(self):
        """The structlog logger behind this one (a filtering bound logger over a stdlib logger
        with this options' handler), made on first use."""
        if self._structlog is None:
            import structlog

            std = logging.getLogger(f"{LOGGER_PREFIX}/{self.options.filename or ''}/{self.options.level or ''}")
            std.propagate = False
            std.setLevel(self.level)
            handler = _handler(self.options)
            handler.setFormatter(logging.Formatter("%(message)s"))
            std.handlers[:] = [handler]
            _handlers.append(handler)
            self._structlog = structlog.make_filtering_bound_logger(self.level)(std, _processors(), {})
        return self._structlog

    debug = _at_level(logging.DEBUG, "debug")
    info = _at_level(logging.INFO, "info")
    warning = warn = _at_level(logging.WARNING, "warning")
    error = _at_level(logging.ERROR, "error")
    exception = _at_level(logging.ERROR, "exception")
    critical = _at_level(logging.CRITICAL, "critical")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.structlog(), name)


def get_logger(options: LogOptions | Mapping[str, Any] | None = None) -> JsonLogger:
    """The logger for these options, one per process and options (as the old tool kept one
    per filename and level, so repeated calls add no handlers)."""
    if not isinstance(options, LogOptions):
        options = LogOptions.from_mapping(options)
    logger = _loggers.get(options)
    if logger is None:
        logger = _loggers[options] = JsonLogger(options)
    return logger


def enabled_for(logger, level: int) -> bool:
    """Whether a line at ``level`` would be written: lets hot paths skip building arguments."""
    return logger.is_enabled_for(level)


def close_all() -> None:
    """Flush and close every log file (end of a job; also lets tests reuse the names)."""
    for handler in _handlers:
        handler.close()
    _handlers.clear()
    _loggers.clear()
