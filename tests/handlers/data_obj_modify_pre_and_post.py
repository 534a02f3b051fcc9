# Each hook adds an AVU (hook name, data object path, operation) to the object's collection.
from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation

OPERATION = Operation.REGISTER_SYNC


def annotate_collection(session, hook, meta):
    data_object = meta["target"]
    collection = "/".join(data_object.split("/")[:-1])
    session.collections.get(collection).metadata.add(hook, data_object, OPERATION.name)


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return OPERATION

    @staticmethod
    def pre_data_obj_modify(hdlr_mod, logger, session, meta, *args, **options):
        annotate_collection(session, "pre_data_obj_modify", meta)

    @staticmethod
    def post_data_obj_modify(hdlr_mod, logger, session, meta, *args, **options):
        annotate_collection(session, "post_data_obj_modify", meta)
