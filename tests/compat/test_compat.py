"""The compat modules: Core's hook protocol, the enums and their compatibility, the shims."""

from __future__ import annotations

import importlib
import json
import sys
import types

import pytest

from hpcingest import compat
from hpcingest.compat import (
    COMPAT_PACKAGE,
    Core,
    DeleteMode,
    Operation,
    compatible_delete_modes,
    delete_mode_is_compatible_with_operation,
    get_sync_logger,
    install_compat_modules,
)
from hpcingest.compat.core import EVENTS
from hpcingest.compat.redis_utils import get_redis


def recording_handler(calls, fail=None):
    """A Core subclass whose pre/post hooks of every event record (name, args, options)."""
    def hook(name):
        def record(*args, **options):
            calls.append((name, args, options))
            if name == fail:
                raise RuntimeError(name)
        return staticmethod(record)

    names = {f"{when}_{event}": hook(f"{when}_{event}") for event in EVENTS for when in ("pre", "post")}
    return type("event_handler", (Core,), names)


@pytest.mark.parametrize("event", EVENTS)
def test_on_event_runs_pre_func_post_with_the_same_arguments(event):
    calls = []
    handler = recording_handler(calls)

    def func(*args, **options):
        calls.append(("func", args, options))

    getattr(handler, "on_" + event)(func, "mod", "logger", "session", {"m": 1}, "op", allow_redirect=False)
    expected_args = ("mod", "logger", "session", {"m": 1}, "op")
    assert calls == [(name, expected_args, {"allow_redirect": False})
                     for name in ("pre_" + event, "func", "post_" + event)]


def test_pre_hook_exception_stops_the_operation():
    calls = []
    handler = recording_handler(calls, fail="pre_data_obj_create")
    with pytest.raises(RuntimeError, match="pre_data_obj_create"):
        handler.on_data_obj_create(lambda *a, **k: calls.append("func"), "mod")
    assert [c[0] for c in calls] == ["pre_data_obj_create"]


def test_failed_operation_skips_the_post_hook():
    calls = []
    handler = recording_handler(calls)

    def func(*args, **options):
        raise OSError("disk")

    with pytest.raises(OSError):
        handler.on_coll_create(func, "mod")
    assert [c[0] for c in calls] == ["pre_coll_create"]


def test_hooks_cannot_change_the_options_the_operation_sees():
    seen = {}

    class event_handler(Core):
        @staticmethod
        def pre_data_obj_create(*args, **options):
            options["allow_redirect"] = True

    event_handler.on_data_obj_create(lambda *a, **options: seen.update(options), allow_redirect=False)
    assert seen == {"allow_redirect": False}


def test_missing_hooks_are_skipped():
    ran = []
    Core.on_coll_delete(lambda *a, **k: ran.append(a), "mod", "session", {})
    assert ran == [("mod", "session", {})]


def test_enum_values_are_the_old_ones():
    assert {m.name: m.value for m in Operation} == {
        "REGISTER_SYNC": 0, "REGISTER_AS_REPLICA_SYNC": 1, "PUT": 2, "PUT_SYNC": 3, "PUT_APPEND": 4, "NO_OP": 5}
    assert {m.name: m.value for m in DeleteMode} == {
        "DO_NOT_DELETE": 0, "UNREGISTER": 1, "TRASH": 2, "NO_TRASH": 3}


COMPATIBLE = {  # peer.md §3.1, from 0.7.0 utils.delete_mode_is_compatible_with_operation
    "NO_OP": {"DO_NOT_DELETE"},
    "REGISTER_SYNC": {"DO_NOT_DELETE", "UNREGISTER"},
    "REGISTER_AS_REPLICA_SYNC": {"DO_NOT_DELETE", "UNREGISTER"},
    "PUT": {"DO_NOT_DELETE"},
    "PUT_SYNC": {"DO_NOT_DELETE", "TRASH", "NO_TRASH"},
    "PUT_APPEND": {"DO_NOT_DELETE", "TRASH", "NO_TRASH"},
}


@pytest.mark.parametrize("operation", list(Operation))
@pytest.mark.parametrize("delete_mode", list(DeleteMode))
def test_compatibility_table(operation, delete_mode):
    expected = delete_mode.name in COMPATIBLE[operation.name]
    assert delete_mode_is_compatible_with_operation(delete_mode, operation) is expected
    assert (delete_mode in compatible_delete_modes(operation)) is expected


def test_compatibility_of_non_members_is_false():
    assert not delete_mode_is_compatible_with_operation(DeleteMode.DO_NOT_DELETE, None)


def test_install_registers_the_old_module_names():
    assert install_compat_modules() is True
    assert install_compat_modules() is True  # idempotent
    from irods_capability_automated_ingest.core import Core as OldCore
    from irods_capability_automated_ingest.utils import DeleteMode as OldDeleteMode, Operation as OldOperation
    from irods_capability_automated_ingest import redis_utils, sync_logging

    assert (OldCore, OldOperation, OldDeleteMode) == (Core, Operation, DeleteMode)
    assert sync_logging.get_sync_logger is get_sync_logger
    assert redis_utils.get_redis is get_redis
    assert importlib.import_module(COMPAT_PACKAGE + ".utils").delete_mode_is_compatible_with_operation


def test_install_defers_to_an_importable_real_package(monkeypatch):
    for name in [m for m in sys.modules if m.startswith(COMPAT_PACKAGE)]:
        monkeypatch.delitem(sys.modules, name)
    real = {name: types.ModuleType(name) for name in
            (COMPAT_PACKAGE, COMPAT_PACKAGE + ".core", COMPAT_PACKAGE + ".utils")}
    for name, module in real.items():
        monkeypatch.setitem(sys.modules, name, module)
    assert install_compat_modules() is False
    assert sys.modules[COMPAT_PACKAGE + ".core"] is real[COMPAT_PACKAGE + ".core"]


def test_install_replaces_a_half_importable_real_package(monkeypatch):
    for name in [m for m in sys.modules if m.startswith(COMPAT_PACKAGE)]:
        monkeypatch.delitem(sys.modules, name)
    broken = types.ModuleType(COMPAT_PACKAGE)
    broken.__path__ = []  # a package whose submodules cannot be found
    monkeypatch.setitem(sys.modules, COMPAT_PACKAGE, broken)
    assert install_compat_modules() is True
    assert sys.modules[COMPAT_PACKAGE] is compat


def test_sync_logger_accepts_structlog_calls_and_writes_json(tmp_path):
    config = {"filename": str(tmp_path / "log.jsonl"), "when": None, "interval": None, "level": "INFO"}
    logger = get_sync_logger(config)
    assert get_sync_logger(dict(config)) is logger
    logger.info("succeeded", task="sync_file", path="/src/a")
    logger.debug("dropped", x=1)
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(lines) == 1
    assert {k: lines[0][k] for k in ("event", "task", "path", "level")} == {
        "event": "succeeded", "task": "sync_file", "path": "/src/a", "level": "info"}
    assert lines[0]["logger"].startswith("irods_sync/") and "@timestamp" in lines[0]


def test_local_redis_behaves_like_the_commands_retry_py_uses():
    r = get_redis({"redis": {"host": "x", "port": 1, "db": 0}})
    key = "failures:/test/local-redis"
    r.delete(key)
    assert r.get(key) is None
    assert r.incr(key) == 1
    assert r.get(key) == b"1"
    r.set(key, 5)
    assert r.decr(key) == 4 and r.exists(key) == 1
