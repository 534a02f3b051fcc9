from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import DeleteMode, Operation


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return Operation.PUT

    @staticmethod
    def delete_mode(meta):
        return DeleteMode.TRASH
