"""Loading handler files written for the old framework and calling them its way."""

from __future__ import annotations

import json
import re
import sys
import traceback
import types
from pathlib import Path

import pytest

from hpcingest.compat import DeleteMode, Operation, get_sync_logger
from hpcingest.handler import (
    DEFAULT_TIMEOUT,
    EventHandler,
    HandlerError,
    load_handler,
    validate_handler,
)

HANDLERS = Path(__file__).parent / "handlers"
LOG_CONFIG = {"filename": None, "when": None, "interval": None, "level": None}


def handler_file(name: str) -> tuple[str, str]:
    path = HANDLERS / f"{name}.py"
    return path.read_text(), str(path)


def load(name: str) -> EventHandler:
    return load_handler(*handler_file(name))


def make_meta(**extra):
    return {"path": "/src/a.txt", "target": "/tempZone/home/rods/t/a.txt", "root": "/src",
            "job_name": "job", "config": {"log": LOG_CONFIG}, "calls": [], **extra}


@pytest.mark.parametrize("name,operation", [
    ("register", Operation.REGISTER_SYNC), ("put", Operation.PUT), ("sync", Operation.PUT_SYNC),
    ("append", Operation.PUT_APPEND), ("no_op", Operation.NO_OP),
    ("replica_with_resc_name", Operation.REGISTER_AS_REPLICA_SYNC),
    ("register_using_char_map", Operation.REGISTER_SYNC), ("metadata", Operation.REGISTER_SYNC),
    ("retry", Operation.NO_OP), ("timeout", Operation.NO_OP), ("pre_job", Operation.NO_OP),
    ("post_job", Operation.NO_OP), ("coll_create_pre_and_post", Operation.REGISTER_SYNC),
    ("coll_modify_pre_and_post", Operation.REGISTER_SYNC),
    ("data_obj_create_pre_and_post", Operation.REGISTER_SYNC),
    ("data_obj_modify_pre_and_post", Operation.REGISTER_SYNC),
    ("register_with_peps", Operation.REGISTER_SYNC), ("needs_session", None),
])
def test_example_handlers_validate(name, operation):
    handler = validate_handler(*handler_file(name))
    assert handler.cls.__name__ == "event_handler"
    if operation is not None:
        assert handler.operation(None, make_meta()) is operation
        assert handler.delete_mode(make_meta()) is DeleteMode.DO_NOT_DELETE


@pytest.mark.parametrize("text", [None, "from irods_capability_automated_ingest.core import Core\n"
                                        "class event_handler(Core):\n    pass\n"])
def test_defaults(text):
    handler = validate_handler(text, "empty.py" if text else None)
    meta = make_meta()
    assert handler.operation(None, meta) is Operation.REGISTER_SYNC
    assert handler.delete_mode(meta) is DeleteMode.DO_NOT_DELETE
    assert handler.to_resource(None, meta) is None
    assert handler.target_path(None, meta) is None
    assert handler.as_user(meta) is None
    assert (handler.max_retries(LOG_CONFIG, meta), handler.timeout(LOG_CONFIG, meta),
            handler.delay(LOG_CONFIG, meta, 1)) == (0, DEFAULT_TIMEOUT, 0)
    assert handler.character_map() is None and not handler.has_character_map
    handler.pre_job(None, meta)
    handler.post_job(None, meta)
    assert meta["calls"] == []


def test_operation_returning_none_means_register_sync():
    handler = load_handler("class event_handler:\n    operation = staticmethod(lambda s, m, **o: None)\n", "n.py")
    assert handler.operation(None, {}) is Operation.REGISTER_SYNC


def test_overrides_get_the_old_call_forms():
    handler = load("needs_session")
    meta = make_meta()
    assert handler.as_user(meta, allow_redirect=False) == ("tempZone", "alice")
    assert handler.target_path(None, meta) == "/mnt/server/src/a.txt"
    assert handler.delete_mode(make_meta(path="/scratch/x")) is DeleteMode.TRASH
    assert load("replica_with_resc_name").to_resource(None, meta) == "regiResc2a"


