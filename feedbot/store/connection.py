"""The few sqlite-utils ``Database`` methods the store uses, on a plain sqlite3 connection.

sqlite-utils (which imports numpy when it can) costs more to import than a whole unchanged poll; only the
migrations need its table helpers, so only a file that needs a migration imports it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from typing import Any


class Connection:
    """``execute``, ``query`` and ``table_names`` as sqlite-utils has them, over an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        # sqlite-utils sets it on every connection it wraps: a trigger's own writes fire triggers too.
        self.execute("PRAGMA recursive_triggers = on")

    def execute(self, sql: str, parameters: Iterable[Any] | Mapping[str, Any] | None = None) -> sqlite3.Cursor:
        """Run one statement and return its cursor."""
        return self.conn.execute(sql) if parameters is None else self.conn.execute(sql, parameters)

    def query(self, sql: str, params: Iterable[Any] | Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """The rows of a query as dicts (a repeated column name gets a suffix, as sqlite-utils gives it)."""
        cursor = self.execute(sql, params)
        if cursor.description is None:
            raise ValueError("query() can only be used with SQL that returns rows - use execute() for other "
                             "statements")
        keys = _unique([d[0] for d in cursor.description])
        return (dict(zip(keys, row, strict=True)) for row in cursor)

    def table_names(self) -> list[str]:
        """The names of the tables in the file."""
        return [r[0] for r in self.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]


def _unique(keys: list[str]) -> list[str]:
    """Column names with a repeated one renamed name_2, name_3 … (skipping names already taken)."""
    taken = set(keys)
    if len(taken) == len(keys):
        return keys
    seen: set[str] = set()
    out = []
    for key in keys:
        if key in seen:
            name, suffix = key, 2
            while name in seen or name in taken:
                name, suffix = f"{key}_{suffix}", suffix + 1
            key = name
        seen.add(key)
        out.append(key)
    return out
