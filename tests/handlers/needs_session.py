# Valid: chooses the operation from the session, so probing with session=None fails harmlessly.
from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import DeleteMode, Operation


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        if session.collections.exists(meta["target"]):
            return Operation.PUT_SYNC
        return Operation.PUT

    @staticmethod
    def delete_mode(meta):
        return DeleteMode.TRASH if meta["path"].startswith("/scratch") else DeleteMode.DO_NOT_DELETE

    @staticmethod
    def as_user(meta, **options):
        return "tempZone", "alice"

    @staticmethod
    def to_resource(session, meta, **options):
        return session.default_resource

    @staticmethod
    def target_path(session, meta, **options):
        return "/mnt/server" + meta["path"]
