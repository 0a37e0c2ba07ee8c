"""Issue 14 part B: one transaction per poll, and the stored keys kept in step without a full read per poll."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from feedbot.errors import StateError
from feedbot.model import Entry
from feedbot.pipeline import poll_source
from feedbot.settings.config import parse_config
from feedbot.sources.base import PollResult
from feedbot.store import Store
from feedbot.store.group import GroupCommit

MARKET = ("全国碳市场第二个履约周期配额分配方案印发，重点排放单位须按时完成配额清缴。"
          "生态环境部表示，将加强碳排放数据质量监管，严厉打击数据造假，保障碳市场平稳运行。")
NOW = datetime(2024, 6, 3, 4, tzinfo=UTC)


@dataclass
class ListSource:
    """A source adapter double: the given entries, with an ETag, and the known keys it was handed."""

    entries: tuple[Entry, ...]
    etag: str = '"v1"'

    async def poll(self, state, known, *, page_validators=None) -> PollResult:
        self.known = set(known)
        return PollResult(entries=self.entries, etag=self.etag, listed=len(self.entries))


def entry(key: str) -> Entry:
    return Entry(source_id="src", key=key, url=f"http://news.test/{key}", title=f"碳市场条目{key}",
                 body_html=f"<p>{MARKET}</p>")


def setup(tmp_path):
    config = parse_config({"state_dir": str(tmp_path / "state"),
                           "sources": [{"id": "src", "kind": "feed", "url": "http://news.test/feed.xml",
                                        "interval": "10m", "backfill": "all"}]}, None, {})
    store = Store(config.db_path)
    store.sync_sources([("src", "feed", "http://news.test/feed.xml")])
    return config, store


async def poll(config, store, source):
    targets = {topic: [f"console:{topic}"] for topic in config.topics}
    return await poll_source(source, config.sources[0], store, config.topics, targets, now=NOW,
                             rng=random.Random(1))


def fail_inserts_of(config, key: str) -> None:
    """A real SQLite failure on one article's insert (as a full disk would give), set up from outside."""
    conn = sqlite3.connect(config.db_path)
    conn.execute(f"CREATE TRIGGER boom BEFORE INSERT ON articles WHEN NEW.key = '{key}' "
                 "BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END")
    conn.commit()
    conn.close()


def heal(config) -> None:
    conn = sqlite3.connect(config.db_path)
    conn.execute("DROP TRIGGER boom")
    conn.commit()
    conn.close()


async def test_a_write_failure_mid_poll_leaves_nothing_of_that_poll_and_the_next_poll_stores_it_all(tmp_path):
    config, store = setup(tmp_path)
    items = tuple(entry(f"k{n}") for n in range(5))
    source = ListSource(items)
    assert store.known_keys("src") == set()  # the cache is loaded before the failure
    fail_inserts_of(config, "k3")  # the fourth article of the poll cannot be written
    with pytest.raises(StateError, match="simulated write failure"):  # App.poll logs it: "poll not stored"
        await poll(config, store, source)
    # Nothing of the poll: no article (not even k0..k2, written before k3), no delivery, no validators.
    assert store.article_counts()["all"] == 0
    assert store.delivery_counts() == []
    state = store.source_state("src")
    assert state.etag is None and state.last_ok_at is None
    assert store.known_keys("src") == set()  # the rolled-back keys are not taken as stored

    heal(config)
    again = await poll(config, store, source)
    assert again.result == "ok" and again.new == 5
    assert store.source_state("src").etag == '"v1"'
    assert store.known_keys("src") == {f"k{n}" for n in range(5)}
    repeat = await poll(config, store, ListSource(items))
    assert repeat.new == 0 and repeat.deliveries == 0  # exactly once
    store.close()


async def test_known_keys_follow_this_process_and_another_connection(tmp_path):
    config, store = setup(tmp_path)
    await poll(config, store, ListSource((entry("a"), entry("b"))))
    source = ListSource((entry("c"),))
    await poll(config, store, source)
    assert source.known == {"a", "b"}  # what the source was told was stored before this poll
    assert store.known_keys("src") == {"a", "b", "c"}
    # Another connection writes (e.g. an operator's sqlite3 shell): this one's cache is dropped.
    other = Store(config.db_path)
    other.save_article(*_prepared(entry("d")), {}, now=NOW)
    other.close()
    assert store.known_keys("src") == {"a", "b", "c", "d"}
    # A caller mutating the returned set does not change what the store believes.
    store.known_keys("src").add("zzz")
    assert "zzz" not in store.known_keys("src")
    store.close()


