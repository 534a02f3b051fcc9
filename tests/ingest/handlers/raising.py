"""Raises $RAISE_ERROR (a builtin exception name, default ValueError) from the hook named by
$RAISE_IN, only for the root target collection ($RAISE_ROOT); the default operation otherwise."""

import builtins
import os

from irods_capability_automated_ingest.core import Core


def _maybe_raise(hook, meta=None):
    if os.environ.get("RAISE_IN") == hook and (meta is None or meta.get("target") == os.environ["RAISE_ROOT"]):
        raise getattr(builtins, os.environ.get("RAISE_ERROR", "ValueError"))(f"{hook} refuses the root")


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        _maybe_raise("operation", meta)

    @staticmethod
    def as_user(meta, **options):
        _maybe_raise("as_user")
        return None, None  # no proxying

    @staticmethod
    def pre_coll_create(hdlr_mod, logger, session, meta, **options):
        _maybe_raise("pre_coll_create", meta)

    @staticmethod
    def pre_coll_modify(hdlr_mod, logger, session, meta, **options):
        _maybe_raise("pre_coll_modify", meta)

    @staticmethod
    def pre_job(hdlr_mod, logger, meta):
        _maybe_raise("pre_job")
