"""What several benchmark scripts need: an old-style event-handler file for one operation."""

from __future__ import annotations

import os

_HANDLER = """from irods_capability_automated_ingest.core import Core
from irods_capability_automated_ingest.utils import Operation


class event_handler(Core):
    @staticmethod
    def operation(session, meta, **options):
        return Operation.{operation}
"""


def handler_file(workdir: str, operation: str) -> str:
    """Write (or rewrite) ``<workdir>/<operation>_handler.py`` and return its path."""
    path = os.path.join(workdir, f"{operation.lower()}_handler.py")
    with open(path, "w") as f:
        f.write(_HANDLER.format(operation=operation))
    return path