def _prepared(e: Entry):
    from feedbot.pipeline import prepare
    config = parse_config({}, None, {})
    return prepare(e, config.topics, NOW)


def statements_of(store: Store, seen: list[str]) -> list[str]:
    """The statements feedbot ran: a trigger's work ("-- …") and a statement reported again as each of its
    trigger programs starts are left out."""
    own: list[str] = []
    for sql in seen:
        if not sql.startswith("--") and (not own or own[-1] != sql):
            own.append(sql)
    return own


async def traced_poll(config, store, source) -> tuple[object, list[str]]:
    seen: list[str] = []
    store.db.conn.set_trace_callback(seen.append)
    try:
        report = await poll(config, store, source)
    finally:
        store.db.conn.set_trace_callback(None)
    return report, statements_of(store, seen)


async def test_a_new_article_costs_one_savepoint_and_its_inserts_no_lookups(tmp_path):
    config, store = setup(tmp_path)
    await poll(config, store, ListSource((entry("old"),)))  # the source's keys are cached from here on
    one, few = await traced_poll(config, store, ListSource((entry("a0"),)))
    eleven, many = await traced_poll(config, store, ListSource(tuple(entry(f"b{n}") for n in range(11))))
    assert (one.new, eleven.new, eleven.deliveries) == (1, 11, 11)
    # Per new article (one classification, one delivery): its savepoint, three inserts and the release.
    # (A short text has no signature row; before, 13.5 statements: lookups, deletes, two savepoints, a PRAGMA.)
    assert (len(many) - len(few)) / 10 == 5, many
    assert sum(s.startswith("SAVEPOINT feedbot_sp") for s in many) == 11  # one per item, not one per write
    # Certainly new by the cached keys: no lookup by key, no classification or retry row to delete.
    unneeded = ("SELECT id", "DELETE FROM classifications", "DELETE FROM post_retries", "PRAGMA data_version")
    assert [s for s in many if s.startswith(unneeded)] == ["PRAGMA data_version"]  # the poll's one cache check
    store.close()


async def test_a_post_that_failed_before_loses_its_retry_row_when_it_is_stored(tmp_path):
    config, store = setup(tmp_path)
    store.record_post_failures("src", [("k1", "http://news.test/k1", "HTTP 500")], NOW)
    assert store.retry_keys("src") == {"k1"}
    report = await poll(config, store, ListSource((entry("k1"), entry("k2"))))
    assert report.new == 2
    assert store.retry_keys("src") == set()
    store.close()


async def test_the_same_key_twice_in_one_poll_is_stored_once(tmp_path):
    config, store = setup(tmp_path)
    report = await poll(config, store, ListSource((entry("k1"), entry("k1"))))
    assert (report.new, report.updated, report.deliveries) == (1, 0, len(store.deliveries()))
    assert store.article_counts()["all"] == 1
    store.close()


async def test_keys_stored_by_another_connection_after_the_cache_was_read_are_still_recognised(tmp_path):
    config, store = setup(tmp_path)
    assert store.known_keys("src") == set()
    other = Store(config.db_path)  # written behind the cache's back, while the poll is under way
    other.save_article(*_prepared(entry("k1")), {}, now=NOW)

    class Racing(ListSource):
        async def poll(self, state, known, *, page_validators=None):
            other.save_article(*_prepared(entry("k2")), {}, now=NOW)  # after the poll read the keys
            other.close()
            return await super().poll(state, known, page_validators=page_validators)

    report = await poll(config, store, Racing((entry("k1"), entry("k2"), entry("k3"))))
    assert (report.new, report.updated) == (1, 0)  # k2 was "new" by the keys read, the insert found it stored
    assert store.article_counts()["all"] == 3
    assert [d.article_id for d in store.deliveries()] == [store.stored_id("src", "k3")]
    store.close()


