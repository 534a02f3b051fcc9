"""The zone's iCAT: an sqlite database with the iRODS catalog tables the protocol exposes."""

from .records import Collection, Replica, Resource, User, now_ts
from .store import Catalog

__all__ = ["Catalog", "Collection", "Replica", "Resource", "User", "now_ts"]
