"""Store CPU per new article in a poll: 300 feeds × 20 new entries through pipeline.poll_source.

Run: .venv/bin/python benchmarks/bench_store.py               (6,000 articles, 3 timed runs; ~20 s)
     .venv/bin/python benchmarks/bench_store.py --feeds 30    (smaller)

Fetching and preparing (normalize, classify, MinHash) are done before the clock starts: the source and
the preparer hand back ready results, so the process CPU around each poll_source call is the store's part
(the per-poll transaction, its statements and triggers). A second pass counts the SQL statements the
connection runs per article (trigger bodies counted apart), a third times draining the search queue.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rss_fixture import PARAGRAPH

from feedbot.model import Entry
from feedbot.pipeline import poll_source
from feedbot.prepare import prepare_all
from feedbot.settings.config import SourceConfig, parse_config
from feedbot.sources.base import PollResult
from feedbot.store import Store

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


class ReadySource:
    """A source whose poll hands back entries already fetched (no network in the measured part)."""

    def __init__(self, entries: tuple[Entry, ...]):
        self.entries = entries

    async def poll(self, state, known, *, page_validators=None) -> PollResult:
        return PollResult(entries=tuple(e for e in self.entries if e.key not in known), etag='"e"')


class ReadyPreparer:
    """A preparer whose results were computed before the clock started."""

    def __init__(self, outcomes: dict[str, object]):
        self.outcomes = outcomes

    async def run(self, entries, now):
        return [self.outcomes[e.key] for e in entries]


def feed_entries(source: int, entries: int) -> tuple[Entry, ...]:
    """What rss_fixture serves for one source: ~165 characters of text per entry."""
    start = datetime(2024, 5, 1, tzinfo=UTC)
    return tuple(Entry(
        source_id=f"f{source}", key=f"https://news{source}.example.org/0/{n}.html",
        url=f"https://news{source}.example.org/0/{n}.html", title=f"第{source}号源 第{n}条 全国碳市场动态 v0",
        body_html=f"<p>{PARAGRAPH * 3}</p>", published_at=start - timedelta(minutes=n)) for n in range(entries))


async def cycle(store: Store, feeds: list[tuple[SourceConfig, ReadySource, ReadyPreparer]], topics, targets,
                ) -> float:
    """Poll every feed once; returns the process CPU seconds spent inside poll_source."""
    cpu = 0.0
    for config, source, preparer in feeds:
        started = time.process_time()
        report = await poll_source(source, config, store, topics, targets, now=NOW, preparer=preparer)
        cpu += time.process_time() - started
        assert report.result == "ok", report
    return cpu


def build(directory: Path, feeds: int, entries: int, topics):
    store = Store(directory / "feedbot.db")
    out = []
    for n in range(feeds):
        items = feed_entries(n, entries)
        prepared = prepare_all(items, topics, NOW)
        out.append((SourceConfig(id=f"f{n}", kind="feed", url=f"https://news{n}.example.org/feed.xml"),
                    ReadySource(items), ReadyPreparer({e.key: o for e, o in zip(items, prepared, strict=True)})))
    store.sync_sources((c.id, c.kind, c.url) for c, _, _ in out)
    return store, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--entries", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (best and median shown)")
    args = parser.parse_args()
    config = parse_config({"state_dir": tempfile.gettempdir()}, None, {})
    topics = config.topics
    targets = {topic: [f"telegram:@{topic.replace('-', '_')}"] for topic in topics}
    articles = args.feeds * args.entries
    cpus, drains = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.repeat):  # a fresh database each time: the machine is shared, take the best
            store, feeds = build(Path(tmp) / f"timed{run}", args.feeds, args.entries, topics)
            chars = sum(len(o[0].text) for _, _, p in feeds for o in p.outcomes.values()) / articles
            cpus.append(asyncio.run(cycle(store, feeds, topics, targets)))
            stored = store.db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
            deliveries = store.db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
            assert stored == articles, stored
            if hasattr(store, "index_pending"):
                started = time.process_time()
                while store.index_pending():
                    pass
                drains.append(time.process_time() - started)
            store.close()

        store, feeds = build(Path(tmp) / "counted", args.feeds, args.entries, topics)
        statements = {"top": 0, "trigger": 0, "last": ""}

        def count(sql: str) -> None:
            # SQLite reports a statement again as each trigger program starts, and FTS5's own statements on
            # its shadow tables as "-- …": those are the triggers' work, not statements feedbot runs.
            if sql.startswith("--") or sql == statements["last"]:
                statements["trigger"] += 1
            else:
                statements["top"] += 1
                statements["last"] = sql

        store.db.conn.set_trace_callback(count)
        asyncio.run(cycle(store, feeds, topics, targets))
        store.db.conn.set_trace_callback(None)
        store.close()

    print(f"{articles} new articles ({chars:.0f} chars of text each, {deliveries} deliveries) over "
          f"{args.feeds} polls")
    best, median = min(cpus), statistics.median(cpus)
    print(f"store CPU: best {best:.3f} s, median {median:.3f} s of {len(cpus)} runs; "
          f"{best * 1000 / articles:.3f} ms per new article (median {median * 1000 / articles:.3f})")
    print(f"SQL statements per new article: {statements['top'] / articles:.2f} "
          f"(+ {statements['trigger'] / articles:.2f} trigger / FTS5 "
          "internal)")
    if drains:
        drain = min(drains)
        print(f"search queue drain (off the poll path): {drain:.3f} s, {drain * 1000 / articles:.3f} ms per article")


if __name__ == "__main__":
    main()
