"""Topic rules as data: the shipped defaults, user overrides, a user's own topic, and every rule error."""

from __future__ import annotations

import pytest

from feedbot.classify.scoring import classify_html
from feedbot.errors import RulesError
from feedbot.settings.config import load_config
from feedbot.settings.fold import fold
from feedbot.settings.topics import Cooccur, load_default_topics, merge_topics, parse_topics

WHERE = "/etc/feedbot/feedbot.toml"

HYDROGEN_ARTICLE = (
    "<p>我省加快布局氢能产业，今年新建加氢站12座，燃料电池汽车推广数量突破三千辆。</p>"
    "<p>省发展改革委表示，将完善氢能储运体系，推动加氢站与加油站合建，降低燃料电池汽车使用成本。</p>"
)


def test_defaults_have_the_four_channels_with_names_and_hashtags():
    topics = load_default_topics()
    assert list(topics) == ["carbon-market", "adaptation-2035", "climate-finance", "carbon-manager"]
    assert topics["carbon-market"].name == "碳市场"
    assert topics["carbon-manager"].name == "碳排放管理员"
    for rules in topics.values():
        assert rules.hashtag.startswith("#") and " " not in rules.hashtag
        assert rules.description and rules.terms and rules.threshold > 0
    # Boilerplate markers from [defaults] reach every topic.
    assert all("每经头条" in rules.exclude_paragraphs for rules in topics.values())


def test_defaults_are_frozen_and_each_call_returns_a_fresh_mapping():
    first = load_default_topics()
    first.pop("carbon-market")
    assert "carbon-market" in load_default_topics()
    with pytest.raises(AttributeError):
        load_default_topics()["carbon-market"].threshold = 1.0  # type: ignore[misc]


def test_user_terms_are_merged_into_the_defaults():
    defaults = load_default_topics()
    merged = merge_topics(defaults, {"carbon-market": {"terms": {"碳汇交易": 2, "碳市场": 5}}}, WHERE)
    weights = merged["carbon-market"].term_weights
    assert weights["碳汇交易"] == 2.0
    assert weights["碳市场"] == 5.0  # overridden
    assert weights["CCER"] == defaults["carbon-market"].term_weights["CCER"]  # kept
    assert merged["adaptation-2035"] is defaults["adaptation-2035"]


def test_weight_zero_removes_a_default_term_and_replace_terms_starts_over():
    defaults = load_default_topics()
    removed = merge_topics(defaults, {"carbon-market": {"terms": {"碳价": 0}}}, WHERE)
    assert "碳价" not in removed["carbon-market"].term_weights
    user = {"carbon-market": {"terms": {"碳市场": 3}, "replace_terms": True}}
    replaced = merge_topics(defaults, user, WHERE)
    assert replaced["carbon-market"].terms == (("碳市场", 3.0),)


def test_scalars_replace_and_exclusions_extend_unless_replaced():
    defaults = load_default_topics()
    base = defaults["carbon-market"]
    merged = merge_topics(defaults, {"carbon-market": {
        "threshold": 12, "title_boost": 1, "exclude": {"paragraphs": ["碳普惠"]},
    }}, WHERE)["carbon-market"]
    assert (merged.threshold, merged.title_boost) == (12.0, 1.0)
    assert merged.exclude_paragraphs == (*base.exclude_paragraphs, "碳普惠")
    replaced = merge_topics(defaults, {"carbon-market": {
        "exclude": {"paragraphs": ["碳普惠"]}, "replace_exclude": True,
    }}, WHERE)["carbon-market"]
    assert replaced.exclude_paragraphs == ("碳普惠",)
    assert replaced.exclude_phrases == base.exclude_phrases  # only the given lists are replaced


def test_cooccur_rules_are_appended():
    defaults = load_default_topics()
    merged = merge_topics(defaults, {"carbon-manager": {
        "cooccur": [{"terms": {"持证上岗": 1}, "anchors": ["碳排放"]}],
    }}, WHERE)["carbon-manager"]
    assert merged.cooccur[-1] == Cooccur(terms=(("持证上岗", 1.0),), anchors=("碳排放",))
    assert len(merged.cooccur) == len(defaults["carbon-manager"].cooccur) + 1


def test_enabled_false_drops_a_default_topic():
    merged = merge_topics(load_default_topics(), {"carbon-manager": {"enabled": False}}, WHERE)
    assert "carbon-manager" not in merged and len(merged) == 3


