"""The compiled-rules cache: reused for the same rules, never stale when the rules change or are copied."""

from __future__ import annotations

import pickle

from feedbot.classify.scoring import classify, compile_topics, explain
from feedbot.model import Entry
from feedbot.settings.topics import load_default_topics, merge_topics
from feedbot.sources.normalize import normalize

TOPICS = load_default_topics()
# "碳汇交易" is in no default rule: only a rule set that adds it can route this article on it.
TITLE = "林业碳汇交易试点扩大"
BODY = "<p>" + "多地推进林业碳汇交易，碳汇交易量持续增长。" * 3 + "</p>"


def article():
    return normalize(Entry(source_id="t", key="k", url=None, title=TITLE, body_html=BODY))


def evidence(topics, topic="carbon-market"):
    return {e.term for s in explain(article(), topics) if s.rules.id == topic for e in s.evidence}


def test_the_same_rules_compile_once():
    assert compile_topics(TOPICS) is compile_topics(TOPICS)
    assert compile_topics(TOPICS) is compile_topics(dict(TOPICS))  # another mapping of the same rules


def test_changed_rules_are_used_at_once_and_the_old_ones_still_work():
    assert "碳汇交易" not in evidence(TOPICS)
    changed = merge_topics(TOPICS, {"carbon-market": {"terms": {"碳汇交易": 4}}}, "test.toml")
    assert "碳汇交易" in evidence(changed)  # not the rules compiled a moment ago
    assert "碳汇交易" not in evidence(TOPICS)  # and back: the first rule set is not overwritten
    assert "碳汇交易" in evidence(changed)


def test_rules_that_only_compare_equal_get_rules_of_the_same_content():
    # A worker process gets its rules pickled: new objects, equal by value.
    copied = pickle.loads(pickle.dumps(TOPICS))
    assert copied["carbon-market"] is not TOPICS["carbon-market"]
    assert compile_topics(copied).topics == tuple(TOPICS.values())
    assert classify(article(), copied) == classify(article(), TOPICS)
    changed = pickle.loads(pickle.dumps(merge_topics(TOPICS, {"carbon-market": {"terms": {"碳汇交易": 4}}}, "t")))
    assert "碳汇交易" in evidence(changed)


def test_a_mapping_changed_in_place_is_compiled_again():
    topics = dict(TOPICS)
    assert {s.rules.id for s in explain(article(), topics)} == set(TOPICS)
    del topics["carbon-manager"]
    assert {s.rules.id for s in explain(article(), topics)} == set(TOPICS) - {"carbon-manager"}
    topics["carbon-market"] = merge_topics(TOPICS, {"carbon-market": {"terms": {"碳汇交易": 4}}}, "t")["carbon-market"]
    assert "碳汇交易" in evidence(topics)

