"""The example handlers whose hooks write to iRODS, run through ``run_event`` against a real zone.

These hooks call the session (``collections.get(...).metadata.add``), so they need a zone: the
built-in one, or the real zone $IRODS_ENVIRONMENT_FILE points at. The operations passed to
``run_event`` stand in for the sink's (a put, a collection create) so the hooks see real objects.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from hpcingest.compat import get_sync_logger
from hpcingest.handler import EventHandler, load_handler

HANDLERS = Path(__file__).parent.parent / "handlers"
LOG_CONFIG = {"filename": None, "when": None, "interval": None, "level": None}
LOGGER = get_sync_logger(LOG_CONFIG)


@pytest.fixture
def session(zone):
    with zone.session() as sess:
        yield sess


@pytest.fixture
def collection(zone, session):
    path = f"{zone.home}/handler_{uuid.uuid4().hex[:12]}"
    session.collections.create(path)
    yield path
    session.collections.remove(path, recurse=True, force=True)


def example(name: str, operation: str = "REGISTER_SYNC") -> EventHandler:
    """Load an example, swapping its OPERATION constant as the old test suite does."""
    path = HANDLERS / f"{name}.py"
    text = path.read_text().replace("OPERATION = Operation.REGISTER_SYNC", f"OPERATION = Operation.{operation}")
    return load_handler(text, str(path))


def avus(session, collection):
    return sorted((m.name, m.value, m.units) for m in session.collections.get(collection).metadata.items())


def meta_for(target, path="/src/x"):
    return {"target": target, "path": path, "job_name": "hook_job", "config": {"log": LOG_CONFIG}}


def put(source):
    def operation(logger, session, meta, *args, **options):
        session.data_objects.put(source, meta["target"], **options)
    return operation


def create_collection(logger, session, meta, **options):
    session.collections.create(meta["target"])


def nothing(*args, **options):
    pass


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "file.txt"
    path.write_text("content")
    return str(path)


@pytest.mark.parametrize("operation", ["REGISTER_SYNC", "PUT_SYNC", "NO_OP"])
def test_coll_create_pre_and_post(session, collection, operation):
    handler = example("coll_create_pre_and_post", operation)
    assert handler.operation(session, {}).name == operation
    created = collection + "/sub"
    handler.run_event("coll_create", create_collection, LOGGER, session, meta_for(created))
    assert session.collections.exists(created)
    assert avus(session, collection) == [("post_coll_create", created, operation),
                                         ("pre_coll_create", created, operation)]


def test_coll_modify_pre_and_post(session, collection):
    handler = example("coll_modify_pre_and_post")
    handler.run_event("coll_modify", nothing, LOGGER, session, meta_for(collection))
    assert avus(session, collection) == [("post_coll_modify", "hook_job", "REGISTER_SYNC"),
                                         ("pre_coll_modify", "hook_job", "REGISTER_SYNC")]


@pytest.mark.parametrize("event", ["create", "modify"])
def test_data_obj_pre_and_post(session, collection, source, event):
    handler = example(f"data_obj_{event}_pre_and_post", "PUT")
    target = collection + "/file.txt"
    if event == "modify":
        session.data_objects.put(source, target)
    handler.run_event("data_obj_" + event, put(source), LOGGER, session, meta_for(target), force=True)
    assert avus(session, collection) == [(f"post_data_obj_{event}", target, "PUT"),
                                         (f"pre_data_obj_{event}", target, "PUT")]


def test_pre_hook_failure_leaves_no_collection(session, collection):
    handler = example("coll_create_pre_and_post")
    missing_parent = collection + "/no/such"  # the pre hook's collections.get(parent) fails
    with pytest.raises(Exception):
        handler.run_event("coll_create", create_collection, LOGGER, session, meta_for(missing_parent))
    assert not session.collections.exists(missing_parent)


def test_metadata_example_records_the_mode(session, collection, source):
    handler = example("metadata")
    target = collection + "/file.txt"
    meta = meta_for(target, source)
    handler.run_event("data_obj_create", put(source), LOGGER, session, meta)
    mode = lambda: [(m.name, m.value) for m in session.data_objects.get(target).metadata.items()]
    assert mode() == [("filesystem::mode", str(os.stat(source).st_mode))]
    os.chmod(source, 0o600)
    handler.run_event("data_obj_modify", nothing, LOGGER, session, meta)
    assert mode() == [("filesystem::mode", str(os.stat(source).st_mode))]
