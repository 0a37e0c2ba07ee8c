"""Group commit: writes that finish in one turn of the loop share a transaction, each still all or nothing."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from feedbot.errors import StateError
from feedbot.store import Store
from feedbot.store.group import GroupCommit


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "state.db")
    s.sync_sources([("a", "feed", "http://a.test/feed.xml")])
    s._execute("CREATE TABLE t (name TEXT UNIQUE)")
    yield s
    s.close()


def rows(store: Store) -> list[str]:
    """What another connection sees: only committed rows."""
    conn = sqlite3.connect(store.path)
    try:
        return sorted(r[0] for r in conn.execute("SELECT name FROM t"))
    finally:
        conn.close()


def insert(store: Store, name: str, *, fail: bool = False):
    def write():
        store._execute("INSERT INTO t(name) VALUES (?)", [name])
        if fail:
            raise ValueError(f"{name} failed after its insert")
        return name
    return write


async def test_writes_of_one_turn_share_one_commit_and_each_caller_gets_its_result(store):
    group = GroupCommit(store)
    results = await asyncio.gather(*(group.run(insert(store, n)) for n in ("x", "y", "z")))
    assert results == ["x", "y", "z"]
    assert (group.commits, group.writes) == (1, 3)
    assert rows(store) == ["x", "y", "z"]
    # A later turn is a transaction of its own.
    assert await group.run(insert(store, "w")) == "w"
    assert (group.commits, group.writes) == (2, 4)


async def test_a_write_that_raises_is_rolled_back_alone_and_its_caller_gets_the_error(store):
    group = GroupCommit(store)
    outcomes = await asyncio.gather(group.run(insert(store, "x")), group.run(insert(store, "bad", fail=True)),
                                    group.run(insert(store, "z")), return_exceptions=True)
    assert outcomes[0] == "x" and outcomes[2] == "z"
    assert isinstance(outcomes[1], ValueError) and "bad failed" in str(outcomes[1])
    assert rows(store) == ["x", "z"]


async def test_a_lone_write_that_raises_leaves_nothing(store):
    group = GroupCommit(store)
    with pytest.raises(ValueError):
        await group.run(insert(store, "bad", fail=True))
    assert rows(store) == [] and group.commits == 0


async def test_when_the_database_refuses_a_write_the_whole_group_is_rolled_back_and_every_caller_told(store):
    group = GroupCommit(store)
    # A real SQLite error (UNIQUE constraint) comes out of the store as a StateError.
    outcomes = await asyncio.gather(group.run(insert(store, "x")), group.run(insert(store, "x")),
                                    return_exceptions=True)
    assert all(isinstance(o, StateError) for o in outcomes), outcomes
    assert rows(store) == [] and group.commits == 0
    assert not store.db.conn.in_transaction
    assert await group.run(insert(store, "after")) == "after"  # the next turn writes as usual


async def test_a_caller_cancelled_before_its_turn_writes_nothing(store):
    group = GroupCommit(store)
    ran = []

    def write():
        ran.append(True)
        store._execute("INSERT INTO t(name) VALUES ('cancelled')")

    task = asyncio.ensure_future(group.run(write))
    await asyncio.sleep(0)  # the task has queued its write; the flush comes in the next turn
    task.cancel()
    assert await group.run(insert(store, "kept")) == "kept"
    assert ran == [] and rows(store) == ["kept"]
    assert task.cancelled()


async def test_a_group_is_durable_when_any_of_its_writes_is(store):
    group = GroupCommit(store)
    seen = []

    def level():
        seen.append(store._execute("PRAGMA synchronous").fetchone()[0])

    await asyncio.gather(group.run(level, durable=False), group.run(level, durable=False))
    await asyncio.gather(group.run(level, durable=False), group.run(level, durable=True))
    assert seen == [1, 1, 2, 2]  # NORMAL (no fsync) for bookkeeping only; FULL as soon as one needs it
    assert store._execute("PRAGMA synchronous").fetchone()[0] == 2  # restored after the commit


async def test_keys_a_rolled_back_write_cached_are_forgotten(store):
    from datetime import UTC, datetime

    from feedbot.model import Article

    now = datetime(2024, 6, 3, tzinfo=UTC)
    article = Article(source_id="a", key="k1", url="http://a.test/1", title="t", body_html="<p>x</p>",
                      text="x", paragraphs=("x",), sections=(), content_hash="h", published_at=now)
    assert store.known_keys("a") == set()  # the cache is read

    def write_then_fail():
        store.insert_article(article, now)
        store.remember_key("a", "k1")
        raise ValueError("after the insert")

    group = GroupCommit(store)
    outcomes = await asyncio.gather(group.run(write_then_fail), group.run(lambda: None), return_exceptions=True)
    assert isinstance(outcomes[0], ValueError) and group.commits == 1
    assert store.known_keys("a") == set()
