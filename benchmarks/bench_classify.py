"""Classification throughput on one core: body_html → normalize → classify, over a corpus.

    python benchmarks/bench_classify.py --corpus ../shared/corpus/dev.jsonl [--runs 7] [--passes 5]

Prints articles/s and MB/s (of title + body_html, UTF-8) as the median of several runs; exits 2
when the corpus is not there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feedbot.classify.scoring import classify, compile_topics  # noqa: E402
from feedbot.model import Entry  # noqa: E402
from feedbot.settings.topics import load_default_topics  # noqa: E402
from feedbot.sources.normalize import normalize  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "dev.jsonl"


def main() -> int:
    """Run the benchmark; the exit code is 2 when there is nothing to measure."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS,
                        help="JSON lines with title and body_html")
    parser.add_argument("--runs", type=int, default=7, help="timed runs; the median is reported")
    parser.add_argument("--passes", type=int, default=5, help="passes over the corpus in one run")
    args = parser.parse_args()
    if not args.corpus.is_file():
        print(f"bench_classify: no corpus at {args.corpus}; pass --corpus PATH (a JSON-lines file)",
              file=sys.stderr)
        return 2
    rows = [json.loads(line) for line in args.corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    entries = [Entry(source_id="bench", key=str(r.get("id", i)), url=None, title=r["title"],
                     body_html=r["body_html"]) for i, r in enumerate(rows)]
    if not entries:
        print(f"bench_classify: {args.corpus} has no articles", file=sys.stderr)
        return 2
    size_mb = sum(len(e.title.encode()) + len(e.body_html.encode()) for e in entries) / 1e6

    topics = load_default_topics()
    started = time.perf_counter()
    compile_topics(topics)  # built once per rule set, not per article
    compile_ms = (time.perf_counter() - started) * 1000
    for entry in entries:  # warm-up
        classify(normalize(entry), topics)

    seconds = []
    for _ in range(args.runs):
        started = time.perf_counter()
        for _ in range(args.passes):
            for entry in entries:
                classify(normalize(entry), topics)
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    articles = len(entries) * args.passes
    print(f"corpus: {args.corpus} ({len(entries)} articles, {size_mb:.2f} MB)")
    print(f"rules compiled in {compile_ms:.1f} ms ({len(topics)} topics)")
    print(f"runs: {args.runs} × {args.passes} passes; median {median:.3f} s per run")
    print(f"articles/s: {articles / median:,.0f}")
    print(f"MB/s: {size_mb * args.passes / median:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
