"""max_retries, timeout and delay as the old framework calls them: ``logger`` is the log
*configuration* (meta["config"]["log"], a dict), which a handler may hand to get_sync_logger.
Every entry's first attempt fails in its pre hook, so the retry allowance is what lets it land."""

from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.redis_utils import get_redis
from irods_capability_automated_ingest.sync_logging import get_sync_logger


def _config(logger):
    if not isinstance(logger, dict) or set(logger) != {"filename", "when", "interval", "level"}:
        raise TypeError(f"expected the log configuration, got {logger!r}")
    return logger


class event_handler(Core):
    @staticmethod
    def max_retries(hdlr_mod, logger, meta):
        get_sync_logger(_config(logger)).info("max_retries_asked", level=logger["level"])
        return 2

    @staticmethod
    def timeout(hdlr_mod, logger, meta):
        _config(logger)
        return 600

    @staticmethod
    def delay(hdlr_mod, logger, meta, retries):
        _config(logger)
        return 0

    @staticmethod
    def pre_data_obj_create(hdlr_mod, logger, session, meta, *args, **options):
        if get_redis(meta["config"]).incr("attempts:" + meta["path"]) == 1:
            raise RuntimeError("the first attempt fails")
