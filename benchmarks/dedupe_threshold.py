"""Measure the reprint threshold of feedbot.dedupe on the labelled corpora.

Different articles (every pair of the corpus, and same-topic pairs of the same week in particular) must
stay apart; constructed reprints (another title, another outlet's boilerplate, re-wrapped paragraphs,
a lead cut or a paragraph added) must join. Usage:
    .venv/bin/python benchmarks/dedupe_threshold.py ../shared/corpus/dev.jsonl ../shared/corpus/dev2.jsonl
"""

from __future__ import annotations

import json
import random
import sys
from datetime import datetime
from email.utils import parsedate_to_datetime
from itertools import combinations
from pathlib import Path

from feedbot import dedupe
from feedbot.model import Entry
from feedbot.sources.normalize import normalize

HEADS = ["来源：人民网 编辑：张三 责任编辑：李四", "【打印】【关闭】 本文转载自中国环境报，版权归原作者所有",
         "点击蓝字关注我们 | 碳市场资讯 第128期"]
TAILS = ["（责任编辑：王五）版权声明：凡注明来源的作品均转载自其它媒体，不代表本网观点。"
         "扫码关注公众号，获取更多碳市场资讯。",
         "相关阅读：全国碳市场周报 | 碳排放管理员报名 | 气候投融资试点名单 | 返回顶部 | 分享到微信朋友圈",
         "本文来源：中国环境报 原标题见上 编辑：赵六 审核：钱七 监制：孙八"]


def text_of(row: dict) -> str:
    entry = Entry(source_id="x", key=row["id"], url=None, title=row["title"], body_html=row["body_html"])
    return normalize(entry).text


def day_of(value: str) -> datetime | None:
    """The day of a corpus date (ISO or RFC 822)."""
    try:
        return datetime.fromisoformat(value[:10])
    except ValueError:
        try:
            return parsedate_to_datetime(value).replace(tzinfo=None)
        except (TypeError, ValueError):
            return None


def reprint(text: str, rng: random.Random, variant: str) -> str:
    paragraphs = [p for p in text.split("\n") if p.strip()]
    if variant == "cut-lead":  # a reprint that drops the first paragraph
        paragraphs = paragraphs[1:] or paragraphs
    elif variant == "first-half":  # an excerpt: the first half of the article only
        paragraphs = paragraphs[:max(1, len(paragraphs) // 2)]
    elif variant == "merged":  # paragraphs re-wrapped into one, full-width punctuation swapped
        paragraphs = ["".join(paragraphs).replace("，", ",").replace("。", ". ")]
    body = "\n".join(paragraphs)
    return f"{rng.choice(HEADS)}\n另拟标题：{rng.choice(['重磅', '关注', '速览'])}\n{body}\n{rng.choice(TAILS)}"


def main(paths: list[str]) -> None:
    rows = [json.loads(line) for path in paths
            for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = {r["id"]: text_of(r) for r in rows}
    sigs = {i: dedupe.signature(t) for i, t in texts.items()}
    labels = {r["id"]: set(r.get("labels") or []) for r in rows}
    repo = {r["id"]: r.get("repo") for r in rows}
    dates = {r["id"]: day_of(r.get("date") or "") for r in rows}
    usable = [i for i in texts if sigs[i]]
    pairs = []
    for a, b in combinations(usable, 2):
        exact = len(dedupe.shingles(texts[a]) & dedupe.shingles(texts[b])) / len(
            dedupe.shingles(texts[a]) | dedupe.shingles(texts[b]))
        pairs.append((dedupe.similarity(sigs[a], sigs[b]), exact, a, b))
    pairs.sort(reverse=True)
    same_topic_week = [p for p in pairs if labels[p[2]] & labels[p[3]] and dates[p[2]] and dates[p[3]]
                       and abs((dates[p[2]] - dates[p[3]]).days) <= 7]
    cross = [p for p in pairs if repo[p[2]] != repo[p[3]]]
    print(f"articles {len(rows)}, with a signature {len(usable)} (>= {dedupe.MIN_SHINGLES} shingles), "
          f"pairs {len(pairs)} ({len(cross)} across repositories), "
          f"same-topic same-week pairs {len(same_topic_week)}")
    print("highest-scoring distinct pairs (estimate, exact Jaccard, ids, titles):")
    for est, exact, a, b in pairs[:8]:
        title = {r["id"]: r["title"] for r in rows}
        print(f"  {est:.3f} {exact:.3f} {a} {b} | {title[a][:24]} | {title[b][:24]}")
    rng = random.Random(7)
    variants = ("boilerplate", "cut-lead", "merged", "first-half")
    reprint_scores = {v: [] for v in variants}
    grown = []
    for i in usable:
        for v in variants:
            other = dedupe.signature(reprint(texts[i], rng, v))
            reprint_scores[v].append(dedupe.similarity(sigs[i], other) if other else 0.0)
        # an update that grew: the same article with a third more text appended
        extra = texts[rng.choice(usable)][: len(texts[i]) // 3]
        grown.append(dedupe.similarity(sigs[i], dedupe.signature(texts[i] + "\n" + extra)))
    print("threshold | false merges: all pairs, across repos, same-topic same-week | reprint recall by variant | grown")
    for threshold in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        false_all = sum(p[0] >= threshold for p in pairs)
        false_week = sum(p[0] >= threshold for p in same_topic_week)
        recall = " ".join(f"{v}={sum(s >= threshold for s in reprint_scores[v]) / len(usable):.3f}" for v in variants)
        grown_recall = sum(s >= threshold for s in grown) / len(grown)
        false_cross = sum(p[0] >= threshold for p in cross)
        print(f"  {threshold:.1f} | {false_all}, {false_cross}, {false_week} | {recall} | {grown_recall:.3f}")
    for v in variants:
        scores = sorted(reprint_scores[v])
        print(f"reprint {v}: min {scores[0]:.3f} p5 {scores[len(scores) // 20]:.3f} "
              f"median {scores[len(scores) // 2]:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["../shared/corpus/dev.jsonl", "../shared/corpus/dev2.jsonl"])
