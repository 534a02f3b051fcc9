"""Modules loaded on first use.

On a rank that never talks to iRODS (an unchanged rescan, or ranks beyond
``--irods_connections``) python-irodsclient and the modules built on it are never needed,
and importing them costs tens of milliseconds of CPU per rank: at thousands of ranks
starting at once on a shared filesystem, imports are a known start-up bottleneck.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def lazy_module(name: str) -> types.ModuleType:
    """``name`` as a module object that runs its code on first attribute access.

    Its parent packages are imported at once, so they must be cheap."""
    found = sys.modules.get(name)
    if found is not None:
        return found
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
