"""One writer per state dir, migrations that cannot race, and databases feedbot must not touch (issue 12: 6, 15)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedbot.cli import cli
from feedbot.errors import StateError, StateLocked
from feedbot.store import SCHEMA_VERSION, Store
from feedbot.store.lock import StateDirLock

ROOT = Path(__file__).resolve().parents[2]
HOLD_LOCK = ("import sys, time\nfrom feedbot.store.lock import StateDirLock\n"
             "lock = StateDirLock(sys.argv[1]); lock.acquire(); print('locked', flush=True); time.sleep(120)\n")


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "feedbot.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n[web]\nenabled = false\n'
                    '[[sources]]\nid = "x"\nkind = "feed"\nurl = "http://127.0.0.1:9/feed.xml"\n', encoding="utf-8")
    return path


@pytest.fixture
def holder(tmp_path):
    """Another process holding the state dir's lock (as a running `feedbot run` does)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / "state")], stdout=subprocess.PIPE,
                            cwd=ROOT)
    assert proc.stdout.readline().strip() == b"locked"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_process_on_the_state_dir_is_refused_naming_the_holders_pid(tmp_path, holder, clean_env):
    done = subprocess.run([sys.executable, "-m", "feedbot", "--config", str(config_file(tmp_path)), "once"],
                          capture_output=True, text=True, env=clean_env, cwd=ROOT, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"pid {holder.pid}" in lines[0] and str(tmp_path / "state") in lines[0]
    assert not (tmp_path / "state" / "feedbot.db").exists(), "nothing may be written before the lock is held"


def test_the_lock_goes_with_its_process_and_is_taken_again(tmp_path, holder):
    lock = StateDirLock(tmp_path / "state")
    with pytest.raises(StateLocked) as refused:
        lock.acquire()
    assert refused.value.pid == holder.pid
    holder.kill()
    holder.wait()
    lock.acquire()  # a killed holder leaves no stale lock
    assert lock.held
    lock.release()


def test_status_and_unblock_need_no_lock(tmp_path, holder, clean_env):
    config = config_file(tmp_path)
    Store(tmp_path / "state" / "feedbot.db").close()
    runner = CliRunner()
    status = runner.invoke(cli, ["--config", str(config), "status"], env=clean_env)
    assert status.exit_code == 0, status.output
    unblock = runner.invoke(cli, ["--config", str(config), "unblock"], env=clean_env)
    assert unblock.exit_code == 0 and "nothing was blocked" in unblock.output, unblock.output


RACE = """
import sys, time
from feedbot.store import Store
start = float(sys.argv[2])
while time.time() < start:
    pass
Store(sys.argv[1]).close()
print("ok")
"""


def test_processes_starting_on_a_fresh_database_never_race_the_migration(tmp_path):
    # No lock on purpose: BEGIN IMMEDIATE and a re-read of user_version keep even unlocked starters apart.
    for round_ in range(3):
        db = tmp_path / f"race{round_}" / "feedbot.db"
        start = time.time() + 1.5
        procs = [subprocess.Popen([sys.executable, "-c", RACE, str(db), str(start)], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        results = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, [err for _, err in results]
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path):
    db = tmp_path / "feedbot.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes(body) VALUES ('mine')")
    before = db.read_bytes()
    with pytest.raises(StateError) as refused:
        Store(db)
    assert str(db) in str(refused.value) and "not a feedbot database" in str(refused.value)
    assert "notes" in str(refused.value)
    assert db.read_bytes() == before


def test_an_empty_file_is_still_a_new_database(tmp_path):
    db = tmp_path / "feedbot.db"
    db.touch()
    store = Store(db)
    assert store.schema_version() == SCHEMA_VERSION
    store.close()


def _make_read_only(directory: Path) -> str | None:
    """Make directory read-only for this process: a read-only remount as root, chmod otherwise."""
    if os.geteuid() != 0:
        for path in directory.iterdir():
            path.chmod(0o444)
        directory.chmod(0o555)
        return None
    done = subprocess.run(["mount", "-o", "remount,ro", str(directory)], capture_output=True, text=True)
    return None if done.returncode == 0 else f"remount ro failed: {done.stderr.strip()}"


def test_status_reads_a_database_it_cannot_write(tmp_path, clean_env):
    from tests.drill_harness import mount_tmpfs, unmount

    state = tmp_path / "state"
    mounted = os.geteuid() == 0
    if mounted:
        reason = mount_tmpfs(state, "8m")
        if reason:
            pytest.skip(reason)
    try:
        config = config_file(tmp_path)
        store = Store(state / "feedbot.db")
        store.sync_sources([("x", "feed", "http://127.0.0.1:9/feed.xml")])
        store.close()
        reason = _make_read_only(state)
        if reason:
            pytest.skip(reason)
        assert not os.access(state / "feedbot.db", os.W_OK)
        result = CliRunner().invoke(cli, ["--config", str(config), "status"], env=clean_env)
        assert result.exit_code == 0, result.output
        assert "x  " in result.output and "never polled" in result.output
    finally:
        if mounted:
            unmount(state)
        elif state.exists():
            state.chmod(0o755)


async def test_only_one_of_two_claimers_gets_a_row(tmp_path):
    from tests.telegram_helpers import make_article, save, telegram_config

    config = telegram_config(tmp_path, None, token="1:x")
    first, second = Store(config.db_path), Store(config.db_path)
    save(first, config, make_article(1), ["carbon-market"])
    (row,) = first.deliveries()
    assert first.claim_for_sending(row.id, claimed_by=1)
    assert not second.claim_for_sending(row.id, claimed_by=2)
    assert second.delivery(row.id).attempts == 1
    first.close()
    second.close()


async def test_a_start_requeues_only_rows_no_live_process_holds(tmp_path):
    from feedbot.outbox import Outbox
    from tests.telegram_helpers import make_article, save, telegram_config

    config = telegram_config(tmp_path, None, token="1:x")
    store = Store(config.db_path)
    for n in range(2):
        save(store, config, make_article(n), ["carbon-market"])
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        held, orphaned = store.deliveries()
        assert store.claim_for_sending(held.id, claimed_by=live.pid)
        assert store.claim_for_sending(orphaned.id, claimed_by=dead.pid)
        outbox = Outbox.for_kind(config, store, sender=None, kind="telegram")  # type: ignore[arg-type]
        assert outbox.recover() == 1
        assert store.delivery(orphaned.id).status == "pending"
        assert store.delivery(held.id).status == "sending"
    finally:
        live.kill()
        live.wait()
        store.close()
    await asyncio.sleep(0)


def test_the_upgrade_folds_mixed_case_usernames_into_one_target_without_resending(tmp_path):
    from feedbot.store.db import MIGRATIONS
    from tests.telegram_helpers import make_article, save, telegram_config

    config = telegram_config(tmp_path, None, token="1:x", chats={"carbon-market": "@chan"})
    store = Store(config.db_path)
    for n in range(2):
        save(store, config, make_article(n), ["carbon-market"])
    sent, _pending = store.deliveries()
    store.mark_sent(sent.id, message_id=1, content_hash="h")
    store.close()
    version = [f.__name__ for f in MIGRATIONS].index("_target_identity")
    with sqlite3.connect(config.db_path) as conn:  # as a release before the upgrade stored "@Chan"
        conn.execute("UPDATE deliveries SET target = 'telegram:@Chan' WHERE id = ?", [sent.id])
        conn.execute("UPDATE targets SET target = 'telegram:@Chan'")
        conn.execute("ALTER TABLE targets DROP COLUMN chat_id")
        conn.execute("DROP TABLE post_retries")  # the steps after it run again too
        conn.execute(f"PRAGMA user_version = {version}")
    store = Store(config.db_path)
    rows = {(str(d.target), d.status) for d in store.deliveries(statuses=("pending", "sent"))}
    assert rows == {("telegram:@chan", "sent"), ("telegram:@chan", "pending")}
    assert [str(t.target) for t in store.target_states()] in ([], ["telegram:@chan"])
    store.close()
