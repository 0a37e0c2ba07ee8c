"""Routing on wording the rules were not fitted to: Taiwan/Hong Kong usage, roundups, the background
topic of a profile, and one sentence per vocabulary group of topics.toml (all written for these tests)."""

from __future__ import annotations

import pytest

from feedbot.classify.layout import is_roundup
from feedbot.classify.mainland import is_traditional, to_mainland
from feedbot.classify.scoring import explain
from feedbot.classify.text import units
from feedbot.model import Entry
from feedbot.settings.topics import load_default_topics
from feedbot.sources.normalize import normalize

TOPICS = load_default_topics()


def html(*paragraphs: str) -> str:
    return "\n".join(f"<p>{p}</p>" for p in paragraphs)


def article(title: str, body: str):
    return normalize(Entry(source_id="test", key=title, url=None, title=title, body_html=body))


def scores(title: str, *paragraphs: str):
    return {s.rules.id: s for s in explain(article(title, html(*paragraphs)), TOPICS)}


def routed(title: str, *paragraphs: str) -> set[str]:
    return {topic for topic, s in scores(title, *paragraphs).items() if s.matched}


def terms(score) -> set[str]:
    return {e.term for e in score.evidence}


# --- Traditional characters: Taiwan and Hong Kong usage -------------------------------------------

def test_taiwan_usage_reads_as_mainland_words():
    assert to_mainland("台灣碳權交易所今年上架國際減量額度") == "台湾碳排放权交易所今年上架国际减排量"
    # 計畫 is Taiwan's word for 计划: OpenCC's tw2sp phrase table maps it.
    assert to_mainland("環境部推動國家氣候變遷調適行動計畫，強化調適能力") == \
        "环境部推动国家适应气候变化行动计划，强化适应能力"
    # 查驗機構/查驗人員 are verification bodies and verifiers; 查驗 alone is left (it is also customs
    # inspection), so 查驗報告 stays.
    assert to_mainland("查驗機構的查驗人員須完成訓練，確證與查驗報告送主管機關") == \
        "核查机构的核查人员须完成训练，审定与查验报告送主管机关"


def test_simplified_text_is_left_as_published():
    text = "乾隆年间的著作中已有关于旱涝的记载，今天的城市更需要适应气候变化。"
    assert not is_traditional(text)
    assert to_mainland(text) == text


def test_a_taiwan_carbon_fee_and_credit_story_routes_to_carbon_market():
    got = scores(
        "環境部公告碳費費率 企業可用減量額度扣抵",
        "環境部今日公告碳費收費費率，排放量較大的事業須依排放量繳納碳費，並可提出自主減量計畫申請優惠費率。",
        "事業取得的國內減量額度及台灣碳權交易所上架的國外碳權，可在一定比例內扣抵碳費排放量。",
    )
    market = got["carbon-market"]
    assert market.matched
    # 碳權 and 減量額度 were matched as the mainland rules' 碳排放权 and 减排量.
    assert {"碳费", "碳排放权"} <= terms(market)


def test_a_taiwan_adaptation_plan_routes_to_adaptation():
    got = scores(
        "行政院核定國家氣候變遷調適行動計畫",
        "行政院核定第三期國家氣候變遷調適行動計畫，涵蓋災害、水資源、農業生產及健康等領域的調適策略。",
        "計畫要求各部會評估氣候變遷對農業與公共衛生的風險，提升各部門調適能力。",
    )
    assert got["adaptation-2035"].matched
    assert "适应气候变化" in terms(got["adaptation-2035"])


def test_a_hong_kong_climate_finance_story_routes_to_climate_finance():
    got = scores(
        "香港推動氣候融資 助亞洲應對氣候變化",
        "特區政府表示，香港將發揮國際金融中心優勢，為區內應對氣候變化的項目提供融資。",
        "綠色和可持續金融跨機構督導小組將研究氣候融資的標準，引導更多資金投入減緩和適應氣候變化項目。",
    )
    assert got["climate-finance"].matched
    assert {"气候融资", "资金→应对气候变化"} <= terms(got["climate-finance"])


