"""The shortcuts of the scoring: classify without explain's TopicScores, topics and sections without evidence."""

from __future__ import annotations

from dataclasses import fields

import pytest

from feedbot.classify.scoring import TopicScore, _Verdict, classify, explain
from feedbot.model import Entry
from feedbot.settings.topics import load_default_topics, merge_topics
from feedbot.sources.normalize import normalize

TOPICS = load_default_topics()


def article(title: str, *paragraphs: str):
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return normalize(Entry(source_id="t", key=title, url=None, title=title, body_html=body))


MARKET = article("全国碳市场扩容", "全国碳市场将纳入钢铁、水泥行业，重点排放单位须按时完成配额清缴。" * 3)


def test_explain_builds_its_scores_from_the_same_verdicts_as_classify():
    # explain builds TopicScore(*verdict, excerpt): the fields must line up, in order.
    assert (*_Verdict._fields, "excerpt") == tuple(f.name for f in fields(TopicScore))
    assert tuple(s.as_match() for s in explain(MARKET, TOPICS)) == classify(MARKET, TOPICS).matches


def test_a_topic_without_evidence_scores_zero_over_the_whole_article():
    scores = {s.rules.id: s for s in explain(MARKET, TOPICS)}
    assert scores["carbon-market"].matched
    nothing = scores["carbon-manager"]
    assert (nothing.score, nothing.matched, nothing.scope, nothing.strength, nothing.focus, nothing.vetoed,
            nothing.evidence, nothing.excerpt) == (0.0, False, "article", 0, 0.0, None, (), "")


@pytest.mark.parametrize(("table", "vetoed"), [
    ({"require_any": ["CCUS"]}, "none of require_any occurs"),
    ({"min_focus": 0}, None),  # no focus needed: the score is the strength itself, 0
])
def test_a_topic_without_evidence_still_gets_its_veto(table, vetoed):
    topics = merge_topics(TOPICS, {"ccus": {"name": "碳捕集", "terms": {"碳捕集": 3}, **table}}, "t.toml")
    score = next(s for s in explain(MARKET, topics) if s.rules.id == "ccus")
    assert (score.score, score.matched, score.vetoed) == (0 if "min_focus" in table else 0.0, False, vetoed)
    assert repr(score.score) == ("0" if "min_focus" in table else "0.0")  # as the general path computes it


def test_a_roundup_topic_without_evidence_is_vetoed_as_one_item():
    roundup = article("今日早报", *[f"{n}、某公司发布季度财报，营收同比增长。" for n in range(1, 7)])
    assert all(s.vetoed == "one item of a roundup or list, not the article's subject" for s in explain(roundup, TOPICS))
