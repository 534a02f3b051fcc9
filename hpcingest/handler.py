"""Loading an old-style event-handler file and calling it with the old framework's conventions.

Sites have handler files written for irods_capability_automated_ingest; they must run
unchanged. The old framework calls each override with a particular, inconsistent argument
list (``operation(session, meta, **options)`` but ``max_retries(cls, logger, meta)`` with the
class passed explicitly, hooks with the handler *module* first), and those quirks are part of
the contract: a handler written against them breaks under any "cleaner" convention. This
module is the one place that knows them; the ingest sink calls typed methods instead.

The file is read once where the job starts and its text is shipped to every rank, so loading
works from the text alone (the old framework wrote it to ``/tmp`` on every worker).
"""

from __future__ import annotations

import itertools
import math
import reprlib
import sys
import traceback
import types
from typing import Any, Callable, Mapping

from hpcingest.compat import install_compat_modules
from hpcingest.compat.core import DELETE_EVENTS, EVENTS
from hpcingest.compat.utils import DeleteMode, Operation, compatible_delete_modes
from hpcingest.naming import CharacterMap, CharacterMapError

HANDLER_CLASS = "event_handler"
DEFAULT_TIMEOUT = 3600

#: What the old ``start`` stores when no ``--event_handler`` is given.
DEFAULT_HANDLER_TEXT = '''\
from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation, DeleteMode


class event_handler(Core):
    @staticmethod
    def operation(session, meta, *args, **options):
        return Operation.REGISTER_SYNC

    @staticmethod
    def delete_mode(meta):
        return DeleteMode.DO_NOT_DELETE
'''
DEFAULT_HANDLER_NAME = "<default event handler>"

_module_numbers = itertools.count()


class HandlerError(Exception):
    """The handler file cannot be used; ``str()`` is one line naming the file and the problem."""


def _member(enum: type, value: Any, filename: str, method: str) -> Any:
    """Our enum member for ``value``; members of the real package's enums are matched by name."""
    if isinstance(value, enum):
        return value
    name = getattr(value, "name", None)
    if isinstance(name, str) and name in enum.__members__ and type(value).__name__ == enum.__name__:
        return enum[name]
    raise HandlerError(f"{filename}: {method}() returned {value!r}, not a member of {enum.__name__}")


