"""The current schema as one script: a new file is created from it instead of replaying every migration.

Replaying them needs sqlite-utils, whose import (it pulls in numpy) costs more than a whole unchanged poll
cycle, on the first cycle's critical path. Like Rails' schema.rb, the script is what the migrations build,
dumped (``python -m feedbot.store.schema`` writes it; ``make schema`` runs that), and
``tests/store/test_schema.py`` fails when it no longer is. An existing file is still migrated step by step,
and an SQLite without the full-text index takes the migrations too (they leave the index out there).
"""

from __future__ import annotations

import sqlite3
import sys
from importlib import resources

from feedbot.store import migrations
from feedbot.store.migrations import SCHEMA_VERSION
from feedbot.store.searchschema import SEARCH_TABLE

SCRIPT = "schema.sql"  # in feedbot/data, shipped with the package
_HEADER = "-- The schema at version {version}, as the migrations build it (python -m feedbot.store.schema).\n"


def create_current(conn: sqlite3.Connection) -> bool:
    """Create the current schema in an empty file (in the caller's transaction); False when this SQLite
    needs the migrations instead (no FTS5 trigram tokenizer) or the script is of another version."""
    text = resources.files("feedbot").joinpath("data", SCRIPT).read_text(encoding="utf-8")
    if not text.startswith(_HEADER.format(version=SCHEMA_VERSION)) or not migrations.trigram_supported(conn):
        return False
    for statement in statements(text):
        conn.execute(statement)
    return True


def statements(script: str) -> list[str]:
    """The script's statements, split where SQLite says one is complete (a trigger's body holds semicolons)."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        if not pending and (not line.strip() or line.startswith("--")):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete statement at the end of the schema script: {pending[:80]!r}")
    return out


def dump(conn: sqlite3.Connection) -> str:
    """The script that recreates this file's schema and rows (of a freshly migrated file: its few fixed rows)."""
    shadow = {f"{SEARCH_TABLE}_{part}" for part in ("data", "idx", "content", "docsize", "config")}
    rows = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
                        "ORDER BY rowid").fetchall()
    lines = [_HEADER.format(version=conn.execute("PRAGMA user_version").fetchone()[0])]
    for _, name, sql in rows:
        if name in shadow:
            continue  # made by the virtual table itself
        lines.append(f"{sql};\n")
    for kind, name, _ in rows:
        if kind == "table" and name not in shadow and name != SEARCH_TABLE:
            lines += _inserts(conn, name)
    return "".join(lines)


def _inserts(conn: sqlite3.Connection, table: str) -> list[str]:
    cursor = conn.execute(f'SELECT * FROM "{table}"')
    columns = ", ".join(d[0] for d in cursor.description)
    out = []
    for row in cursor.fetchall():
        values = ", ".join(conn.execute("SELECT quote(?)", [v]).fetchone()[0] for v in row)
        out.append(f'INSERT INTO "{table}" ({columns}) VALUES ({values});\n')
    return out


def main() -> None:
    """Migrate an empty in-memory file step by step and write the script to feedbot/data/schema.sql."""
    from feedbot.store.db import Database

    database = Database(":memory:", migrate=False)
    database.migrate(replay=True)
    path = resources.files("feedbot").joinpath("data", SCRIPT)
    text = dump(database.db.conn)
    if "--check" in sys.argv:
        sys.exit(0 if path.read_text(encoding="utf-8") == text else 1)
    with resources.as_file(path) as file:
        file.write_text(text, encoding="utf-8")
    print(f"wrote {file} (schema version {SCHEMA_VERSION})")


if __name__ == "__main__":
    main()
