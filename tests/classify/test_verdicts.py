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


def test_the_shared_no_evidence_verdict_keeps_the_type_of_its_score():
    plain = merge_topics(TOPICS, {"ccus": {"name": "碳捕集", "terms": {"碳捕集": 3}}}, "t.toml")
    unfocused = merge_topics(TOPICS, {"ccus": {"name": "碳捕集", "terms": {"碳捕集": 3}, "min_focus": 0}}, "t.toml")
    for topics, shown in ((plain, "0.0"), (unfocused, "0"), (plain, "0.0")):
        match = classify(MARKET, topics).match("ccus")
        assert repr(match.score) == shown and match == next(s for s in explain(MARKET, topics)
                                                            if s.rules.id == "ccus").as_match()


def test_shared_evidence_is_bounded_and_changes_nothing(monkeypatch):
    import feedbot.classify.scoring as scoring

    expected = [classify(MARKET, TOPICS), classify(article("碳价上涨", "全国碳市场碳价上涨，配额成交活跃。"), TOPICS)]
    monkeypatch.setattr(scoring, "_EVIDENCE", {})
    monkeypatch.setattr(scoring, "_EVIDENCE_MAX", 2)
    again = [classify(MARKET, TOPICS), classify(article("碳价上涨", "全国碳市场碳价上涨，配额成交活跃。"), TOPICS)]
    assert again == expected and repr(again) == repr(expected)
    assert len(scoring._EVIDENCE) <= 2


def test_shared_evidence_keeps_the_sign_of_a_zero_weight():
    # A boost of 0 (or -0.0, which the rules accept) makes a weight of 0.0 or -0.0: equal, not the same repr.
    from feedbot.classify.scoring import _evidence_of

    for weight in (0.0, -0.0, 0.0, 2.5, 2.5):
        assert repr(_evidence_of("碳市场", "title", 1, weight).weight) == repr(weight)


def test_segment_and_sentence_ends_are_where_the_plain_alternations_find_them():
    import random
    import re

    from feedbot.classify.excerpt import SENTENCE_END
    from feedbot.classify.scoring import SEGMENT_END

    plain = {SEGMENT_END: re.compile(r"[。！？；!?;、]|\.(?=\s)"), SENTENCE_END: re.compile(r"[。！？；!?;]|\.(?=\s)")}
    rng = random.Random(5)
    alphabet = "。！？；!?;、..  \n\t\u3000a碳,"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20))) for _ in range(3000)]
    for fast, slow in plain.items():
        for text in texts:
            for end in (len(text), len(text) // 2):  # excerpts search up to a bound: the lookahead stops there
                spans = [m.span() for m in fast.finditer(text, 0, end)]
                assert spans == [m.span() for m in slow.finditer(text, 0, end)]
