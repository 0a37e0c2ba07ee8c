"""Where a `feedbot once` profile spends its time, by stage: fetch, parse, normalize, classify, store, daemon.

Run: .venv/bin/python benchmarks/profile_summary.py PROFILE...   (files from bench_cycle.py --profile DIR)
Cumulative times of the stage's entry points; stages nest (poll holds fetch and parse), so shares overlap.
"""

from __future__ import annotations

import pstats
import sys

STAGES = [  # (label, file suffix, function)
    ("whole process", "feedbot/__main__.py", "<module>"),
    ("imports at start-up", "feedbot/daemon.py", "<module>"),
    ("source poll: fetch + parse (FeedSource.poll)", "feedbot/sources/feed.py", "poll"),
    ("  fetch (Fetcher.get)", "feedbot/sources/http.py", "get"),
    ("  parse (parse_feed)", "feedbot/sources/feed.py", "parse_feed"),
    ("normalize", "feedbot/sources/normalize.py", "normalize"),
    ("classify", "feedbot/classify/scoring.py", "classify"),
    ("store: save_article", "feedbot/store/db.py", "save_article"),
    ("store: record_poll_ok", "feedbot/store/db.py", "record_poll_ok"),
    ("store: known_keys + source_state", "feedbot/store/db.py", "known_keys"),
    ("daemon: per-poll accounting (status line)", "feedbot/daemon.py", "_account"),
    ("feeds rebuild", "feedbot/publish/feeds.py", "rebuild_all"),
]


def summarize(path: str) -> list[tuple[str, float]]:
    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    rows = []
    for label, suffix, function in STAGES:
        total = sum(ct for (file, _, name), (_, _, _, ct, _) in stats.items()
                    if file.endswith(suffix) and name == function)
        if label.startswith("store: known_keys"):
            total += sum(ct for (file, _, name), (_, _, _, ct, _) in stats.items()
                         if file.endswith(suffix) and name == "source_state")
        rows.append((label, total))
    return rows


def main() -> None:
    for path in sys.argv[1:]:
        rows = summarize(path)
        whole = rows[0][1] or 1.0
        print(f"{path}")
        for label, seconds in rows:
            print(f"  {label:46} {seconds:7.2f} s  {seconds / whole:6.1%}")


if __name__ == "__main__":
    main()
