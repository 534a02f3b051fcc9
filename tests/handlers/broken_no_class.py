from irods_capability_automated_ingest.core import Core


class EventHandler(Core):
    pass
