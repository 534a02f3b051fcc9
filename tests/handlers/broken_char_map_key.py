from irods_capability_automated_ingest.core import Core


class event_handler(Core):
    @staticmethod
    def character_map():
        return {"ab": "_"}
