"""What several benchmark scripts need: bytecode for the package, an old-style event-handler file."""

from __future__ import annotations

import compileall
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


def precompile() -> None:
    """Write hpcingest's bytecode before timing anything.

    A pip-installed package is byte-compiled at install time; an editable checkout run with
    PYTHONDONTWRITEBYTECODE (as in some sandboxes and CI images) would otherwise compile ~50
    modules from source in every rank of every run, about 0.1 s of CPU per rank that no real
    installation pays.  (Python reads existing .pyc files whatever that variable says.)"""
    package = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hpcingest")
    compileall.compile_dir(package, quiet=1)