async def test_a_poll_that_brought_nothing_commits_without_an_fsync_and_one_with_articles_with_it(tmp_path):
    config, store = setup(tmp_path)
    store.db.conn.execute("PRAGMA synchronous = FULL")  # what the connection's default is, said out loud
    _, nothing = await traced_poll(config, store, ListSource(()))
    _, articles = await traced_poll(config, store, ListSource((entry("k1"),)))
    # Bookkeeping only (when checked, the same validators): a power cut may lose it, a crash cannot.
    begin = nothing.index("BEGIN IMMEDIATE")
    assert nothing[begin - 1] == "PRAGMA synchronous = NORMAL"
    assert nothing[nothing.index("COMMIT") + 1] == "PRAGMA synchronous = 2"  # FULL again for the next write
    assert not [s for s in articles if s.startswith("PRAGMA synchronous")]  # an article's poll: fsynced
    assert store.db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    # Committed all the same: another connection reads the poll's bookkeeping.
    other = sqlite3.connect(config.db_path)
    assert other.execute("SELECT etag, last_ok_at IS NOT NULL FROM sources WHERE id = 'src'").fetchone() == ('"v1"', 1)
    other.close()
    store.close()


class InlinePreparer:
    """The Preparer's contract without a process or a thread: polls reach their writes in one turn of the loop."""

    def __init__(self, topics):
        self.topics = topics

    async def run(self, entries, now):
        from feedbot.prepare import prepare_all

        return prepare_all(entries, self.topics, now, cleaned=True)


def three_sources(tmp_path):
    sources = [{"id": sid, "kind": "feed", "url": f"http://{sid}.test/feed.xml", "interval": "10m", "backfill": "all"}
               for sid in ("s1", "s2", "s3")]
    config = parse_config({"state_dir": str(tmp_path / "state"), "sources": sources}, None, {})
    store = Store(config.db_path)
    store.sync_sources([(s.id, "feed", s.url) for s in config.sources])
    adapters = {s.id: ListSource(tuple(Entry(source_id=s.id, key=f"{s.id}-{n}", url=f"{s.url}/{n}",
                                             title=f"碳市场条目{s.id}{n}", body_html=f"<p>{MARKET}{s.id}{n}</p>")
                                       for n in range(3)), etag=f'"{s.id}"') for s in config.sources}
    return config, store, adapters


async def poll_all(config, store, adapters, group):
    targets = {topic: [f"console:{topic}"] for topic in config.topics}
    preparer = InlinePreparer(config.topics)
    return await asyncio.gather(*(
        poll_source(adapters[s.id], s, store, config.topics, targets, now=NOW, rng=random.Random(1),
                    preparer=preparer, committer=group) for s in config.sources), return_exceptions=True)


async def test_polls_that_finish_together_share_one_commit_and_each_is_stored_whole(tmp_path):
    config, store, adapters = three_sources(tmp_path)
    group = GroupCommit(store)
    reports = await poll_all(config, store, adapters, group)
    assert [(r.result, r.new) for r in reports] == [("ok", 3)] * 3
    assert (group.commits, group.writes) == (1, 3)
    assert store.article_counts()["all"] == 9
    assert {s.id: store.source_state(s.id).etag for s in config.sources} == {"s1": '"s1"', "s2": '"s2"', "s3": '"s3"'}
    again = await poll_all(config, store, adapters, group)  # exactly once: the next round stores nothing new
    assert [(r.new, r.deliveries) for r in again] == [(0, 0)] * 3
    store.close()


async def test_a_refused_write_in_one_poll_of_a_group_stores_none_of_the_group_and_the_next_round_all(tmp_path):
    config, store, adapters = three_sources(tmp_path)
    group = GroupCommit(store)
    fail_inserts_of(config, "s2-1")
    outcomes = await poll_all(config, store, adapters, group)
    # One transaction: a refused write rolls all of it back (App.poll logs "poll not stored" for each).
    assert all(isinstance(o, StateError) for o in outcomes), outcomes
    assert store.article_counts()["all"] == 0 and store.delivery_counts() == []
    assert all(store.source_state(s.id).etag is None for s in config.sources)
    heal(config)
    reports = await poll_all(config, store, adapters, group)
    assert [(r.result, r.new) for r in reports] == [("ok", 3)] * 3
    assert store.article_counts()["all"] == 9
    store.close()