class EventHandler:
    """One loaded handler: the module, its ``event_handler`` class, and the old call forms."""

    def __init__(self, module: types.ModuleType, cls: type, filename: str) -> None:
        self.module = module
        self.cls = cls
        self.filename = filename
        self._char_map: CharacterMap | None = None

    def has(self, name: str) -> bool:
        """Whether the class defines ``name``: absent overrides fall back to the old defaults."""
        return hasattr(self.cls, name)

    # --- behaviour overrides -------------------------------------------------------------

    def operation(self, session: Any, meta: Mapping[str, Any], **options: Any) -> Operation:
        """``operation(session, meta, **options)``; absent or None means REGISTER_SYNC."""
        if not self.has("operation"):
            return Operation.REGISTER_SYNC
        value = self.cls.operation(session, meta, **options)
        if value is None:
            return Operation.REGISTER_SYNC
        return _member(Operation, value, self.filename, "operation")

    def delete_mode(self, meta: Mapping[str, Any]) -> DeleteMode:
        """``delete_mode(meta)``; absent (or None) means DO_NOT_DELETE."""
        if not self.has("delete_mode"):
            return DeleteMode.DO_NOT_DELETE
        value = self.cls.delete_mode(meta)
        if value is None:
            return DeleteMode.DO_NOT_DELETE
        return _member(DeleteMode, value, self.filename, "delete_mode")

    def to_resource(self, session: Any, meta: Mapping[str, Any], **options: Any) -> str | None:
        """``to_resource(session, meta, **options)``: the ``destRescName``, or None for the default."""
        if not self.has("to_resource"):
            return None
        return self.cls.to_resource(session, meta, **options)

    def target_path(self, session: Any, meta: Mapping[str, Any], **options: Any) -> str | None:
        """``target_path(session, meta, **options)``: the physical path to register, or None."""
        if not self.has("target_path"):
            return None
        return self.cls.target_path(session, meta, **options)

    def as_user(self, meta: Mapping[str, Any], **options: Any) -> tuple[str, str] | None:
        """``as_user(meta, **options)`` → ``(zone, user)`` to proxy as, or None when not defined."""
        if not self.has("as_user"):
            return None
        zone, user = self.cls.as_user(meta, **options)
        return zone, user

    # The old framework passes the class explicitly as the first argument of these (the
    # examples declare them as staticmethods taking ``hdlr_mod``), and ``logger`` is whatever
    # it had at hand: the log config dict for the three numeric ones, a logger for the job hooks.

    def max_retries(self, logger: Any, meta: Mapping[str, Any]) -> int:
        """``max_retries(cls, logger, meta)``, default 0; old callers pass the log *config* as logger."""
        return self._number("max_retries", int, 0, logger, meta)

    def timeout(self, logger: Any, meta: Mapping[str, Any]) -> float:
        """``timeout(cls, logger, meta)`` in seconds, default 3600; None or 0 is no limit."""
        return self._number("timeout", float, DEFAULT_TIMEOUT, logger, meta)

    def delay(self, logger: Any, meta: Mapping[str, Any], retries: int) -> float:
        """``delay(cls, logger, meta, retries)``: seconds before retry number ``retries`` (1-based), default 0."""
        return self._number("delay", float, 0, logger, meta, retries)

    def _number(self, method: str, kind: type, default: float, *args: Any) -> Any:
        """The override's answer as a finite ``kind`` (None is 0, as the old framework took
        it); anything else is a HandlerError naming the file, as for the other overrides: a
        "many" here was a ValueError traceback from the middle of the walk."""
        if not self.has(method):
            return default
        value = getattr(self.cls, method)(self.cls, *args)
        try:
            number = kind(value or 0)
            if math.isfinite(number):
                return number
        except (TypeError, ValueError, OverflowError):
            pass
        raise HandlerError(f"{self.filename}: {method}() returned {reprlib.repr(value)}, not a number")

    def pre_job(self, logger: Any, meta: Mapping[str, Any]) -> None:
        """``pre_job(cls, logger, meta)``, once before the walk starts."""
        if self.has("pre_job"):
            self.cls.pre_job(self.cls, logger, meta)

    def post_job(self, logger: Any, meta: Mapping[str, Any]) -> None:
        """``post_job(cls, logger, meta)``, once after the last entry."""
        if self.has("post_job"):
            self.cls.post_job(self.cls, logger, meta)

    @property
    def has_character_map(self) -> bool:
        """As the old tool decides it: a ``character_map`` attribute that is not None.

        The old tool also switches delete modes off when this is true.
        """
        return getattr(self.cls, "character_map", None) is not None

    def character_map(self) -> CharacterMap | None:
        """The validated map from ``character_map()`` (called once, then cached), or None."""
        if not self.has_character_map:
            return None
        if self._char_map is None:
            try:
                spec = self.cls.character_map()
            except (Exception, SystemExit) as err:  # takes no session: any failure is the handler's own
                raise HandlerError(
                    f"{self.filename}: character_map() raised {type(err).__name__}: {err}") from None
            try:
                self._char_map = CharacterMap(spec)
            except CharacterMapError as err:
                raise HandlerError(f"{self.filename}: {err}") from None
        return self._char_map

    def guarded(self, hook: str, call: Callable[[], Any],
                passthrough: Callable[[BaseException], bool] | None = None) -> Any:
        """``call()``, with whatever handler code raises turned into one HandlerError line:
        ``FILE: HOOK() raised TYPE: MESSAGE``.  Where a failure stops the whole job (rank 0
        preparing the target, ``pre_job``), a traceback and an MPI abort would say less.
        The hook named is the outermost function of the handler file on the traceback (the
        override or event hook called), else ``hook``.  Exceptions ``passthrough`` accepts
        (iRODS errors and lost connections, which the connection layer reports or retries,
        whether our own operation inside an ``on_*`` wrapper or a hook's session call raised
        them) propagate unchanged."""
        try:
            return call()
        except HandlerError:
            raise
        except (Exception, SystemExit) as err:  # noqa: BLE001 - any error of the user's code
            if passthrough is not None and passthrough(err):
                raise
            name = next((frame.f_code.co_name for frame, _ in traceback.walk_tb(err.__traceback__)
                         if frame.f_code.co_filename == self.filename and not frame.f_code.co_name.startswith("<")),
                        hook)
            raise HandlerError(f"{self.filename}: {name}() raised {type(err).__name__}: {err}") from None

    # --- events --------------------------------------------------------------------------

    def run_event(self, event_name: str, func: Callable[..., Any], logger: Any, session: Any,
                  meta: Mapping[str, Any], *args: Any, **options: Any) -> None:
        """Run ``func`` as the operation of ``event_name`` (e.g. "data_obj_create"), with its hooks.

        Goes through the class's ``on_<event>`` when it has one, so handlers that override
        ``on_*`` keep working; a class without it (not derived from ``Core``) gets the bare
        operation, as in the old framework. Hooks receive ``(hdlr_mod, logger, session, meta,
        *args, **options)``, without ``logger`` for the two delete events; ``func`` receives
        the same minus ``hdlr_mod``. An exception from a pre hook or ``func`` propagates, and
        then nothing after it runs.
        """
        if event_name not in EVENTS:
            raise ValueError(f"unknown event {event_name!r}; expected one of {', '.join(EVENTS)}")
        lead = (session, meta) if event_name in DELETE_EVENTS else (logger, session, meta)

        def operation(hdlr_mod: Any, *call_args: Any, **call_options: Any) -> None:
            func(*call_args, **call_options)

        wrapper = getattr(self.cls, "on_" + event_name, None)
        if wrapper is None:
            operation(self.module, *lead, *args, **options)
        else:
            wrapper(operation, self.module, *lead, *args, **options)


