"""Benchmark: rebuild every channel's feeds (5 channels × 3 formats × 50 entries), then an unchanged rebuild.

Run: .venv/bin/python benchmarks/bench_feeds.py [--articles N] [--repeat R]
Bodies come from ../shared/corpus/dev.jsonl when present (real article sizes), else synthetic Chinese text.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feedbot.model import Classification, Entry, TopicMatch  # noqa: E402
from feedbot.publish import feeds  # noqa: E402
from feedbot.sources.normalize import normalize  # noqa: E402
from feedbot.store import Store  # noqa: E402
from feedbot.web.pages import render_index  # noqa: E402
from tests.feeds_helpers import TOPICS, feeds_config  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "dev.jsonl"


def bodies() -> list[tuple[str, str]]:
    if CORPUS.exists():
        rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [(r["title"], r["body_html"]) for r in rows if r.get("body_html")]
    para = (
        "全国碳排放权交易市场第二个履约周期顺利收官，配额清缴完成率进一步提高，碳排放数据质量管理持续加强。"
    )
    return [(f"合成文章{i}", "".join(f"<p>{para * 3}</p>" for _ in range(12))) for i in range(50)]


def fill(store: Store, count: int, now: datetime) -> None:
    samples = bodies()
    for n in range(count):
        title, body = samples[n % len(samples)]
        url = f"https://news.example.org/a/{n}.html"
        when = now - timedelta(hours=7 * n)
        article = normalize(
            Entry("bench", url, url, f"{title}（{n}）", body, published_at=when, outlet="中国环境报")
        )
        topics = [t for i, t in enumerate(TOPICS) if n % (i + 2) == 0] or [TOPICS[0]]
        cls = Classification(tuple(TopicMatch(t, 10.0, True, (), article.text[:120]) for t in topics))
        store.save_article(article, cls, {}, now=when)


def timed(fn, repeat: int) -> tuple[float, object]:
    runs, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = feeds_config(Path(tmp) / "state")
        store = Store(config.db_path)
        now = datetime.now(UTC)
        fill(store, args.articles, now)
        counts = {
            c.id: len(store.articles(None if c.id == "all" else c.id, 50))
            for c in feeds.channels(config.topics)
        }

        start = time.perf_counter()
        first = feeds.rebuild_all(store, config)
        cold = time.perf_counter() - start
        size = sum(p.stat().st_size for p in config.feeds_dir.iterdir())

        unchanged, changed = timed(lambda: feeds.rebuild_all(store, config), args.repeat)
        assert changed == [], changed

        def read_only() -> None:
            for item in feeds.channels(config.topics):
                store.articles(None if item.id == "all" else item.id, 50)

        query, _ = timed(read_only, args.repeat)
        index, page = timed(lambda: render_index(config, store, now=now), args.repeat)

        print(f"articles stored: {args.articles}; entries per channel: {counts}")
        print(
            f"first rebuild:      {cold * 1000:8.1f} ms  ({len(first)} files written, {size / 1024:.0f} KiB)"
        )
        print(f"unchanged rebuild:  {unchanged * 1000:8.1f} ms  (0 files written; median of {args.repeat})")
        print(f"  of which queries: {query * 1000:8.1f} ms")
        print(f"index page render:  {index * 1000:8.1f} ms  ({len(str(page)) / 1024:.0f} KiB)")
        store.close()


if __name__ == "__main__":
    main()
