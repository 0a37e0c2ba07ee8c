"""A new file gets the schema the migrations build, from one script, without importing sqlite-utils."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from importlib import resources
from pathlib import Path

from feedbot.store import SCHEMA_VERSION, Store
from feedbot.store.db import Database
from feedbot.store.schema import SCRIPT, dump, statements

ROOT = Path(__file__).resolve().parents[2]


def replayed(path: Path | str) -> Database:
    database = Database(path, migrate=False)
    database.migrate(replay=True)  # every migration, one after the other, as an old file goes
    return database


def schema_of(conn: sqlite3.Connection) -> tuple:
    objects = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    return (conn.execute("PRAGMA user_version").fetchone()[0], objects,
            conn.execute("SELECT id, value FROM change_counter").fetchall())


def test_the_shipped_script_is_what_the_migrations_build_now():
    shipped = resources.files("feedbot").joinpath("data", SCRIPT).read_text(encoding="utf-8")
    # A new migration without `make schema`: this fails (and new files quietly take the slow path).
    assert dump(replayed(":memory:").db.conn) == shipped, "run `make schema` to rewrite feedbot/data/schema.sql"


def test_a_new_file_from_the_script_equals_one_migrated_step_by_step(tmp_path):
    fresh = Store(tmp_path / "fresh.db")
    old_way = replayed(tmp_path / "replayed.db")
    assert schema_of(fresh.db.conn) == schema_of(old_way.db.conn)
    assert schema_of(fresh.db.conn)[0] == SCHEMA_VERSION
    assert fresh.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert fresh.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    fresh.close()
    old_way.close()


def test_creating_a_new_file_imports_no_sqlite_utils(tmp_path):
    code = ("import json, sys\nfrom feedbot.store import Store\n"
            f"Store({str(tmp_path / 'new.db')!r}).close()\nprint(json.dumps('sqlite_utils' in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) is False


def test_statements_split_where_sqlite_says_one_ends():
    script = ("-- a comment\nCREATE TABLE t (x);\n\nCREATE TRIGGER g AFTER INSERT ON t BEGIN\n"
              "  UPDATE t SET x = 1; DELETE FROM t;\nEND;\nINSERT INTO t (x) VALUES ('a;b');\n")
    trigger = "CREATE TRIGGER g AFTER INSERT ON t BEGIN\n  UPDATE t SET x = 1; DELETE FROM t;\nEND;"
    assert statements(script) == ["CREATE TABLE t (x);", trigger, "INSERT INTO t (x) VALUES ('a;b');"]