def _exec_module(text: str, filename: str) -> types.ModuleType:
    """Execute the handler text as a fresh module registered in ``sys.modules``.

    Registered because code in the handler may look itself up there (dataclasses, pickling),
    as it could when the old framework imported it from ``/tmp``. The file name is kept in the
    code object so tracebacks point at the user's file.
    """
    install_compat_modules()
    name = f"hpcingest_event_handler_{next(_module_numbers)}"
    module = types.ModuleType(name)
    module.__file__ = filename
    code = compile(text, filename, "exec")
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_handler(text: str | None, filename: str | None) -> EventHandler:
    """Load handler text shipped from the launching rank; None means the built-in default.

    Errors surface as raised by the handler; use :func:`validate_handler` at job start to turn
    them into one-line messages.
    """
    if text is None:
        text, filename = DEFAULT_HANDLER_TEXT, DEFAULT_HANDLER_NAME
    filename = filename or "<event handler>"
    module = _exec_module(text, filename)
    cls = getattr(module, HANDLER_CLASS, None)
    if not isinstance(cls, type):
        raise HandlerError(f"{filename}: defines no class named '{HANDLER_CLASS}'")
    return EventHandler(module, cls, filename)


#: A job-level ``meta`` like the one a path task sees, for probing ``operation``/``delete_mode``.
PROBE_META: dict[str, Any] = {
    "job_name": "validate", "task": "filesystem_sync_path", "entry_type": "dir",
    "path": "/", "root": "/", "target": "/", "root_target_collection": "/", "src_path": "/",
    "config": {"log": {"filename": None, "when": None, "interval": None, "level": None},
               "profile": {"filename": None, "when": None, "interval": None, "level": None},
               "redis": {"host": "localhost", "port": 6379, "db": 0}},
    "initial_ingest": False, "ignore_cache": False, "files_per_task": 50,
    "exclude_file_type": [], "exclude_file_name": [], "exclude_directory_name": [],
}


def _missing_member(err: BaseException) -> str | None:
    """``Operation.FOO`` / ``DeleteMode.FOO`` / an unimported enum name, described; else None."""
    if isinstance(err, NameError) and getattr(err, "name", None) in ("Operation", "DeleteMode"):
        return f"uses {err.name} without importing it"
    if isinstance(err, AttributeError):
        owner = getattr(err, "obj", None)
        owner_name = getattr(owner, "__name__", None)
        if isinstance(owner, type) and owner_name in ("Operation", "DeleteMode"):
            return f"refers to {owner_name}.{err.name}, which does not exist"
    return None


def _probe(handler: EventHandler, method: str, call: Callable[[], Any]) -> Any:
    """Call an override once; only errors that cannot depend on the session are fatal."""
    try:
        return call()
    except HandlerError:
        raise
    except (Exception, SystemExit) as err:  # real handlers may need a session or meta keys we lack
        problem = _missing_member(err)
        if problem is not None:
            raise HandlerError(f"{handler.filename}: {method}() {problem}") from None
        return None


def _describe_load_error(err: BaseException, filename: str) -> str:
    if isinstance(err, SyntaxError):
        return f"{filename}: syntax error at line {err.lineno}: {err.msg}"
    if isinstance(err, ImportError):
        return f"{filename}: import failed: {err}"
    return f"{filename}: raised {type(err).__name__} while loading: {err}"


def validate_handler(text: str | None, filename: str | None,
                     meta: Mapping[str, Any] | None = None) -> EventHandler:
    """Load and check a handler at job start, so a broken file fails once, clearly, not per entry.

    Checks: the file imports; it defines an ``event_handler`` class; its ``character_map()``
    is valid; ``operation``/``delete_mode`` do not name enum members that do not exist (probed
    with ``session=None`` and ``meta``, default :data:`PROBE_META`); when both probes
    succeed, the pair is compatible; ``max_retries``/``timeout``/``delay`` answer numbers.
    Raises :class:`HandlerError`.
    """
    shown = filename or DEFAULT_HANDLER_NAME
    try:
        handler = load_handler(text, filename)
    except HandlerError:
        raise
    except (Exception, SystemExit) as err:  # sys.exit() on rank 0 alone would leave the other ranks waiting
        raise HandlerError(_describe_load_error(err, shown)) from None
    handler.character_map()
    probe = dict(PROBE_META if meta is None else meta)
    operation = _probe(handler, "operation", lambda: handler.operation(None, probe))
    delete_mode = _probe(handler, "delete_mode", lambda: handler.delete_mode(probe))
    log_config = probe["config"]["log"]
    _probe(handler, "max_retries", lambda: handler.max_retries(log_config, probe))
    _probe(handler, "timeout", lambda: handler.timeout(log_config, probe))
    _probe(handler, "delay", lambda: handler.delay(log_config, probe, 1))
    if operation is not None and delete_mode is not None \
            and delete_mode not in compatible_delete_modes(operation):
        raise HandlerError(
            f"{handler.filename}: operation {operation.name} and delete_mode {delete_mode.name} "
            f"are incompatible (allowed with {operation.name}: "
            f"{', '.join(sorted(m.name for m in compatible_delete_modes(operation)))})")
    return handler
