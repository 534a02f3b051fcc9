from irods_capability_automated_ingest.core import Core


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options)
        return None
