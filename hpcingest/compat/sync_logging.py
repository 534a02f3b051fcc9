"""``get_sync_logger(config)``: the structlog-style logger handler files log through.

Handlers call ``logger.info("event", key=value)``; a plain ``logging.Logger`` rejects the
keywords, so this wraps one and renders each call as one JSON line with the old fields
(``event``, ``logger``, ``level``, ``@timestamp``) for log scrapers written for the old tool.
The config is the old ``meta["config"]["log"]`` dict (filename, when, interval, level).
"""

from __future__ import annotations

import datetime
import json
import logging
import logging.handlers
import sys
from typing import Any, Mapping

_LOGGER_PREFIX = "irods_sync"
_loggers: dict[str, "SyncLogger"] = {}


class SyncLogger:
    """Keyword-accepting facade over a stdlib logger; the stdlib level decides what is written."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def _log(self, level: int, event: Any, kw: dict[str, Any]) -> None:
        if not self._logger.isEnabledFor(level):
            return
        record = {
            "event": event,
            **kw,
            "logger": self._logger.name,
            "level": logging.getLevelName(level).lower(),
            "@timestamp": datetime.datetime.now().astimezone().isoformat(timespec="milliseconds"),
        }
        self._logger.log(level, json.dumps(record, default=repr))

    def debug(self, event: Any = None, **kw: Any) -> None:
        self._log(logging.DEBUG, event, kw)

    def info(self, event: Any = None, **kw: Any) -> None:
        self._log(logging.INFO, event, kw)

    def warning(self, event: Any = None, **kw: Any) -> None:
        self._log(logging.WARNING, event, kw)

    warn = warning

    def error(self, event: Any = None, **kw: Any) -> None:
        self._log(logging.ERROR, event, kw)

    def exception(self, event: Any = None, **kw: Any) -> None:
        kw.setdefault("exc_info", True)
        self._log(logging.ERROR, event, kw)

    def critical(self, event: Any = None, **kw: Any) -> None:
        self._log(logging.CRITICAL, event, kw)


def _key(config: Mapping[str, Any]) -> str:
    return (config.get("filename") or "") + "/" + (config.get("level") or "")


def _handler(config: Mapping[str, Any]) -> logging.Handler:
    filename = config.get("filename")
    if filename is None:
        return logging.StreamHandler(sys.stdout)
    if config.get("when") is not None:
        return logging.handlers.TimedRotatingFileHandler(
            filename, when=config["when"], interval=config.get("interval") or 1)
    return logging.FileHandler(filename)


def get_sync_logger(config: Mapping[str, Any] | None) -> SyncLogger:
    """One logger per (filename, level), as in the old tool, so repeated calls do not add handlers.

    Without a level the stdlib default (WARNING) applies, which is why the old tool needed
    ``--log_level INFO`` to show info events; that is kept.
    """
    config = config or {}
    key = _key(config)
    logger = _loggers.get(key)
    if logger is None:
        std = logging.getLogger(_LOGGER_PREFIX + "/" + key)
        std.propagate = False
        if config.get("level") is not None:
            std.setLevel(logging.getLevelName(config["level"]))
        std.addHandler(_handler(config))
        logger = _loggers[key] = SyncLogger(std)
    return logger