def test_a_user_adds_a_fifth_topic_without_python():
    topics = merge_topics(load_default_topics(), {"hydrogen": {
        "name": "氢能", "terms": {"氢能": 3, "加氢站": 3, "燃料电池": 2},
    }}, WHERE)
    hydrogen = topics["hydrogen"]
    assert len(topics) == 5
    assert hydrogen.hashtag == "#氢能"  # derived from the name
    assert hydrogen.threshold == load_default_topics()["carbon-market"].threshold  # from [defaults]
    verdict = classify_html("我省新建加氢站12座", HYDROGEN_ARTICLE, topics)
    assert verdict.topics == ("hydrogen",)
    assert {e.term for e in verdict.match("hydrogen").evidence} == {"氢能", "加氢站", "燃料电池"}


def test_a_fifth_topic_from_the_config_file(write_config):
    path = write_config("""
        [topics.hydrogen]
        telegram_chat = "@h2_news"
        name = "氢能"
        hashtag = "#氢能产业"
        threshold = 5
        [topics.hydrogen.terms]
        "氢能" = 3
        "加氢站" = 3
        [topics.carbon-market]
        telegram_chat = "@cm_chan"
        threshold = 10
    """)
    config = load_config(path, {})
    assert config.chats == {"hydrogen": "@h2_news", "carbon-market": "@cm_chan"}
    assert config.topics["hydrogen"].hashtag == "#氢能产业"
    assert config.topics["hydrogen"].terms == (("氢能", 3.0), ("加氢站", 3.0))
    assert config.topics["carbon-market"].threshold == 10.0


@pytest.mark.parametrize(("user", "message"), [
    ({"carbon-market": {"threshold": "high"}},
     'topics.carbon-market.threshold: expected a number, got "high"'),
    ({"carbon-market": {"treshold": 9}},
     'topics.carbon-market.treshold: unknown key (did you mean "threshold"?)'),
    ({"carbon-markte": {"threshold": 9}},
     'topics.carbon-markte: unknown topic "carbon-markte" (did you mean "carbon-market"?)'),
    ({"carbon-market": {"terms": {"碳价": -1}}},
     'topics.carbon-market.terms."碳价": expected a number 0 or more, got -1'),
    ({"carbon-market": {"terms": {"碳价": True}}},
     'topics.carbon-market.terms."碳价": expected a number, got true'),
    ({"carbon-market": {"terms": ["碳价"]}},
     'topics.carbon-market.terms: expected a table of "term" = weight, got a list'),
    ({"carbon-market": {"min_focus": 2}},
     "topics.carbon-market.min_focus: expected a number between 0 and 1, got 2"),
    ({"carbon-market": {"hashtag": "#碳 市场"}},
     'topics.carbon-market.hashtag: expected \'#\' and letters, digits or \'_\', got "#碳 市场"'),
    ({"carbon-market": {"exclude": {"paragraph": ["x"]}}},
     'topics.carbon-market.exclude.paragraph: unknown key (did you mean "paragraphs"?)'),
    ({"carbon-market": {"exclude": {"titles": "涨停"}}},
     'topics.carbon-market.exclude.titles: expected a list of strings, got "涨停"'),
    ({"carbon-market": {"cooccur": [{"terms": {"配额": 1}, "anchor": ["碳"]}]}},
     'topics.carbon-market.cooccur[0].anchor: unknown key (did you mean "anchors"?)'),
    ({"carbon-market": {"replace_terms": "yes"}},
     'topics.carbon-market.replace_terms: expected true or false, got "yes"'),
    ({"carbon-market": {"terms": {"碳价": 0}, "replace_terms": True}},
     "topics.carbon-market.terms: a topic needs at least one term with a weight above 0"),
    ({"hydrogen": {"name": "氢能", "terms": {}}},
     "topics.hydrogen.terms: a topic needs at least one term with a weight above 0"),
    ({"hydrogen": {"name": "氢能", "terms": {"  ": 1}}},
     'topics.hydrogen.terms: expected a non-empty phrase, got "  "'),
    ({"Hydrogen": {"name": "氢能", "terms": {"氢能": 1}}},
     "topics.Hydrogen: a topic id is lower-case letters, digits and '-', got \"Hydrogen\""),
    ({"all": {"name": "全部", "terms": {"碳": 1}}},
     'topics.all: the topic id "all" is reserved (the feed of every topic)'),
])
def test_invalid_rules_name_the_file_topic_and_key(user, message):
    with pytest.raises(RulesError) as caught:
        merge_topics(load_default_topics(), user, WHERE)
    assert str(caught.value).startswith(f"{WHERE}: {message}")


