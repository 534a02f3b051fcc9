# Logs every create/modify hook through the structlog-style logger it is given.
from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation


def log_hook(logger, name, meta):
    logger.info(name + ":[" + meta["target"] + "]", hook=name)


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return Operation.REGISTER_SYNC

    @staticmethod
    def pre_data_obj_create(hdlr_mod, logger, session, meta, *args, **options):
        log_hook(logger, "pre_data_obj_create", meta)

    @staticmethod
    def post_data_obj_create(hdlr_mod, logger, session, meta, *args, **options):
        log_hook(logger, "post_data_obj_create", meta)

    @staticmethod
    def pre_coll_create(hdlr_mod, logger, session, meta, *args, **options):
        log_hook(logger, "pre_coll_create", meta)

    @staticmethod
    def post_coll_create(hdlr_mod, logger, session, meta, *args, **options):
        log_hook(logger, "post_coll_create", meta)
