"""Byte-for-byte check of the per-article CPU stage: prepare() = normalize(clean_entry(...)) then classify.

    python benchmarks/prepare_equivalence.py --out /tmp/prep_baseline.txt     (write a dump)
    python benchmarks/prepare_equivalence.py --check /tmp/prep_baseline.txt   (compare against one)

The dump is one line per input, sorted: the Article and Classification of ``prepare`` and the numbers
``explain`` keeps (score, scope, strength, focus, veto, evidence, excerpt), as repr. The inputs:

- every record of ../shared/corpus/dev.jsonl and dev2.jsonl (as feedbot/classify/evaluate.py reads them);
- the 6,000 benchmark articles of benchmarks/rss_fixture.py (300 feeds × 20 entries, as bench_cycle.py
  serves them), parsed by feedbot.sources.feed.parse_feed like the feed source does;
- the feed documents of tests/sources/feeds;
- every entry and article the classifier, normalize and topics tests feed to ``normalize``, ``explain`` or
  ``classify`` (recorded by running those tests in-process with the functions wrapped; rule sets the tests build
  themselves are included, so custom topics are covered too).

Run it before a change (--out) and after every change (--check): it must say "identical". A line that
differs is printed with the baseline's line, so the first difference is easy to find.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "benchmarks"))

from rss_fixture import rss_feed  # noqa: E402

import feedbot.classify.scoring as scoring  # noqa: E402
import feedbot.sources.normalize as normalize_module  # noqa: E402
from feedbot.classify.evaluate import load_corpus  # noqa: E402
from feedbot.model import Entry  # noqa: E402
from feedbot.prepare import prepare  # noqa: E402
from feedbot.settings.topics import TopicRules, load_default_topics  # noqa: E402
from feedbot.sources.feed import parse_feed  # noqa: E402

SHARED = ROOT.parent / "shared" / "corpus"
CORPORA = (SHARED / "dev.jsonl", SHARED / "dev2.jsonl")
FEEDS, ENTRIES = 300, 20  # bench_cycle.py's first cycle: 6,000 articles
NOW = datetime(2024, 5, 2, tzinfo=UTC)  # after every fixture date; clean_entry clamps dates against it
# The test files whose inputs are recorded, named one by one: a test added later must not change the dump.
TESTS = ("tests/classify/test_bad_input.py", "tests/classify/test_evaluate.py", "tests/classify/test_routing.py",
         "tests/classify/test_scoring.py", "tests/sources/test_normalize.py", "tests/settings/test_topics.py")


def corpus_entries() -> list[tuple[str, Entry]]:
    out = []
    for path in CORPORA:
        for article in load_corpus(path):
            entry = Entry(source_id="corpus", key=article.id, url=None, title=article.title,
                          body_html=article.body_html)
            out.append((f"corpus:{path.name}:{article.id}", entry))
    return out


def fixture_entries() -> list[tuple[str, Entry]]:
    out = []
    for n in range(FEEDS):
        url = f"http://127.0.0.1:8000/feed/{n}.xml"
        for entry in parse_feed(rss_feed(n, ENTRIES), url, f"f{n}").entries:
            out.append((f"rss:{entry.key}", entry))
    for path in sorted((ROOT / "tests" / "sources" / "feeds").iterdir()):
        try:
            feed = parse_feed(path.read_bytes(), f"http://example.org/{path.name}", "t")
        except Exception as exc:  # a feed the tests expect to be refused
            out.append((f"feedfile:{path.name}:refused", Entry("t", type(exc).__name__, None, str(exc), "")))
            continue
        for index, entry in enumerate(feed.entries):
            out.append((f"feedfile:{path.name}:{index}", entry))
    return out


def recorded_by_tests() -> tuple[list[Entry], list[tuple[object, Mapping[str, TopicRules]]]]:
    """Run the tests with normalize and explain wrapped; what they were called with."""
    import pytest

    entries: list[Entry] = []
    explained: list[tuple[object, Mapping[str, TopicRules]]] = []
    originals = normalize_module.normalize, scoring.explain, scoring.classify

    def normalize(entry):
        entries.append(entry)
        return originals[0](entry)

    def explain(article, topics):
        explained.append((article, dict(topics)))
        return originals[1](article, topics)

    def classify(article, topics):  # classify need not go through explain
        explained.append((article, dict(topics)))
        return originals[2](article, topics)

    # Patched before the test modules are imported, so their `from ... import` picks up the wrappers.
    normalize_module.normalize, scoring.explain, scoring.classify = normalize, explain, classify
    try:
        code = pytest.main(["-q", "-p", "no:cacheprovider", "--no-header", *TESTS], plugins=[])
    finally:
        normalize_module.normalize, scoring.explain, scoring.classify = originals
    if code != 0:
        raise SystemExit(f"prepare_equivalence: the recorded tests failed (pytest exit {code})")
    return entries, explained


def rules_key(topics: Mapping[str, TopicRules]) -> str:
    return hashlib.sha256(repr(tuple(topics.items())).encode("utf-8", "surrogatepass")).hexdigest()[:12]


def explained_repr(article, topics: Mapping[str, TopicRules]) -> str:
    """explain's numbers, the rules named by id (the rules themselves are an input, not an output)."""
    scores = []
    for score in scoring.explain(article, topics):
        values = {f.name: getattr(score, f.name) for f in fields(score) if f.name != "rules"}
        scores.append((score.rules.id, values))
    return repr(scores)


