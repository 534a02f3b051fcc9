"""Old-style handler: every hook appends one line to $HOOK_LOG; the operation comes from $OPERATION."""

import os

from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation


def _log(hook, meta):
    with open(os.environ["HOOK_LOG"], "a") as f:
        f.write(f"{hook}\t{meta['target']}\n")


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return getattr(Operation, os.environ.get("OPERATION", "REGISTER_SYNC"))

    @staticmethod
    def to_resource(session, meta, **options):
        return os.environ.get("TO_RESOURCE") or None

    @staticmethod
    def pre_data_obj_create(hdlr_mod, logger, session, meta, *args, **options):
        _log("pre_data_obj_create", meta)

    @staticmethod
    def post_data_obj_create(hdlr_mod, logger, session, meta, *args, **options):
        _log("post_data_obj_create", meta)

    @staticmethod
    def pre_data_obj_modify(hdlr_mod, logger, session, meta, *args, **options):
        _log("pre_data_obj_modify", meta)

    @staticmethod
    def post_data_obj_modify(hdlr_mod, logger, session, meta, *args, **options):
        _log("post_data_obj_modify", meta)

    @staticmethod
    def pre_coll_create(hdlr_mod, logger, session, meta, *args, **options):
        _log("pre_coll_create", meta)

    @staticmethod
    def post_coll_create(hdlr_mod, logger, session, meta, *args, **options):
        _log("post_coll_create", meta)

    @staticmethod
    def pre_coll_modify(hdlr_mod, logger, session, meta, *args, **options):
        _log("pre_coll_modify", meta)

    @staticmethod
    def post_coll_modify(hdlr_mod, logger, session, meta, *args, **options):
        _log("post_coll_modify", meta)

    @staticmethod
    def pre_job(hdlr_mod, logger, meta):
        _log("pre_job", meta)

    @staticmethod
    def post_job(hdlr_mod, logger, meta):
        _log("post_job", meta)
