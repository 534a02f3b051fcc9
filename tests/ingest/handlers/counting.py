"""Old-style handler: every hook appends one line to $HOOK_LOG; the operation comes from $OPERATION,
the delete mode from $DELETE_MODE."""

import os

from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import DeleteMode, Operation


def _log(hook, meta):
    with open(os.environ["HOOK_LOG"], "a") as f:
        f.write(f"{hook}\t{meta['target']}\n")


def _entry_hook(hook):
    return staticmethod(lambda hdlr_mod, logger, session, meta, *args, **options: _log(hook, meta))


def _delete_hook(hook):
    return staticmethod(lambda hdlr_mod, session, meta, *args, **options: _log(hook, meta))


def _job_hook(hook):
    return staticmethod(lambda hdlr_mod, logger, meta: _log(hook, meta))


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return getattr(Operation, os.environ.get("OPERATION", "REGISTER_SYNC"))

    @staticmethod
    def delete_mode(meta):
        return getattr(DeleteMode, os.environ.get("DELETE_MODE", "DO_NOT_DELETE"))

    @staticmethod
    def to_resource(session, meta, **options):
        return os.environ.get("TO_RESOURCE") or None

    pre_job = _job_hook("pre_job")
    post_job = _job_hook("post_job")


for _when in ("pre", "post"):
    for _event in ("data_obj_create", "data_obj_modify", "coll_create", "coll_modify"):
        setattr(event_handler, f"{_when}_{_event}", _entry_hook(f"{_when}_{_event}"))
    for _event in ("data_obj_delete", "coll_delete"):
        setattr(event_handler, f"{_when}_{_event}", _delete_hook(f"{_when}_{_event}"))