def test_job_level_overrides_receive_the_class_first():
    handler = load("record_hooks")
    meta = make_meta()
    assert handler.max_retries(LOG_CONFIG, meta) == 7
    assert handler.timeout(LOG_CONFIG, meta) == 60
    assert handler.delay(LOG_CONFIG, meta, 2) == 5
    logger = get_sync_logger(LOG_CONFIG)
    handler.pre_job(logger, meta)
    handler.post_job(logger, meta)
    assert meta["calls"] == [
        ("max_retries", handler.cls, LOG_CONFIG, ()), ("timeout", handler.cls, LOG_CONFIG, ()),
        ("delay", handler.cls, LOG_CONFIG, (2,)), ("pre_job", handler.cls, logger, ()),
        ("post_job", handler.cls, logger, ())]


@pytest.mark.parametrize("event", ["data_obj_create", "data_obj_modify", "coll_create", "coll_modify"])
def test_hooks_receive_the_module_logger_session_meta_and_extra_args(event):
    handler = load("record_hooks")
    meta, logger, session = make_meta(), object(), object()
    done = []

    def operation(*args, **options):
        done.append((args, options))
        assert [c[0] for c in meta["calls"]] == ["pre_" + event]

    handler.run_event(event, operation, logger, session, meta, Operation.PUT_SYNC, allow_redirect=False)
    args = (logger, session, meta, Operation.PUT_SYNC)
    assert done == [(args, {"allow_redirect": False})]
    assert meta["calls"] == [(f"{when}_{event}", handler.module, args, {"allow_redirect": False})
                             for when in ("pre", "post")]
    assert isinstance(handler.module, types.ModuleType)


@pytest.mark.parametrize("event", ["data_obj_delete", "coll_delete"])
def test_delete_hooks_get_no_logger(event):
    handler = load("record_hooks")
    meta, session = make_meta(), object()
    done = []
    handler.run_event(event, lambda *a, **o: done.append(a), "logger", session, meta)
    assert done == [(session, meta)]
    assert [(c[0], c[2]) for c in meta["calls"]] == [
        ("pre_" + event, (session, meta)), ("post_" + event, (session, meta))]


def test_pre_hook_failure_stops_the_operation_and_retry_succeeds():
    handler = load("retry")
    meta = make_meta(path="/src/retry-me")
    done = []
    assert handler.max_retries(LOG_CONFIG, meta) == 3 and handler.delay(LOG_CONFIG, meta, 1) == 0
    with pytest.raises(RuntimeError, match="no failures"):
        handler.run_event("data_obj_create", lambda *a, **o: done.append(1), None, None, meta)
    assert done == []
    handler.run_event("data_obj_create", lambda *a, **o: done.append(1), None, None, meta)
    assert done == [1]


def test_timeout_override():
    handler = load("timeout")
    assert handler.timeout(LOG_CONFIG, make_meta()) == 1
    handler.run_event("data_obj_create", lambda *a, **o: None, None, None, make_meta(sleep=0))


def test_job_hooks_write_their_markers(tmp_path):
    marker = tmp_path / "a"
    meta = make_meta(job_marker=str(marker))
    load("pre_job").pre_job(None, meta)
    load("post_job").post_job(None, meta)
    assert marker.read_text() == "pre_jobpost_job"


def test_overridden_on_event_is_used_and_may_change_options():
    handler = load("on_override")
    meta = make_meta()
    seen = []
    handler.run_event("data_obj_create", lambda *a, **o: seen.append(o), None, None, meta, allow_redirect=False)
    assert meta["calls"] == ["override"]
    assert seen == [{"allow_redirect": True}]


def test_class_without_core_gets_the_bare_operation():
    handler = load("not_core")
    seen = []
    handler.run_event("data_obj_create", lambda *a, **o: seen.append(a), "logger", None, make_meta())
    assert len(seen) == 1


def test_hooks_log_through_a_structlog_style_logger(tmp_path):
    config = {"filename": str(tmp_path / "peps.log"), "when": None, "interval": None, "level": "INFO"}
    handler = load("register_with_peps")
    meta = make_meta()
    handler.run_event("coll_create", lambda *a, **o: None, get_sync_logger(config), None, meta)
    events = [json.loads(line)["event"] for line in (tmp_path / "peps.log").read_text().splitlines()]
    assert events == ["pre_coll_create:[/tempZone/home/rods/t/a.txt]", "post_coll_create:[/tempZone/home/rods/t/a.txt]"]


def test_character_map_from_the_example():
    char_map = load("register_using_char_map").character_map()
    # 0.7.0 output for this map and path
    assert char_map.translate_path("/tempZone/home/rods/dir/test-file~with@5!non.alphas") == \
        "/tempZone/home/rods/dir/test_file_with_5_non_alphas_iQRy064Rz5Y66"