def test_a_taiwan_verifier_career_story_routes_to_carbon_manager():
    # Taiwan names the trade 溫室氣體查驗員 / 盤查員 and certifies it as iPAS 淨零碳規劃管理師.
    got = scores(
        "溫室氣體查驗員證照熱門 淨零碳規劃管理師報考人數創新高",
        "碳費上路後，企業對溫室氣體盤查員與查驗員的需求大增，多所大學開設培訓課程，結訓後可報考證照。",
        "經濟部表示，淨零碳規劃管理師考試今年報名人數倍增，具備查驗能力的人才起薪明顯高於一般職缺。",
    )
    assert got["carbon-manager"].matched
    assert {"温室气体核查员", "碳排放管理师"} <= terms(got["carbon-manager"])


# --- Roundups and lists ----------------------------------------------------------------------------

ROUNDUP_ITEMS = (
    "1、央行今日开展2000亿元逆回购操作，维护月末流动性合理充裕。",
    "2、国家统计局：一季度国内生产总值同比增长5.3%，消费对经济增长贡献率超过七成。",
    "3、全国碳市场今日收盘价每吨92元，碳排放配额成交量30万吨，重点排放单位履约进度过半。",
    "4、多家银行下调存款利率，五年期定存利率降至2%以下。",
    "5、沪深两市成交额连续三日突破万亿元，北向资金净买入80亿元。",
    "6、国际油价小幅回落，布伦特原油期货跌至每桶82美元。",
)


def test_a_morning_roundup_with_one_carbon_market_item_does_not_route():
    got = scores("财经早报：央行开展逆回购 一季度GDP增长5.3%", *ROUNDUP_ITEMS)
    market = got["carbon-market"]
    assert market.evidence, "the carbon-market item is seen"
    assert not market.matched
    assert market.vetoed == "one item of a roundup or list, not the article's subject"


def test_the_same_item_as_a_story_of_its_own_routes():
    assert "carbon-market" in routed("全国碳市场收盘价每吨92元", ROUNDUP_ITEMS[2][2:])


def test_a_numbered_list_is_a_roundup_even_without_a_digest_headline():
    assert is_roundup(units(article("本周几件事", html(*ROUNDUP_ITEMS))))
    assert not is_roundup(units(article("一件事", html(ROUNDUP_ITEMS[0], ROUNDUP_ITEMS[1]))))


def test_a_roundup_about_the_carbon_market_routes_by_its_headline():
    items = [f"{n}、{text}" for n, text in enumerate((
        "全国碳市场本周收盘价每吨95元，碳排放配额成交量120万吨。",
        "广东碳市场配额成交额环比增长两成。",
        "CCER项目审定与核查机构名单更新。",
        "欧盟碳市场价格回落至每吨65欧元。",
        "湖北碳市场开展配额有偿竞价。",
    ), 1)]
    assert "carbon-market" in routed("碳市场周报：全国碳价小幅上涨", *items)


# --- A profile whose work touches trading -------------------------------------------------------

def test_a_carbon_manager_profile_does_not_also_go_to_carbon_market():
    got = scores(
        "碳排放管理员小李：把企业碳账算清楚",
        "小李是一家电厂的碳排放管理员，每天核对燃煤量和发电量数据。",
        "电厂是全国碳市场的重点排放单位，他要在履约期前算清配额缺口，协助公司完成碳排放权交易和配额清缴。",
        "他说，碳排放管理员这个新职业需要懂监测、懂核算，也要懂交易规则，去年他通过了职业技能等级认定。",
    )
    assert got["carbon-manager"].matched
    market = got["carbon-market"]
    assert not market.matched
    assert market.vetoed and "carbon-manager" in market.vetoed