def test_unknown_topic_says_what_a_new_topic_needs():
    with pytest.raises(RulesError, match="a new topic needs at least name and terms"):
        merge_topics(load_default_topics(), {"hydrogen": {"terms": {"氢能": 3}}}, WHERE)


def test_a_whole_rules_document_with_its_own_defaults():
    topics = parse_topics({
        "defaults": {"threshold": 4, "exclude": {"paragraphs": ["免责声明"]}},
        "topics": {
            "a": {"name": "甲", "terms": {"甲烷": 2}},
            "b": {"name": "乙", "terms": {"乙醇": 2}, "threshold": 6, "enabled": True},
            "c": {"name": "丙", "terms": {"丙烷": 2}, "enabled": False},
        },
    }, "rules.toml")
    assert list(topics) == ["a", "b"]
    assert (topics["a"].threshold, topics["b"].threshold) == (4.0, 6.0)
    assert topics["a"].exclude_paragraphs == ("免责声明",)
    with pytest.raises(RulesError, match=r'^rules.toml: defualts: unknown key \(did you mean "defaults"\?\)'):
        parse_topics({"defualts": {}, "topics": {"a": {"name": "甲", "terms": {"甲烷": 2}}}}, "rules.toml")


def test_fold_makes_width_case_and_quotes_match():
    assert fold("ＣＣＥＲ") == "ccer"
    assert fold("《巴黎协定》第六条") == "巴黎协定第六条"
    assert fold("元／吨") == "元/吨"
    # Traditional → Simplified is the classifier's job (tests/classify/test_mainland.py), not fold's.
    assert fold("氣候適應") == "氣候適應"


def test_the_chat_key_of_a_config_table_is_not_a_rule():
    user = {"carbon-market": {"telegram_chat": "@cm", "threshold": 9}}
    merged = merge_topics(load_default_topics(), user, WHERE)
    assert merged["carbon-market"].threshold == 9.0


def test_frames_and_yield_to_are_parsed():
    doc = {"topics": {
        "a": {"name": "甲", "terms": {"甲烷": 2}, "yield_to": ["b"],
              "frames": [{"name": "甲→乙", "weight": 2, "all": [["甲烷"], ["排放", "泄漏"]]}]},
        "b": {"name": "乙", "terms": {"乙烯": 2}},
    }}
    rules = parse_topics(doc, "rules.toml")["a"]
    assert rules.yield_to == ("b",)
    assert rules.frames[0].name == "甲→乙" and rules.frames[0].weight == 2.0
    assert rules.frames[0].slots == (("甲烷",), ("排放", "泄漏"))


@pytest.mark.parametrize(("table", "message"), [
    ({"yield_to": ["c"]}, r'^rules.toml: topics.a.yield_to\[0\]: not another topic: "c"'),
    ({"yield_to": ["a"]}, r'^rules.toml: topics.a.yield_to\[0\]: not another topic: "a"'),
    ({"frames": [{"name": "x", "weight": 1, "all": [["甲"]]}]},
     r"^rules.toml: topics.a.frames\[0\].all: expected a list of at least two lists of phrases"),
    ({"frames": [{"name": "x", "all": [["甲"], ["乙"]]}]}, r"^rules.toml: topics.a.frames\[0\].weight: required"),
    ({"frames": [{"name": "x", "weight": 1, "all": [["甲"], []]}]},
     r"^rules.toml: topics.a.frames\[0\].all: every slot needs at least one phrase"),
    ({"frames": [{"name": "x", "weight": 1, "al": [["甲"], ["乙"]]}]},
     r'^rules.toml: topics.a.frames\[0\].al: unknown key \(did you mean "all"\?\)'),
])
def test_bad_frames_and_yields_name_the_key(table, message):
    doc = {"topics": {"a": {"name": "甲", "terms": {"甲烷": 2}, **table}, "b": {"name": "乙", "terms": {"乙烯": 2}}}}
    with pytest.raises(RulesError, match=message):
        parse_topics(doc, "rules.toml")


def test_a_user_who_disables_the_topic_yielded_to_keeps_the_other():
    merged = merge_topics(load_default_topics(), {"carbon-manager": {"enabled": False}}, "feedbot.toml")
    assert "carbon-manager" not in merged and merged["carbon-market"].yield_to == ()
