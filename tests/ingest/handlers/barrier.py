"""Holds each process that loads it until $BARRIER_COUNT processes have (files in $BARRIER_DIR),
so that separately launched runs prepare their jobs at the same instant; the default operation."""

import os
import time

from irods_capability_automated_ingest.core import Core

_arrived = os.path.join(os.environ["BARRIER_DIR"], str(os.getpid()))
if not os.path.exists(_arrived):
    open(_arrived, "w").close()
    while len(os.listdir(os.environ["BARRIER_DIR"])) < int(os.environ.get("BARRIER_COUNT", "2")):
        time.sleep(0.001)


class event_handler(Core):
    pass
