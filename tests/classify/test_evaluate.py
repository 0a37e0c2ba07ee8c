"""Evaluation on a tiny corpus written here, whose metrics are worked out by hand."""

from __future__ import annotations

import json

import pytest

from feedbot.classify.evaluate import (
    CorpusError,
    TopicMetrics,
    evaluate,
    format_report,
    load_corpus,
    read_corpus,
    report_dict,
)
from feedbot.settings.topics import load_default_topics

MARKET_BODY = (
    "<p>全国碳市场第二个履约周期配额清缴工作已经完成，重点排放单位履约率超过99%。</p>"
    "<p>生态环境部表示，全国碳市场运行平稳，碳价稳中有升，下一步将扩大行业覆盖范围。</p>"
)
ADAPTATION_BODY = (
    "<p>我省印发适应气候变化行动方案，落实《国家适应气候变化战略2035》，提出到2035年全面提升适应气候变化能力。</p>"
    "<p>方案要求开展气候风险评估，推进气候适应型城市建设试点。</p>"
)
WEATHER_BODY = "<p>受冷空气影响，明后两天我市将有小到中雨，气温下降6至8摄氏度，请市民注意添衣保暖。</p>"
SPORTS_BODY = "<p>市运动会今天开幕，来自全市的两千余名运动员将在十天内角逐32个大项的金牌。</p>"

# Hand count: carbon-market TP cm-1, FP cm-2 (its label was left off), FN wx-1 (mislabelled);
# adaptation-2035 TP ad-1; nothing labelled or predicted for climate-finance and carbon-manager.
CORPUS = [
    {"id": "cm-1", "title": "全国碳市场履约率超过99%", "body_html": MARKET_BODY, "labels": ["carbon-market"]},
    {"id": "cm-2", "title": "全国碳市场运行平稳", "body_html": MARKET_BODY, "labels": []},
    {"id": "wx-1", "title": "明后两天有雨", "body_html": WEATHER_BODY, "labels": ["carbon-market"]},
    {"id": "ad-1", "title": "我省印发适应气候变化行动方案", "body_html": ADAPTATION_BODY,
     "labels": ["adaptation-2035"]},
    {"id": "sp-1", "title": "市运动会开幕", "body_html": SPORTS_BODY, "labels": []},
]


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "tiny.jsonl"
    text = "\n".join(json.dumps(row, ensure_ascii=False) for row in CORPUS) + "\n\n"  # a blank line too
    path.write_text(text, encoding="utf-8")
    return path


def test_metrics_match_the_hand_count(corpus_file):
    report = evaluate(load_corpus(corpus_file), load_default_topics())
    by_topic = {m.topic: m for m in report.topics}
    assert report.articles == 5
    market = by_topic["carbon-market"]
    assert (market.tp, market.fp, market.fn) == (1, 1, 1)
    assert (market.precision, market.recall, market.f1) == (0.5, 0.5, 0.5)
    adaptation = by_topic["adaptation-2035"]
    assert (adaptation.tp, adaptation.fp, adaptation.fn) == (1, 0, 0)
    assert (adaptation.precision, adaptation.recall, adaptation.f1) == (1.0, 1.0, 1.0)
    # No label and no prediction: nothing was got wrong, so precision and recall are 1 by convention.
    finance = by_topic["climate-finance"]
    assert (finance.tp, finance.fp, finance.fn, finance.precision, finance.recall) == (0, 0, 0, 1.0, 1.0)
    assert (report.micro.tp, report.micro.fp, report.micro.fn) == (2, 1, 1)
    assert report.micro.precision == pytest.approx(2 / 3) and report.micro.f1 == pytest.approx(2 / 3)


def test_mistakes_name_the_article_and_the_evidence(corpus_file):
    report = evaluate(load_corpus(corpus_file), load_default_topics())
    assert [(m.kind, m.topic, m.id) for m in report.mistakes] == [("fp", "carbon-market", "cm-2"),
                                                                   ("fn", "carbon-market", "wx-1")]
    false_positive, false_negative = report.mistakes
    assert false_positive.title == "全国碳市场运行平稳"
    assert any(e.startswith("全国碳市场@title") for e in false_positive.evidence)
    assert false_positive.score >= false_positive.threshold
    assert false_negative.evidence == () and false_negative.score == 0


def test_text_report_has_the_table_and_the_confusion(corpus_file):
    text = format_report(evaluate(load_corpus(corpus_file), load_default_topics()))
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.split()[:1] and
            line.split()[0] in ("carbon-market", "adaptation-2035", "micro")}
    assert rows["carbon-market"] == ["1", "1", "1", "0.500", "0.500", "0.500"]
    assert rows["adaptation-2035"] == ["1", "0", "0", "1.000", "1.000", "1.000"]
    assert rows["micro"] == ["2", "1", "1", "0.667", "0.667", "0.667"]
    assert "False positives (1):\n  [carbon-market] cm-2  全国碳市场运行平稳" in text
    assert ("False negatives (1):\n  [carbon-market] wx-1  明后两天有雨\n"
            "      score 0 / threshold 8: no evidence") in text


def test_json_report(corpus_file):
    data = report_dict(evaluate(load_corpus(corpus_file), load_default_topics()))
    assert data["topics"]["carbon-market"] == {"tp": 1, "fp": 1, "fn": 1, "precision": 0.5, "recall": 0.5,
                                               "f1": 0.5}
    assert data["micro"]["precision"] == 0.6667
    assert [(m["kind"], m["id"]) for m in data["mistakes"]] == [("fp", "cm-2"), ("fn", "wx-1")]
    json.dumps(data, ensure_ascii=False)  # plain data all the way down


def test_f1_is_zero_when_nothing_is_right():
    assert TopicMetrics("x", tp=0, fp=2, fn=3).f1 == 0.0


@pytest.mark.parametrize(("line", "message"), [
    ('{"id": "a", "title": "t", "body_html": "<p>x</p>"', "c.jsonl:2: not JSON"),
    ('["a"]', "c.jsonl:2: expected a JSON object"),
    ('{"id": 1, "title": "t", "body_html": "<p>x</p>", "labels": []}', "c.jsonl:2: 'id' must be a string"),
    ('{"id": "a", "title": "t", "body_html": "<p>x</p>", "labels": "carbon-market"}',
     "c.jsonl:2: 'labels' must be a list of topic ids"),
])
def test_a_bad_corpus_line_is_named(line, message):
    good = '{"id": "ok", "title": "t", "body_html": "<p>x</p>", "labels": []}'
    with pytest.raises(CorpusError, match=f"^{message}"):
        list(read_corpus([good, line], "c.jsonl"))
