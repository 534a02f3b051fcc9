"""GENERAL_QUERY (702): compile, page, continue and close GenQueries for a connection."""

from __future__ import annotations

from .. import errors
from ..errors import ZoneError
from ..framing import Message
from ..genquery import RETURN_TOTAL_ROW_COUNT, Cursor, compile_query, count_rows, fetch_page
from ..session import Session
from ..xmlpack import Node, Xml, escape, parse
from .registry import Reply, api

_EMPTY_RESULT = b"<GenQueryOut_PI><rowCnt>0</rowCnt><attriCnt>0</attriCnt><continueInx>0</continueInx>" \
                b"<totalRowCount>0</totalRowCount></GenQueryOut_PI>"


def _pairs(node: Node | None, key_tag: str, value_tag: str) -> list[tuple[int, str]]:
    if node is None:
        return []
    keys = [child.text for child in node.children if child.tag == key_tag]
    values = [child.text for child in node.children if child.tag == value_tag]
    try:
        return [(int(k), v) for k, v in zip(keys, values)]
    except ValueError:
        raise ZoneError(errors.CAT_INVALID_ARGUMENT, "column numbers must be integers") from None


def _result(column_ids: list[int], rows: list[tuple], handle: int, total: int) -> bytes:
    parts = [f"<GenQueryOut_PI><rowCnt>{len(rows)}</rowCnt><attriCnt>{len(column_ids)}</attriCnt>"
             f"<continueInx>{handle}</continueInx><totalRowCount>{total}</totalRowCount>"]
    for index, column_id in enumerate(column_ids):
        values = ["" if row[index] is None else str(row[index]) for row in rows]
        width = max((len(v) for v in values), default=0) + 1
        parts.append(f"<SqlResult_PI><attriInx>{column_id}</attriInx><reslen>{width}</reslen>")
        parts.extend(f"<value>{escape(v)}</value>" for v in values)
        parts.append("</SqlResult_PI>")
    parts.append("</GenQueryOut_PI>")
    return Xml("".join(parts)).encode("utf-8", "surrogateescape")


@api(702, "GEN_QUERY_AN")
def gen_query(session: Session, request: Message) -> Reply:
    body = parse(request.msg)
    max_rows = body.int("maxRows")
    handle = body.int("continueInx")
    cursors = session.cursors
    if handle:
        cursor = cursors.open.pop(handle, None)
        if max_rows <= 0:
            return Reply(msg=_EMPTY_RESULT)
        if cursor is None:
            raise ZoneError(errors.CAT_NO_ROWS_FOUND, "no continuation with that handle")
    else:
        if max_rows <= 0:
            return Reply(msg=_EMPTY_RESULT)
        selects = [(column, int(flags)) for column, flags in _pairs(body.get("InxIvalPair_PI"), "inx", "ivalue")]
        conditions = _pairs(body.get("InxValPair_PI"), "inx", "svalue")
        cursor = Cursor(compile_query(selects, conditions, body.int("options")), max(body.int("partialStartIndex"), 0))
    catalog = session.zone.catalog
    with catalog.lock:
        rows = fetch_page(catalog.db, cursor.query, cursor.offset, max_rows)
        total = count_rows(catalog.db, cursor.query) if body.int("options") & RETURN_TOTAL_ROW_COUNT else 0
    if not rows:
        raise ZoneError(errors.CAT_NO_ROWS_FOUND, "no rows found")
    next_handle = 0
    if len(rows) == max_rows:
        cursor.offset += len(rows)
        next_handle = cursors.store(cursor)
    return Reply(msg=_result(cursor.query.column_ids, rows, next_handle, total))
