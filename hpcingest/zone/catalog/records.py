"""Catalog rows as dataclasses; field names are the iCAT column names, in table order."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields


def now_ts() -> str:
    """iCAT timestamps are 11-digit zero-padded epoch seconds, compared as strings by GenQuery."""
    return "%011d" % int(time.time())


@dataclass
class Collection:
    coll_id: int
    parent_coll_name: str
    coll_name: str
    coll_owner_name: str
    coll_owner_zone: str
    coll_map_id: int = 0
    coll_inheritance: str = ""
    coll_type: str = ""
    coll_info1: str = ""
    coll_info2: str = ""
    r_comment: str = ""
    create_ts: str = ""
    modify_ts: str = ""


@dataclass
class Replica:
    data_id: int
    coll_id: int
    data_name: str
    data_repl_num: int
    data_version: str = ""
    data_type_name: str = "generic"
    data_size: int = 0
    resc_id: int = 0
    data_path: str = ""
    data_owner_name: str = ""
    data_owner_zone: str = ""
    data_is_dirty: int = 0
    data_status: str = ""
    data_checksum: str = ""
    data_expiry_ts: str = "00000000000"
    data_map_id: int = 0
    data_mode: str = ""
    r_comment: str = ""
    create_ts: str = ""
    modify_ts: str = ""
    access_ts: str = ""


@dataclass
class Resource:
    resc_id: int
    resc_name: str
    zone_name: str
    resc_type_name: str
    resc_class_name: str = "cache"
    resc_net: str = ""
    resc_def_path: str = ""
    free_space: str = ""
    free_space_ts: str = ""
    resc_info: str = ""
    r_comment: str = ""
    resc_status: str = ""
    create_ts: str = ""
    modify_ts: str = ""
    resc_children: str = ""
    resc_context: str = ""
    resc_parent: str = ""
    resc_parent_context: str = ""


@dataclass
class User:
    user_id: int
    user_name: str
    user_type_name: str
    zone_name: str
    user_info: str = ""
    r_comment: str = ""
    create_ts: str = ""
    modify_ts: str = ""


def column_names(record_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(record_type))


def insert_sql(table: str, record_type: type) -> str:
    names = column_names(record_type)
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


def as_row(record: object) -> tuple:
    """Field values in declaration order (dataclasses.astuple deep-copies, which is slow here)."""
    return tuple(record.__dict__.values())
