"""Resource hierarchies: which leaf a create lands on, which hierarchies a register accepts.

Mirrors iRODS's resolve_resource_hierarchy: writes that name a non-root member fail with
DIRECT_CHILD_ACCESS, registers accept a root (resolved down to a leaf) or a leaf (used with its
full hierarchy), and a middle member is a HIERARCHY_ERROR.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .. import errors
from ..errors import ZoneError
from .records import Resource

COORDINATING_TYPES = {"passthru", "random", "replication", "roundrobin", "compound", "load_balanced", "deferred"}


@dataclass
class ResourceTree:
    """An immutable snapshot of the resources; replaced wholesale when an admin changes them."""

    by_name: dict[str, Resource]
    by_id: dict[int, Resource] = field(init=False)
    children: dict[int, list[Resource]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {r.resc_id: r for r in self.by_name.values()}
        self.children = {r.resc_id: [] for r in self.by_name.values()}
        for resc in self.by_name.values():
            if resc.resc_parent:
                self.children.setdefault(int(resc.resc_parent), []).append(resc)
        for kids in self.children.values():
            kids.sort(key=lambda r: r.resc_name)

    def named(self, name: str) -> Resource:
        try:
            return self.by_name[name]
        except KeyError:
            raise ZoneError(errors.SYS_RESC_DOES_NOT_EXIST, f"resource [{name}] does not exist") from None

    def hierarchy(self, resc_id: int) -> str:
        names = []
        resc = self.by_id.get(resc_id)
        while resc is not None:
            names.append(resc.resc_name)
            resc = self.by_id.get(int(resc.resc_parent)) if resc.resc_parent else None
        return ";".join(reversed(names))

    def _descend(self, resc: Resource) -> Resource:
        while self.children.get(resc.resc_id):
            kids = self.children[resc.resc_id]
            resc = random.choice(kids) if resc.resc_type_name == "random" else kids[0]  # replication: first
        if resc.resc_type_name in COORDINATING_TYPES:
            raise ZoneError(errors.HIERARCHY_ERROR, f"coordinating resource [{resc.resc_name}] has no leaf")
        return resc

    def leaves_under(self, resc: Resource) -> list[Resource]:
        kids = self.children.get(resc.resc_id)
        if not kids:
            return [resc]
        return [leaf for kid in kids for leaf in self.leaves_under(kid)]

    def replication_node(self, leaf_id: int) -> Resource | None:
        """The nearest ``replication`` resource above a leaf, whose leaves all get a copy of writes."""
        resc = self.by_id.get(leaf_id)
        while resc is not None:
            if resc.resc_type_name == "replication":
                return resc
            resc = self.by_id.get(int(resc.resc_parent)) if resc.resc_parent else None
        return None

    def leaf_for_create(self, name: str) -> Resource:
        resc = self.named(name)
        if resc.resc_parent:
            raise ZoneError(errors.DIRECT_CHILD_ACCESS, f"[{name}] is not the root of its hierarchy")
        return self._descend(resc)

    def leaf_for_register(self, name: str) -> Resource:
        resc = self.named(name)
        if not resc.resc_parent:
            return self._descend(resc)
        if self.children.get(resc.resc_id):
            raise ZoneError(errors.HIERARCHY_ERROR, f"[{name}] is in the middle of a hierarchy")
        return resc

    def leaf_of_hierarchy(self, hier: str) -> Resource:
        names = hier.split(";")
        leaf = self.named(names[-1])
        if self.hierarchy(leaf.resc_id) != hier or self.children.get(leaf.resc_id):
            raise ZoneError(errors.HIERARCHY_ERROR, f"invalid resource hierarchy [{hier}]")
        return leaf
