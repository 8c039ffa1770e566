"""Whether a statement is a point read, decided from SQLite's own query plan.

A point read finds its rows through equality on every column of a unique index, so it touches at most
one row per value it is given and may run on the event loop; everything else (any SCAN, any subquery,
a non-unique index such as externalId's) may walk the table and must run on a reader thread. The
verdict comes from `EXPLAIN QUERY PLAN` of the statement actually run, not from a guess about the
filter, and is kept per statement text (values are `?` parameters, so the text is the statement's shape).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from typing import Any

# Plan lines that add no row access of their own: the parts of an OR answered by several searches, and
# sorting what the searches found (at most one row per value).
_HARMLESS = re.compile(r"MULTI-INDEX OR|INDEX \d+|USE TEMP B-TREE FOR ORDER BY")
_SEARCH = re.compile(r"SEARCH \S+ USING (?:COVERING )?INDEX (\S+) \((.+)\)")
_ROWID_SEARCH = re.compile(r"SEARCH \S+ USING INTEGER PRIMARY KEY \(rowid=\?\)")
_EQUALITY = re.compile(r"(\w+)=\?")

# Statement shapes are few in practice (one per filter form a client sends), but a client can make up
# any number of them: the cache forgets the oldest beyond this many.
_MAX_VERDICTS = 1024
_verdicts: dict[str, bool] = {}
_seeks: dict[str, bool] = {}


def is_point_read(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> bool:
    """True when SQLite answers `sql` by equality on unique keys only (see the module docstring)."""
    verdict = _verdicts.get(sql)
    if verdict is None:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", tuple(params))]
        verdict = bool(plan) and all(_is_point_step(conn, step) for step in plan)
        if len(_verdicts) >= _MAX_VERDICTS:
            del _verdicts[next(iter(_verdicts))]
        _verdicts[sql] = verdict
    return verdict


def is_index_seek(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> bool:
    """True when SQLite answers `sql` with one seek by equality into one index (unique or not) or the rowid, and
    nothing else: a statement with a LIMIT and no other condition then reads at most LIMIT rows, however many
    share the value (Resources.find, for `externalId eq`, whose index is not unique)."""
    verdict = _seeks.get(sql)
    if verdict is None:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", tuple(params))]
        verdict = len(plan) == 1 and _is_seek_step(plan[0])
        if len(_seeks) >= _MAX_VERDICTS:
            del _seeks[next(iter(_seeks))]
        _seeks[sql] = verdict
    return verdict


def _is_seek_step(step: str) -> bool:
    if _ROWID_SEARCH.fullmatch(step):
        return True
    search = _SEARCH.fullmatch(step)
    return search is not None and all(_EQUALITY.fullmatch(term) for term in search.group(2).split(" AND "))


def _is_point_step(conn: sqlite3.Connection, step: str) -> bool:
    if _HARMLESS.fullmatch(step) or _ROWID_SEARCH.fullmatch(step):
        return True
    search = _SEARCH.fullmatch(step)
    if search is None:
        return False
    index, constraints = search.groups()
    terms = constraints.split(" AND ")
    equal = {match.group(1) for term in terms if (match := _EQUALITY.fullmatch(term))}
    if len(equal) != len(terms):
        return False  # a range (`>?`) or an IS NULL reaches more than one row
    columns = _unique_index_columns(conn, index)
    return columns is not None and columns <= equal


def _unique_index_columns(conn: sqlite3.Connection, index: str) -> set[str] | None:
    """The columns of `index` when it is a unique index over NOT NULL or primary-key columns, else None
    (a unique index allows many NULLs, so `IS ?` on a nullable one could match many rows)."""
    row = conn.execute("SELECT tbl_name FROM sqlite_schema WHERE type = 'index' AND name = ?", (index,)).fetchone()
    if row is None:
        return None
    table = row[0]
    unique = {entry[1]: entry[2] for entry in conn.execute("SELECT * FROM pragma_index_list(?)", (table,))}
    if not unique.get(index):
        return None
    columns = {entry[2] for entry in conn.execute("SELECT * FROM pragma_index_info(?)", (index,))}
    info = {entry[1]: entry for entry in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))}
    if None in columns or any(not (info[c][3] or info[c][5]) for c in columns):
        return None
    return columns
