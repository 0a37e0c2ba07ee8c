"""The classifier on articles written for these tests in the style of the source (<p> paragraphs,
short heading paragraphs): what routes, what does not, and which part each channel gets."""

from __future__ import annotations

import pytest

from feedbot.classify.scoring import EXCERPT_MAX_CHARS, classify, classify_html, compile_topics, explain
from feedbot.model import Entry
from feedbot.settings.topics import load_default_topics, merge_topics
from feedbot.sources.normalize import normalize

TOPICS = load_default_topics()


def html(*paragraphs: str) -> str:
    return "\n".join(f"<p>{p}</p>" for p in paragraphs)


def article(title: str, body: str):
    return normalize(Entry(source_id="test", key=title, url=None, title=title, body_html=body))


def scores(title: str, body: str, topics=TOPICS):
    return {s.rules.id: s for s in explain(article(title, body), topics)}


# A briefing with one section per topic, like the seed article.
BRIEFING_TITLE = "生态环境部通报今年应对气候变化重点工作"
BRIEFING = html(
    "生态环境部在例行新闻发布会上介绍了今年应对气候变化各项工作的总体安排和进展情况。",
    "稳步扩大全国碳市场覆盖范围",
    "全国碳市场第二个履约周期已经收官，重点排放单位配额清缴完成率超过99%。下一步将把钢铁、水泥行业纳入全国碳市场，"
    "并持续加强碳排放数据质量管理。",
    "温室气体自愿减排交易市场将扩大方法学范围，CCER项目审定与核查工作将更加规范。",
    "深化气候适应型城市建设试点",
    "在适应气候变化方面，各地将继续落实《国家适应气候变化战略2035》，推动各省印发适应气候变化行动方案，开展城市气候风险评估。",
    "第二批气候适应型城市建设试点今年启动，重点提升城市基础设施抵御极端天气的能力。",
    "推进气候投融资试点",
    "23个气候投融资试点地方已建立气候投融资项目库，引导金融机构加大对应对气候变化项目的融资支持。",
    "培养碳排放管理员队伍",
    "人社部门将完善碳排放管理员国家职业标准，开展职业技能等级认定，为企业输送专业的碳排放管理员。"
    "目前，已有上万名从业人员参加了相关培训。",
)

# An air-pollution story that lists the carbon market among many policies.
POLLUTION_TITLE = "多地打好蓝天保卫战 秋冬季PM2.5浓度同比下降"
POLLUTION = html(
    "入秋以来，京津冀及周边地区持续推进散煤治理和重污染天气应对，区域PM2.5平均浓度同比下降8.6%，重污染天数明显减少。",
    "据介绍，各地今年累计完成散煤替代一百二十万户，淘汰燃煤小锅炉三千余台，并对钢铁、焦化行业实施超低排放改造。"
    "有关部门还将统筹推进排污许可、环评审批、全国碳市场建设、生态补偿和环境信用评价等多项制度改革，形成治污合力。",
    "下一步，生态环境部门将加强臭氧与PM2.5协同控制，开展柴油货车污染治理专项行动，严厉打击自动监测数据弄虚作假行为。",
    "专家表示，冬季供暖期叠加不利气象条件，区域大气污染防治仍面临较大压力，需要继续做好重污染天气应急响应。"
    "与此同时，碳排放权交易、用能权交易等市场化手段的作用也有待进一步发挥，工业企业的节能改造和清洁能源替代仍需加快推进。",
)


def test_a_multi_topic_briefing_goes_to_each_topic_with_its_own_section():
    verdict = classify(article(BRIEFING_TITLE, BRIEFING), TOPICS)
    assert set(verdict.topics) == {"carbon-market", "adaptation-2035", "climate-finance", "carbon-manager"}
    market = verdict.match("carbon-market").excerpt
    assert market.startswith("稳步扩大全国碳市场覆盖范围\n全国碳市场第二个履约周期已经收官")
    assert "CCER项目审定" in market and "气候适应型城市" not in market and "例行新闻发布会" not in market
    adaptation = verdict.match("adaptation-2035").excerpt
    assert adaptation.startswith("深化气候适应型城市建设试点") and "抵御极端天气" in adaptation
    assert "配额" not in adaptation and "碳排放管理员" not in adaptation
    assert verdict.match("climate-finance").excerpt.startswith("推进气候投融资试点\n23个气候投融资试点")
    manager = verdict.match("carbon-manager").excerpt
    assert manager == ("培养碳排放管理员队伍\n人社部门将完善碳排放管理员国家职业标准，开展职业技能等级认定，"
                       "为企业输送专业的碳排放管理员。目前，已有上万名从业人员参加了相关培训。")


