"""The per-article CPU stage (feedbot.prepare.prepare), stage by stage: clean_entry, normalize, classify.

    python benchmarks/bench_prepare.py                      (the 6,000 RSS fixture articles; ~10 s)
    python benchmarks/bench_prepare.py --corpus             (the labelled corpora instead)
    python benchmarks/bench_prepare.py --profile FILE       (also a cProfile of prepare() over the set)

Each stage runs over the whole set with its inputs made beforehand, so a stage's time is its own; the
figures are the median and the least of --runs runs, CPU µs per article, on one core in this process.
The fixture set is bench_cycle.py's first cycle: 300 feeds × 20 entries of benchmarks/rss_fixture.py,
parsed by parse_feed.
"""

from __future__ import annotations

import argparse
import cProfile
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "benchmarks"))

from rss_fixture import rss_feed  # noqa: E402

from feedbot.classify.evaluate import load_corpus  # noqa: E402
from feedbot.classify.scoring import classify  # noqa: E402
from feedbot.model import Entry  # noqa: E402
from feedbot.prepare import prepare  # noqa: E402
from feedbot.settings.topics import load_default_topics  # noqa: E402
from feedbot.sources.edge import clean_entry  # noqa: E402
from feedbot.sources.feed import parse_feed  # noqa: E402
from feedbot.sources.normalize import normalize  # noqa: E402

FEEDS, ENTRIES = 300, 20
NOW = datetime(2024, 5, 2, tzinfo=UTC)
CORPORA = (ROOT.parent / "shared" / "corpus" / "dev.jsonl", ROOT.parent / "shared" / "corpus" / "dev2.jsonl")


def fixture_entries() -> list[Entry]:
    return [entry for n in range(FEEDS)
            for entry in parse_feed(rss_feed(n, ENTRIES), f"http://127.0.0.1:8000/feed/{n}.xml", f"f{n}").entries]


def corpus_entries() -> list[Entry]:
    return [Entry(source_id="corpus", key=a.id, url=None, title=a.title, body_html=a.body_html)
            for path in CORPORA for a in load_corpus(path)]


def timed(stage: Callable[[object], object], inputs: list, runs: int) -> tuple[float, float]:
    """Median and least CPU seconds of one pass of the stage over the inputs.

    CPU time of this process, not wall time: on a shared machine the process is often made to wait, and
    the least of several runs is the one least disturbed by other processes (caches, a sibling core).
    """
    seconds = []
    for _ in range(runs):
        started = time.process_time()
        for item in inputs:
            stage(item)
        seconds.append(time.process_time() - started)
    return statistics.median(seconds), min(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="store_true", help="the labelled corpora instead of the RSS fixture")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per stage; the median is reported")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of prepare() over the set to FILE")
    args = parser.parse_args()
    if args.corpus and not all(path.is_file() for path in CORPORA):
        print("bench_prepare: the corpora are not in ../shared/corpus", file=sys.stderr)
        return 2
    entries = corpus_entries() if args.corpus else fixture_entries()
    topics = load_default_topics()
    for entry in entries[:50]:  # warm-up: the first classify builds the rules' automaton and OpenCC
        prepare(entry, topics, NOW)

    cleaned = [clean_entry(entry, NOW) for entry in entries]
    articles = [normalize(entry) for entry in cleaned]
    stages = [
        ("clean_entry", timed(lambda e: clean_entry(e, NOW), entries, args.runs)),
        ("normalize", timed(normalize, cleaned, args.runs)),
        ("classify", timed(lambda a: classify(a, topics), articles, args.runs)),
        ("prepare (all three)", timed(lambda e: prepare(e, topics, NOW), entries, args.runs)),
    ]
    chars = sum(len(a.title) + len(a.text) for a in articles) / len(articles)
    what = "corpora dev + dev2" if args.corpus else f"RSS fixture, {FEEDS} feeds × {ENTRIES} entries"
    print(f"{len(entries)} articles ({what}), {chars:.0f} characters of title + text on average; "
          f"CPU time, median and least of {args.runs} runs")
    print(f"  {'stage':20} {'median':>10}  {'per article':>12}   {'least':>10}  {'per article':>12}")
    for name, (median, least) in stages:
        print(f"  {name:20} {median * 1000:7.1f} ms  {median * 1e6 / len(entries):7.1f} µs/art"
              f"   {least * 1000:7.1f} ms  {least * 1e6 / len(entries):7.1f} µs/art")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for entry in entries:
            prepare(entry, topics, NOW)
        profiler.disable()
        profiler.dump_stats(args.profile)
        print(f"profile of prepare() written to {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
