"""GenQuery (API 702): iRODS column numbers and condition strings compiled to sqlite SQL.

Follows the real server's general_query.cpp: tables are joined along the iCAT foreign keys of
the columns used; a condition's literal is the text between its first and last single quote
(so embedded quotes survive); results are DISTINCT unless NO_DISTINCT; the ORDER BY starts with
the requested columns and then COLL_NAME, DATA_NAME and DATA_REPL_NUM when selected; a full page
always carries a continuation handle and a continuation past the end is CAT_NO_ROWS_FOUND.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

from . import errors
from .errors import ZoneError

ORDER_BY = 0x400
ORDER_BY_DESC = 0x800
NO_DISTINCT = 0x40
RETURN_TOTAL_ROW_COUNT = 0x20
UPPER_CASE_WHERE = 0x200
_AGGREGATES = {2: "MIN", 3: "MAX", 4: "SUM", 5: "AVG", 6: "COUNT"}


@dataclass(frozen=True)
class Column:
    table: str
    expr: str


def _columns() -> dict[int, Column]:
    cols: dict[int, Column] = {}

    def add(table: str, first: int, exprs: str) -> None:
        for offset, expr in enumerate(exprs.split()):
            if expr != "-":
                cols[first + offset] = Column(table, expr)

    add("zone", 101, "z.zone_id z.zone_name z.zone_type_name")
    add("user", 201, "u.user_id u.user_name u.user_type_name u.zone_name - u.user_info u.r_comment "
                     "u.create_ts u.modify_ts")
    add("resc", 301, "r.resc_id r.resc_name r.zone_name r.resc_type_name r.resc_class_name r.resc_net "
                     "r.resc_def_path r.free_space r.resc_info r.r_comment r.create_ts r.modify_ts r.resc_status "
                     "r.free_space_ts r.resc_children r.resc_context r.resc_parent r.resc_parent_context")
    add("data", 401, "d.data_id d.coll_id d.data_name d.data_repl_num d.data_version d.data_type_name "
                     "d.data_size - - d.data_path d.data_owner_name d.data_owner_zone d.data_is_dirty "
                     "d.data_status d.data_checksum d.data_expiry_ts d.data_map_id d.r_comment d.create_ts "
                     "d.modify_ts d.data_mode resc_hier(d.resc_id) d.resc_id d.access_ts")
    cols[409] = Column("resc", "r.resc_name")
    add("coll", 500, "c.coll_id c.coll_name c.parent_coll_name c.coll_owner_name c.coll_owner_zone "
                     "c.coll_map_id c.coll_inheritance c.r_comment c.create_ts c.modify_ts c.coll_type "
                     "c.coll_info1 c.coll_info2")
    for first, table in ((600, "dmeta"), (610, "cmeta"), (630, "rmeta"), (640, "umeta")):
        a = table[0] + "m"
        add(table, first, f"{a}.meta_attr_name {a}.meta_attr_value {a}.meta_attr_unit {a}.meta_id "
                          f"{a}.create_ts {a}.modify_ts")
    add("daccess", 700, "da.access_type_id dt.token_name dt.token_namespace da.user_id da.object_id")
    add("caccess", 710, "ca.access_type_id ct.token_name ct.token_namespace ca.user_id ca.object_id")
    add("group", 900, "g.group_user_id gu.user_name")
    add("cuser", 1300, "cu.user_name cu.zone_name")
    return cols


COLUMNS = _columns()

_DEPENDS = {"dmeta": "data", "cmeta": "coll", "rmeta": "resc", "umeta": "user", "group": "user",
            "daccess": "data", "caccess": "coll", "cuser": "caccess"}
_JOIN_ORDER = ("data", "coll", "resc", "daccess", "caccess", "cuser", "user", "group", "dmeta", "cmeta",
               "rmeta", "umeta", "zone")
_TABLES = {"data": "r_data_main d", "coll": "r_coll_main c", "resc": "r_resc_main r", "user": "r_user_main u",
           "zone": "r_zone_main z"}
_META_NAME_COLUMNS = {600, 610, 630, 640}
_META_BASE = {"dmeta": "d.data_id", "cmeta": "c.coll_id", "rmeta": "r.resc_id", "umeta": "u.user_id"}


def _meta_join(table: str, instance: int) -> str:
    a = table[0] + "m" + (str(instance) if instance > 1 else "")
    return (f"JOIN r_objt_metamap {a}m ON {a}m.object_id = {_META_BASE[table]} "
            f"JOIN r_meta_main {a} ON {a}.meta_id = {a}m.meta_id")


def _join_clause(table: str, present: set[str]) -> str:
    if table in _META_BASE:
        return _meta_join(table, 1)
    if table in ("daccess", "caccess"):
        a, base = ("da", "d.data_id") if table == "daccess" else ("ca", "c.coll_id")
        return (f"JOIN r_objt_access {a} ON {a}.object_id = {base} JOIN r_tokn_main {a[0]}t "
                f"ON {a[0]}t.token_namespace = 'access_type' AND {a[0]}t.token_id = {a}.access_type_id")
    if table == "cuser":
        return "JOIN r_user_main cu ON cu.user_id = ca.user_id"
    if table == "group":
        return "JOIN r_user_group g ON g.user_id = u.user_id JOIN r_user_main gu ON gu.user_id = g.group_user_id"
    if table == "coll" and "data" in present:
        return "JOIN r_coll_main c ON c.coll_id = d.coll_id"
    if table == "resc" and "data" in present:
        return "JOIN r_resc_main r ON r.resc_id = d.resc_id"
    if table == "user" and "daccess" in present:
        return "JOIN r_user_main u ON u.user_id = da.user_id"
    if table == "user" and "caccess" in present:
        return "JOIN r_user_main u ON u.user_id = ca.user_id"
    return "CROSS JOIN " + _TABLES[table]


def from_clause(tables: set[str], meta_instances: dict[str, int] | None = None) -> str:
    """FROM and JOINs for the tables used; a metadata table may be joined several times."""
    needed = set(tables)
    for table in _JOIN_ORDER[::-1]:
        if table in needed and table in _DEPENDS:
            needed.add(_DEPENDS[table])
    for table in list(needed):
        if table in _DEPENDS:
            needed.add(_DEPENDS[table])
    if "coll" in needed and "resc" in needed:
        needed.add("data")
    parts: list[str] = []
    present: set[str] = set()
    for table in _JOIN_ORDER:
        if table in needed:
            parts.append(_TABLES[table] if not parts else _join_clause(table, present))
            present.add(table)
            for instance in range(2, (meta_instances or {}).get(table, 1) + 1):
                parts.append(_meta_join(table, instance))
    return " ".join(parts)


_OPERATORS = {"=", "<>", "!=", "<", ">", "<=", ">=", "like", "not like"}
_QUOTED = re.compile(r"'([^']*)'")


def condition_sql(expr: str, condition: str, upper: bool) -> tuple[str, list[str]]:
    """One iRODS condition string (``= 'x'``, ``like '%a'``, ``in ('a','b')``…) as SQL with bound values."""
    text = condition.strip()
    lowered = text.lower()
    target = f"UPPER({expr})" if upper else expr
    if lowered in ("is null", "is not null"):
        return f"{expr} {text.upper()}", []
    if re.match(r"(not\s+)?in\s*\(", lowered):
        values = _QUOTED.findall(text)
        if not values:  # an empty list matches nothing (or everything, negated)
            return ("1" if lowered.startswith("not") else "0"), []
        negate = "NOT " if lowered.startswith("not") else ""
        return f"{target} {negate}IN ({', '.join('?' * len(values))})", values
    if lowered.startswith("between"):
        values = _QUOTED.findall(text)
        if len(values) != 2:
            raise ZoneError(errors.CAT_INVALID_ARGUMENT, f"bad between-condition {condition!r}")
        return f"{target} BETWEEN ? AND ?", values
    first, last = text.find("'"), text.rfind("'")
    if first < 0:
        match = re.match(r"(<>|!=|<=|>=|=|<|>|not like|like)\s*(.*)$", text, re.I)
        if not match:
            raise ZoneError(errors.CAT_INVALID_ARGUMENT, f"bad condition {condition!r}")
        op, literal = match.group(1).lower(), match.group(2)
    elif first == last:
        raise ZoneError(errors.CAT_INVALID_ARGUMENT, f"unbalanced quotes in {condition!r}")
    else:
        op, literal = " ".join(text[:first].split()).lower(), text[first + 1:last]
    if op not in _OPERATORS:
        raise ZoneError(errors.CAT_INVALID_ARGUMENT, f"bad operator in {condition!r}")
    if op in ("like", "not like"):
        return f"{target} {op.upper()} ? ESCAPE '\\'", [literal]
    return f"{target} {op} ?", [literal]


@dataclass
class Query:
    """A compiled GenQuery: the SQL without paging, plus what the reply needs."""

    sql: str
    params: list[str]
    column_ids: list[int]


def compile_query(selects: list[tuple[int, int]], conditions: list[tuple[int, str]], options: int) -> Query:
    if not selects:
        raise ZoneError(errors.CAT_INVALID_ARGUMENT, "no columns selected")
    tables: set[str] = set()
    select_exprs: list[str] = []
    group_exprs: list[str] = []
    user_order: list[str] = []
    plain_by_id: dict[int, str] = {}
    aggregated = False
    for column_id, flags in selects:
        column = _column(column_id)
        tables.add(column.table)
        function = _AGGREGATES.get(flags & 0xFF)
        if function:
            aggregated = True
            select_exprs.append(f"{function}({column.expr})")
            continue
        select_exprs.append(column.expr)
        group_exprs.append(column.expr)
        plain_by_id[column_id] = column.expr
        if flags & ORDER_BY_DESC:
            user_order.append(f"{column.expr} DESC")
        elif flags & ORDER_BY:
            user_order.append(column.expr)
    where: list[str] = []
    params: list[str] = []
    upper = bool(options & UPPER_CASE_WHERE)
    instances: dict[str, int] = {}
    named: set[str] = set()
    for column_id, condition in conditions:
        column = _column(column_id)
        tables.add(column.table)
        expr = column.expr
        if column.table in _META_BASE:
            # as in the real server, each further condition on an attribute name joins another AVU
            if column_id in _META_NAME_COLUMNS:
                if column.table in named:
                    instances[column.table] = instances.get(column.table, 1) + 1
                named.add(column.table)
            instance = instances.get(column.table, 1)
            if instance > 1:
                alias, _, name = expr.partition(".")
                expr = f"{alias}{instance}.{name}"
        sql, values = condition_sql(expr, condition, upper)
        where.append(sql)
        params.extend(values)
    order = list(user_order)
    for column_id in (501, 403, 404):
        if column_id in plain_by_id and plain_by_id[column_id] not in order:
            order.append(plain_by_id[column_id])
    order += [expr for expr in group_exprs if expr not in order and f"{expr} DESC" not in order]
    distinct = "" if options & NO_DISTINCT else "DISTINCT "
    sql = f"SELECT {distinct}{', '.join(select_exprs)} FROM {from_clause(tables, instances)}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if aggregated and group_exprs:
        sql += " GROUP BY " + ", ".join(group_exprs)
    if order:
        sql += " ORDER BY " + ", ".join(order)
    return Query(sql, params, [column_id for column_id, _ in selects])


def _column(column_id: int) -> Column:
    try:
        return COLUMNS[column_id]
    except KeyError:
        raise ZoneError(errors.CAT_INVALID_ARGUMENT, f"unknown GenQuery column {column_id}") from None


@dataclass
class Cursor:
    query: Query
    offset: int


@dataclass
class QueryCursors:
    """A connection's open continuation handles (the real server keeps them per agent)."""

    open: dict[int, Cursor] = field(default_factory=dict)
    last_handle: int = 0

    def store(self, cursor: Cursor) -> int:
        self.last_handle += 1
        self.open[self.last_handle] = cursor
        return self.last_handle


def fetch_page(db: sqlite3.Connection, query: Query, offset: int, max_rows: int) -> list[tuple]:
    return db.execute(f"{query.sql} LIMIT ? OFFSET ?", (*query.params, max_rows, offset)).fetchall()


def count_rows(db: sqlite3.Connection, query: Query) -> int:
    return db.execute(f"SELECT COUNT(*) FROM ({query.sql})", query.params).fetchone()[0]