def test_a_topic_that_fills_one_section_is_scored_on_that_section():
    by_topic = scores(BRIEFING_TITLE, BRIEFING)
    assert by_topic["carbon-manager"].scope == "培养碳排放管理员队伍"
    assert by_topic["carbon-manager"].focus > 0.9


def test_passing_mentions_in_a_pollution_story_do_not_route():
    market = scores(POLLUTION_TITLE, POLLUTION)["carbon-market"]
    # The terms are there and would pass the threshold on their own ...
    assert {e.term for e in market.evidence} == {"全国碳市场", "碳排放权交易"}
    assert market.strength >= TOPICS["carbon-market"].threshold
    # ... but they cover a sliver of the text, so the article is not about the carbon market.
    assert market.focus < 0.15
    assert not market.matched and market.excerpt == ""
    assert classify_html(POLLUTION_TITLE, POLLUTION, TOPICS).topics == ()


def test_the_same_vocabulary_concentrated_in_the_story_routes():
    body = html(
        "全国碳市场今日迎来开市一周年。一年来，碳排放配额累计成交量1.94亿吨，累计成交额84.92亿元。",
        "业内人士表示，全国碳市场运行总体平稳，碳价稳中有升，重点排放单位履约意识明显增强。",
    )
    verdict = classify_html("全国碳市场开市满一年 配额成交量近2亿吨", body, TOPICS)
    assert verdict.topics == ("carbon-market",)
    assert verdict.match("carbon-market").excerpt.startswith("全国碳市场今日迎来开市一周年。")


def test_title_only_evidence_decides_a_flash_too_short_to_judge():
    flash = html("记者从生态环境部获悉，相关方案已于今日正式印发。")
    by_topic = scores("全国碳市场第二个履约周期配额分配方案印发", flash)
    market = by_topic["carbon-market"]
    assert market.matched
    assert {e.where for e in market.evidence} == {"title"}
    title_weight = TOPICS["carbon-market"].term_weights["全国碳市场"] * TOPICS["carbon-market"].title_boost
    assert next(e for e in market.evidence if e.term == "全国碳市场").weight == title_weight


def test_title_only_evidence_does_not_carry_a_long_story_about_something_else():
    body = html(
        "今年以来，我省光伏组件企业订单饱满，多家企业生产线满负荷运转，一季度组件出货量同比增长四成以上。",
        "记者在一家组件企业看到，新投产的生产线正在加紧调试，企业负责人表示，海外订单已经排到了下半年。",
        "业内人士分析，硅料价格回落带动组件成本下降，分布式光伏装机需求持续释放，产业链上下游开工率明显提升。",
    )
    market = scores("碳市场扩容在即 光伏组件企业订单饱满", body)["carbon-market"]
    assert [e.where for e in market.evidence] == ["title"]
    assert market.focus == 0 and not market.matched


def test_the_promo_line_of_a_news_site_is_not_the_article():
    body = html(
        "每经AI快讯，某基金公司公告称，原基金经理因个人原因离任，新聘任基金经理任职日期为今日。",
        "每经头条（nbdtoutiao）——全国碳交易开市：首日成交2.1亿元，碳排放配额挂牌协议交易成交量410万吨",
        "免责声明：本文内容与数据仅供参考，不构成投资建议，使用前核实。",
    )
    market = scores("某基金公司新聘任基金经理", body)["carbon-market"]
    assert market.evidence == () and not market.matched


def test_excluded_phrases_and_stock_titles():
    board = scores("碳交易板块午后拉升 多股涨停", html(
        "午后碳交易板块震荡走高，截至收盘板块涨3.5%，多只个股涨停。",
        "分析人士认为，全国碳市场即将上线交易，碳排放权交易有望为相关企业带来增量收益。",
    ))["carbon-market"]
    assert "碳交易" not in {e.term for e in board.evidence}  # 碳交易 inside 碳交易板块 does not count
    assert board.vetoed == "the title has an excluded phrase" and not board.matched
    # The same exclusions in a user's own topic work the same way.
    topics = merge_topics(TOPICS, {"hydrogen": {
        "name": "氢能", "terms": {"氢能": 3}, "exclude": {"phrases": ["氢能源车"], "paragraphs": ["广告"]},
    }}, "test.toml")
    hydrogen = scores("城市交通新变化", html(
        "街头的氢能源车越来越多，市民出行选择更加丰富。",
        "广告：氢能科普展本周末开幕，欢迎参观。",
    ), topics)["hydrogen"]
    assert hydrogen.evidence == ()


