"""Routing quality on the labelled corpora: precision and recall per channel, tuned on dev, validated on dev2."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feedbot.classify.evaluate import evaluate, load_corpus  # noqa: E402
from feedbot.settings.topics import load_default_topics  # noqa: E402

CORPORA = (("dev (tuned on)", ROOT.parent / "shared" / "corpus" / "dev.jsonl", 0.95, 0.90),
           ("dev2 (validation)", ROOT.parent / "shared" / "corpus" / "dev2.jsonl", 0.90, 0.85))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    topics = load_default_topics()
    rows = []
    for name, path, want_p, want_r in CORPORA:
        if not path.exists():
            print(f"bench_routing: {path} is not here (../shared sits beside the checkout)", file=sys.stderr)
            return 2
        report = evaluate(load_corpus(path), topics)
        for m in report.topics:
            ok = m.precision >= want_p and m.recall >= want_r
            rows.append({"measurement": f"{name}: {m.topic}",
                         "feedbot": f"P {m.precision:.3f} / R {m.recall:.3f} (TP {m.tp}, FP {m.fp}, FN {m.fn})",
                         "target": f"P ≥ {want_p:.2f}, R ≥ {want_r:.2f}", "ratio": "met" if ok else "NOT met"})
    print("BENCH_JSON " + json.dumps({"title": "Precision / recall per channel", "rows": rows}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
