"""Work per hostile article: normalize + classify time, and how long the event loop stalls during a poll.

    python benchmarks/bench_poison.py [--quick]

Cases (issue 12, case 5): a post of 130,000 short lines (2.5 MB; every third line a heading of its own), the
same with 16,000 lines, a feed entry of 100,000 nested <div>s, and the classifier on an article that
already has 16,000 sections (bypassing normalize's caps: shows whether the classifier itself is linear).
The poll case fetches the 130k-line post from the loopback site double through the real pipeline while
a 10 ms ticker runs on the loop; "loop stall" is the longest gap the ticker saw. Run it on an old
checkout to get the "before" figures (the script uses only interfaces that existed before the caps).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feedbot.classify.scoring import classify  # noqa: E402
from feedbot.model import Article, Entry, Section  # noqa: E402
from feedbot.settings.config import parse_config  # noqa: E402
from feedbot.sources.normalize import normalize  # noqa: E402

MARKET = ["全国碳市场第二个履约周期配额分配方案印发，重点排放单位须按时完成配额清缴。",
          "生态环境部表示，将加强碳排放数据质量监管，严厉打击数据造假，保障碳市场平稳运行。"]
TOPICS = parse_config({}, None, {}).topics


def lines(count: int) -> list[str]:
    return [*MARKET, *(f"碳市场小标题{n}" if n % 3 == 0 else f"配额清缴第{n}项。" for n in range(count))]


def timed(label: str, work) -> None:
    began = time.perf_counter()
    detail = work()
    print(f"{label:<46} {time.perf_counter() - began:8.2f} s   {detail}", flush=True)


def normalize_and_classify(entry: Entry) -> str:
    article = normalize(entry)
    topics = classify(article, TOPICS).topics
    return f"{len(article.paragraphs)} paragraphs, {len(article.sections)} sections, topics {list(topics)}"


def long_post(count: int) -> Entry:
    body = "\n ".join(f"<p>{html.escape(p)}</p>" for p in lines(count))
    return Entry("bench", "k", None, "碳市场超长文章", body)


def sectioned(count: int) -> Article:
    sections = tuple(Section(f"碳市场小标题{n}", (f"配额清缴第{n}项。",)) for n in range(count))
    text = "\n".join(s.text for s in sections)
    return Article("bench", "k", None, "碳市场", "", text, tuple(text.split("\n")), sections, "h")


async def poll_stall(count: int) -> str:
    from feedbot.pipeline import poll_source
    from feedbot.sources import make_source
    from feedbot.sources.http import Fetcher
    from feedbot.store import Store
    from tests.doubles.site import SampleSite

    async with SampleSite(posts=[]) as site:
        site.add_post("碳市场超长文章", lines(count))
        config = parse_config({"sources": [{"id": "hjb", "kind": "jekyll", "url": site.category_url,
                                            "backfill": "all"}], "fetch": {"delay": "0.01s"}}, None, {})
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "feedbot.db")
            store.sync_sources([("hjb", "jekyll", site.category_url)])
            worst = 0.0
            done = asyncio.Event()

            async def ticker() -> None:
                nonlocal worst
                last = time.perf_counter()
                while not done.is_set():
                    await asyncio.sleep(0.01)
                    now = time.perf_counter()
                    worst = max(worst, now - last - 0.01)
                    last = now

            tick = asyncio.create_task(ticker())
            async with Fetcher(config.fetch) as fetcher:
                report = await poll_source(make_source(config.sources[0], fetcher), config.sources[0], store,
                                           config.topics, {}, rng=random.Random(1))
            done.set()
            await tick
            store.close()
    return f"{report.new} stored; longest event-loop stall {worst:.2f} s"


def main() -> int:
    """Run every case once and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller inputs (16k lines, 20k divs)")
    args = parser.parse_args()
    big, divs = (16_000, 20_000) if args.quick else (130_000, 100_000)
    print(f"feedbot at {ROOT}")
    timed("normalize+classify: 16,000-line post", lambda: normalize_and_classify(long_post(16_000)))
    timed(f"normalize+classify: {big:,}-line post", lambda: normalize_and_classify(long_post(big)))
    nested = Entry("bench", "k", None, "t", "<div>" * divs + "碳市场配额清缴" + "</div>" * divs)
    timed(f"normalize: {divs:,} nested <div>", lambda: f"text {normalize(nested).text[:20]!r}")
    many = sectioned(16_000)
    timed("classify: an article of 16,000 sections", lambda: f"topics {list(classify(many, TOPICS).topics)}")
    timed(f"poll (site double): {big:,}-line post", lambda: asyncio.run(poll_stall(big)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