def test_unknown_event_is_rejected():
    with pytest.raises(ValueError, match="unknown event"):
        load("register").run_event("data_obj_rename", print, None, None, {})


def test_enum_members_of_another_operation_class_are_matched_by_name():
    text = ("import enum\nclass Operation(enum.Enum):\n    PUT = 2\n"
            "class event_handler:\n    operation = staticmethod(lambda s, m, **o: Operation.PUT)\n")
    assert load_handler(text, "real_enum.py").operation(None, {}) is Operation.PUT


@pytest.mark.parametrize("body,message", [
    ("    operation = staticmethod(lambda s, m, **o: 'PUT')\n",
     r"operation\(\) returned 'PUT', not a member of Operation"),
    ("    @staticmethod\n    def character_map():\n        return MAP\n",
     r"character_map\(\) raised NameError: name 'MAP' is not defined"),
    # a number is asked for: "many" was a ValueError traceback from the middle of the walk
    ("    max_retries = staticmethod(lambda cls, logger, meta: 'many')\n",
     r"max_retries\(\) returned 'many', not a number"),
    ("    timeout = staticmethod(lambda cls, logger, meta: [60])\n", r"timeout\(\) returned \[60\], not a number"),
    ("    delay = staticmethod(lambda cls, logger, meta, retries: float('nan'))\n",
     r"delay\(\) returned nan, not a number"),
])
def test_inline_handler_errors(body, message):
    with pytest.raises(HandlerError, match=f"^inline.py: {message}$"):
        validate_handler("class event_handler:\n" + body, "inline.py")


def test_loading_needs_only_the_text_and_tracebacks_name_the_file():
    text, _ = handler_file("retry")
    handler = load_handler(text, "/nonexistent/site/retry.py")
    assert sys.modules[handler.module.__name__] is handler.module
    try:
        handler.run_event("data_obj_create", lambda *a, **o: None, None, None, make_meta(path="/tb/x"))
    except RuntimeError as err:
        frames = traceback.extract_tb(err.__traceback__)
        assert frames[-1].filename == "/nonexistent/site/retry.py"
    else:
        pytest.fail("retry.py must fail its first attempt")


def test_each_load_is_a_fresh_module():
    first, second = load("retry"), load("retry")
    assert first.module is not second.module and first.cls is not second.cls


@pytest.mark.parametrize("name,message", [
    ("broken_syntax", r"syntax error at line 6: expected ':'"),
    ("broken_import", r"import failed: No module named 'hpcingest_no_such_module_for_tests'"),
    ("broken_raises", r"raised KeyError while loading: 'missing'"),
    ("broken_no_class", r"defines no class named 'event_handler'"),
    ("broken_operation", r"operation\(\) refers to Operation.REGISTER, which does not exist"),
    ("broken_delete_mode", r"delete_mode\(\) refers to DeleteMode.DELETE, which does not exist"),
    ("broken_incompatible", r"operation PUT and delete_mode TRASH are incompatible \(allowed with PUT: DO_NOT_DELETE\)"),
    ("broken_char_map_key", r"character_map\(\) key 'ab' is not a single character"),
    ("broken_char_map_value", r"character_map\(\) value '__' for key '-' is not a single character"),
    ("broken_char_map_type", r"character_map\(\) must return a dict or an iterable of \(key, value\) pairs"),
])
def test_validation_messages(name, message):
    text, filename = handler_file(name)
    with pytest.raises(HandlerError) as info:
        validate_handler(text, filename)
    shown = str(info.value)
    assert "\n" not in shown
    assert shown.startswith(filename + ": ")
    assert re.search(message, shown), shown


def test_probing_errors_that_may_need_a_session_are_not_fatal():
    handler = validate_handler(*handler_file("needs_session"))
    with pytest.raises(AttributeError):
        handler.operation(None, make_meta())  # needs a real session, as at run time


def test_validation_uses_the_given_meta():
    text, filename = handler_file("needs_session")
    text = text.replace('session.collections.exists(meta["target"])', "False")  # now answers PUT without a session
    validate_handler(text, filename, make_meta(path="/home/x"))
    with pytest.raises(HandlerError, match="operation PUT and delete_mode TRASH are incompatible"):
        validate_handler(text, filename, make_meta(path="/scratch/x"))