def dump_lines() -> list[str]:
    topics = load_default_topics()
    lines = []
    for name, entry in corpus_entries() + fixture_entries():
        article, classification = prepare(entry, topics, NOW)
        lines.append(f"{name}\tprepare\t{article!r}\t{classification!r}")
        lines.append(f"{name}\texplain\t{explained_repr(article, topics)}")
    entries, explained = recorded_by_tests()
    for entry in entries:
        name = "test:" + hashlib.sha256(repr(entry).encode("utf-8", "surrogatepass")).hexdigest()[:16]
        try:
            normalized = repr(normalize_module.normalize(entry))
            article, classification = prepare(entry, topics, NOW)
            prepared = f"{article!r}\t{classification!r}"
        except Exception as exc:  # a test may feed input that raises; the exception is then the output
            normalized = prepared = f"raises {type(exc).__name__}: {exc}"
        lines.append(f"{name}\tnormalize\t{normalized}")
        lines.append(f"{name}\tprepare\t{prepared}")
    for article, rules in explained:
        name = "test:" + hashlib.sha256(repr(article).encode("utf-8", "surrogatepass")).hexdigest()[:16]
        lines.append(f"{name}\texplain:{rules_key(rules)}\t{explained_repr(article, rules)}")
    return sorted(set(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, help="write the dump to this file")
    group.add_argument("--check", type=Path, help="compare with this dump")
    args = parser.parse_args()
    for path in CORPORA:
        if not path.is_file():
            print(f"prepare_equivalence: no corpus at {path} (../shared sits beside the checkout)", file=sys.stderr)
            return 2
    lines = dump_lines()
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8", errors="surrogatepass")
        print(f"prepare_equivalence: wrote {len(lines)} lines to {args.out}")
        return 0
    baseline = args.check.read_text(encoding="utf-8", errors="surrogatepass").splitlines()
    if baseline == lines:
        print(f"prepare_equivalence: identical ({len(lines)} lines)")
        return 0
    old, new = set(baseline), set(lines)
    gone, added = sorted(old - new), sorted(new - old)
    print(f"prepare_equivalence: DIFFERENT: {len(gone)} baseline lines missing, {len(added)} new lines")
    for line in added[:5]:
        print(f"+ {line[:2000]}")
    for line in gone[:5]:
        print(f"- {line[:2000]}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
