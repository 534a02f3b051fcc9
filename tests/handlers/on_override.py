# Overrides on_data_obj_create: the only way the old API lets a handler change the options
# the operation receives (a pre hook gets its own copy).
from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return Operation.PUT

    @classmethod
    def on_data_obj_create(cls, func, *args, **options):
        options["allow_redirect"] = True
        meta = args[3]
        meta["calls"].append("override")
        super(event_handler, cls).on_data_obj_create(func, *args, **options)

    @staticmethod
    def pre_data_obj_create(hdlr_mod, logger, session, meta, *args, **options):
        options["allow_redirect"] = "changed by pre hook"
