# Does not inherit Core: the old framework then runs the bare operation and never the hooks.
from irods_capability_automated_ingest.utils import Operation


class event_handler(object):
    @staticmethod
    def operation(session, meta, **options):
        return Operation.PUT_SYNC

    @staticmethod
    def pre_data_obj_create(hdlr_mod, logger, session, meta, *args, **options):
        raise AssertionError("hooks must not run without Core.on_data_obj_create")
