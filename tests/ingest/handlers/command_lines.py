"""The default operation; each process that runs operation() appends, once, every command line
`ps` shows at that moment to $COMMAND_LINES (what any user of the host could read)."""

import os
import subprocess

from irods_capability_automated_ingest.core import Core

_seen = []


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        if not _seen:
            _seen.append(True)
            listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
            with open(os.environ["COMMAND_LINES"], "a") as f:
                f.write(f"--- rank process {os.getpid()}\n{listing}")