def test_context_terms_count_only_next_to_their_anchor():
    quota = scores("钢材进口配额分配完成", html(
        "商务部门表示，今年钢材进口配额已分配完毕，企业应按时履约，核查工作将于下月开展。",
    ))["carbon-market"]
    assert quota.evidence == ()
    anchored = scores("电力企业开展年度核算", html(
        "各发电企业正在准备碳排放报告，全国碳市场配额清缴前需完成核查。",
    ))["carbon-market"]
    assert {"配额", "清缴", "核查"} <= {e.term for e in anchored.evidence}


def test_a_traditional_character_reprint_matches_the_simplified_rules():
    body = html(
        "各有關部門和地方持續落實《國家適應氣候變化戰略2035》，推進適應氣候變化重點工作並取得實效。",
        "全國已有30個省份印發實施省級適應氣候變化行動方案，39個試點城市積極探索深化氣候適應型城市建設。",
    )
    verdict = classify_html("適應氣候變化工作取得實效", body, TOPICS)
    assert verdict.topics == ("adaptation-2035",)
    assert "國家適應氣候變化戰略2035" in verdict.match("adaptation-2035").excerpt  # the reader's own text


def test_latin_terms_match_whole_words_only():
    topics = merge_topics(TOPICS, {"ets-en": {"name": "ETS", "terms": {"ETS": 4}}}, "test.toml")
    body = html("Global markets and asset prices rose as investors weighed new data sets on inflation.")
    assert scores("Markets rally", body, topics)["ets-en"].evidence == ()
    body = html("The EU ETS price rose. The ETS covers power and industry; ETS allowances trade daily.")
    assert scores("EU ETS price rises", body, topics)["ets-en"].matched


def test_excerpt_is_capped_at_a_sentence_end():
    sentence = "全国碳市场运行平稳，重点排放单位按时完成配额清缴，碳价稳中有升。"
    body = html(*[sentence * 6 for _ in range(10)])
    excerpt = classify_html("全国碳市场运行平稳", body, TOPICS).match("carbon-market").excerpt
    assert 1000 < len(excerpt) <= EXCERPT_MAX_CHARS
    assert excerpt.endswith("。") and sentence in excerpt


def test_one_giant_paragraph_without_sentence_ends_is_cut_with_an_ellipsis():
    body = html("全国碳市场" + "、碳排放权交易" * 400)
    excerpt = classify_html("全国碳市场", body, TOPICS).match("carbon-market").excerpt
    assert len(excerpt) == EXCERPT_MAX_CHARS and excerpt.endswith("…")


def test_unmatched_topics_are_scored_but_carry_no_excerpt():
    verdict = classify(article(POLLUTION_TITLE, POLLUTION), TOPICS)
    assert [m.topic for m in verdict.matches] == list(TOPICS)
    assert all(m.excerpt == "" and not m.matched for m in verdict.matches)


def test_the_automaton_is_built_once_per_rule_set():
    assert compile_topics(TOPICS) is compile_topics(load_default_topics())
    changed = merge_topics(TOPICS, {"carbon-market": {"threshold": 9}}, "test.toml")
    assert compile_topics(changed) is not compile_topics(TOPICS)


@pytest.mark.parametrize("body", ["", "<p></p>", "<p>   </p>"])
def test_empty_articles_match_nothing(body):
    assert classify_html("", body, TOPICS).topics == ()


def test_require_any_must_occur_outside_page_furniture():
    topics = merge_topics(TOPICS, {"ccus": {
        "name": "碳捕集", "terms": {"碳捕集": 3, "封存": 2}, "require_any": ["CCUS"], "threshold": 4,
    }}, "test.toml")
    body = html("我国首个百万吨级碳捕集利用与封存项目全面建成投产，每年可封存二氧化碳百万吨。",
                "该碳捕集项目把捕集的二氧化碳注入油田驱油，实现了封存与增产双赢。")
    without = scores("百万吨级碳捕集项目投产", body, topics)["ccus"]
    assert without.strength >= 4 and without.vetoed == "none of require_any occurs" and not without.matched
    promo = scores("百万吨级碳捕集项目投产", body + html("免责声明：CCUS相关内容仅供参考。"), topics)["ccus"]
    assert not promo.matched  # the disclaimer is not the article
    assert scores("百万吨级CCUS项目投产", body, topics)["ccus"].matched
