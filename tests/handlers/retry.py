# Fails the first attempt for every path, then succeeds (the old examples/retry.py).
from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation
from irods_capability_automated_ingest.redis_utils import get_redis


class event_handler(Core):
    @staticmethod
    def max_retries(hdlr_mod, logger, meta):
        return 3

    @staticmethod
    def delay(hdlr_mod, logger, meta, retries):
        return 0

    @staticmethod
    def operation(session, meta, **options):
        return Operation.NO_OP

    @staticmethod
    def pre_data_obj_create(hdlr_mod, logger, session, meta, *args, **options):
        r = get_redis(meta["config"])
        key = "failures:" + meta["path"]
        failures = r.get(key)
        if failures is None:
            failures = 0
        r.incr(key)
        if failures == 0:
            raise RuntimeError("no failures")
