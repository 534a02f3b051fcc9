from irods_capability_automated_ingest.core import Core

SETTINGS = {}["missing"]


class event_handler(Core):
    pass