# --- One sentence per vocabulary group ----------------------------------------------------------

@pytest.mark.parametrize(("topic", "term", "title", "body"), [
    # carbon-market: 《碳排放权交易管理暂行条例》
    ("carbon-market", "温室气体重点排放单位", "温室气体重点排放单位名录公布",
     "省生态环境厅公布今年温室气体重点排放单位名录，共有312家企业纳入，须按时报送年度排放报告。"),
    # carbon-market: CCER 管理办法
    ("carbon-market", "温室气体自愿减排项目", "首批温室气体自愿减排项目完成登记",
     "按照新的管理办法，首批温室气体自愿减排项目已通过审定与核查并完成登记，项目方法学涵盖造林和海上风电。"),
    # carbon-market: Paris Agreement Article 6
    ("carbon-market", "国际转让的减缓成果", "两国签署国际转让的减缓成果合作协议",
     "根据巴黎协定第六条，双方将开展国际转让的减缓成果交易，所转让的减排量计入买方国家自主贡献。"),
    # adaptation-2035: 战略2035 sector vocabulary
    ("adaptation-2035", "气候适应型农业", "我省推广气候适应型农业",
     "省农业农村厅启动气候适应型农业示范，调整种植结构和品种布局，推广抗逆品种，加强农业气象灾害预警。"),
    # adaptation-2035: UNFCCC adaptation vocabulary
    ("adaptation-2035", "全球适应目标", "谈判各方就全球适应目标指标达成一致",
     "各方同意以一套指标衡量全球适应目标进展，并鼓励各国在2025年前提交国家适应计划。"),
    # adaptation-2035: the risk framing
    ("adaptation-2035", "气候变化风险→领域", "专家：高温热浪威胁公众健康",
     "专家指出，气候变化对人体健康的风险正在上升，高温热浪使心脑血管疾病发病增加。"
     "气候变暖对城市基础设施的冲击也在加大。疾控部门将建立高温健康风险评估和监测预警机制。"),
    # climate-finance: 指导意见 and 试点工作方案
    ("climate-finance", "气候投融资项目库", "市气候投融资项目库入库项目达120个",
     "市气候投融资项目库新增入库项目30个，总投资额超过200亿元，银行将为其中的气候友好型项目提供优惠贷款。"),
    # climate-finance: UNFCCC finance
    ("climate-finance", "损失与损害基金", "损失与损害基金董事会确定首批资助方式",
     "损失与损害基金董事会会议决定，首批赠款将支持受气候灾害影响的最不发达国家和小岛屿国家。"),
    ("climate-finance", "新集体量化目标", "大会通过气候资金新集体量化目标",
     "大会决定，发达国家到2035年每年至少提供3000亿美元，帮助发展中国家应对气候变化，这一新集体量化目标取代此前的目标。"),
    # climate-finance: the money framing
    ("climate-finance", "资金→应对气候变化", "开发银行扩大对发展中国家的支持",
     "多边开发银行宣布，未来五年将为发展中国家应对气候变化提供1200亿美元资金，其中一半用于适应气候变化项目。"
     "各国财政部长呼吁提高赠款比例，为应对气候变化的投资降低融资成本。"),
    # carbon-manager: the occupation standard's 工种 and the verification profession
    ("carbon-manager", "碳核查员", "我市首批碳核查员通过考核",
     "我市首批42名碳核查员通过考核，他们将作为核查人员参与企业年度碳排放核查，持证上岗。"),
    ("carbon-manager", "温室气体排放管理员", "企业急需温室气体排放管理员",
     "一份招聘报告显示，温室气体排放管理员岗位需求同比增长六成，薪资水平高于制造业平均，具备职业技能等级证书者更受青睐。"),
])
def test_each_vocabulary_group_routes_its_own_sentence(topic, term, title, body):
    got = scores(title, body)
    assert term in terms(got[topic])
    assert got[topic].matched
