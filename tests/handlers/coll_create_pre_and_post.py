# Each hook adds an AVU (hook name, created collection, operation) to the parent collection.
from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation

OPERATION = Operation.REGISTER_SYNC


def annotate_parent(session, hook, meta):
    created = meta["target"]
    parent = "/".join(created.split("/")[:-1])
    session.collections.get(parent).metadata.add(hook, created, OPERATION.name)


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return OPERATION

    @staticmethod
    def pre_coll_create(hdlr_mod, logger, session, meta, *args, **options):
        annotate_parent(session, "pre_coll_create", meta)

    @staticmethod
    def post_coll_create(hdlr_mod, logger, session, meta, *args, **options):
        annotate_parent(session, "post_coll_create", meta)
