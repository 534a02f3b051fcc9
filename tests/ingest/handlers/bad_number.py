"""One hook (HOOK: max_retries, timeout or delay) answers BAD_VALUE for the entry named BAD_FOR
and 0 elsewhere (so the check at job start, which probes with meta of its own, passes); the
entry named FAIL_FIRST fails its first attempt, so delay is asked for."""

import os

from irods_capability_automated_ingest.core import Core

_tried = set()


def _answer(hook, meta):
    return os.environ["BAD_VALUE"] if os.environ["HOOK"] == hook and meta["path"].endswith(os.environ["BAD_FOR"]) else 0


class event_handler(Core):
    @staticmethod
    def max_retries(hdlr_mod, logger, meta):
        return _answer("max_retries", meta) or 1

    @staticmethod
    def timeout(hdlr_mod, logger, meta):
        return _answer("timeout", meta)

    @staticmethod
    def delay(hdlr_mod, logger, meta, retries):
        return _answer("delay", meta)

    @staticmethod
    def pre_data_obj_create(hdlr_mod, logger, session, meta, *args, **options):
        if meta["path"].endswith(os.environ["BAD_FOR"]) and meta["path"] not in _tried:
            _tried.add(meta["path"])
            raise RuntimeError("the first attempt fails")
