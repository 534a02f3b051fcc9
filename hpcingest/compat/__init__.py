"""hpcingest's own stand-ins for the modules old event-handler files import.

Handler files written for irods_capability_automated_ingest 0.7.0 start with
``from irods_capability_automated_ingest.core import Core`` and
``from irods_capability_automated_ingest.utils import Operation``. That package drags in
Celery and Redis, so hpcingest does not depend on it; ``install_compat_modules()`` makes
those import lines resolve to the modules here instead, but only when the real package
cannot be imported (a checkout run beside an installed old framework keeps its classes; the
handler wrapper normalises its enum members by name).  An installed hpcingest ships a
package of the old name (``irods_capability_automated_ingest/``, see
:func:`serve_old_package_name`), so those imports, and ``python -m
irods_capability_automated_ingest.irods_sync`` (:mod:`hpcingest.compat.irods_sync`), work
without this call too.
"""

from __future__ import annotations

import importlib
import sys

from hpcingest.compat import core, redis_utils, sync_logging, utils
from hpcingest.compat.core import DELETE_EVENTS, EVENTS, Core
from hpcingest.compat.sync_logging import get_sync_logger
from hpcingest.compat.utils import (
    DeleteMode,
    Operation,
    compatible_delete_modes,
    delete_mode_is_compatible_with_operation,
)

__all__ = [
    "Core", "EVENTS", "DELETE_EVENTS", "Operation", "DeleteMode", "compatible_delete_modes",
    "delete_mode_is_compatible_with_operation", "get_sync_logger", "install_compat_modules",
    "serve_old_package_name", "COMPAT_PACKAGE",
]

#: The old package name, as handler files spell it.
COMPAT_PACKAGE = "irods_capability_automated_ingest"

# Every module of the old package that a handler file can usefully import (the examples
# import core, utils and redis_utils; the README points at sync_logging).
_SUBMODULES = {"core": core, "utils": utils, "sync_logging": sync_logging, "redis_utils": redis_utils}


def _installed() -> bool:
    return sys.modules.get(COMPAT_PACKAGE) is sys.modules[__name__]


def _real_package_importable() -> bool:
    """Try the real package; on failure remove whatever part of it got half imported."""
    try:
        for name in ("core", "utils"):
            importlib.import_module(COMPAT_PACKAGE + "." + name)
    except Exception:  # an installed-but-broken package (e.g. no redis) counts as absent
        for name in [m for m in sys.modules if m == COMPAT_PACKAGE or m.startswith(COMPAT_PACKAGE + ".")]:
            del sys.modules[name]
        return False
    return True


def serve_old_package_name() -> None:
    """Register this package and its modules under the old package's names.

    ``irods_sync`` is left to be found through this package's ``__path__``: ``python -m``
    refuses to run a module that is already imported."""
    sys.modules[COMPAT_PACKAGE] = sys.modules[__name__]
    for name, module in _SUBMODULES.items():
        sys.modules[COMPAT_PACKAGE + "." + name] = module


def install_compat_modules() -> bool:
    """Make ``irods_capability_automated_ingest[.core|.utils|.sync_logging|.redis_utils]`` importable.

    Returns True when hpcingest's modules serve those names (hpcingest installs a package of
    that name which makes them so), False when the real package does. Idempotent; call it
    before executing any handler text.
    """
    if _installed():
        return True
    if _real_package_importable():
        return _installed()
    serve_old_package_name()
    return True
