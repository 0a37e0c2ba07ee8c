"""Topic rules as data: parse and validate topics.toml, merge the user's overrides."""

from __future__ import annotations

import difflib
import math
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

from feedbot.errors import RulesError
from feedbot.model import ALL_CHANNEL

DEFAULTS_WHERE = "feedbot/data/topics.toml"
TOPIC_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
HASHTAG = re.compile(r"^#\w+$")

# Keys a topic table may carry, and the keys of its sub-tables.
SCALAR_KEYS = ("name", "description", "hashtag", "threshold", "min_focus", "title_boost", "heading_boost")
TOPIC_KEYS = (
    *SCALAR_KEYS, "terms", "cooccur", "require_any", "exclude", "enabled",
    "replace_terms", "replace_cooccur", "replace_exclude",
)
CONFIG_ONLY_KEYS = ("telegram_chat",)  # read by feedbot.settings.config, not a rule
_HIGH = {"min_focus": 1.0}  # upper bounds of the numeric settings that have one
DEFAULTS_KEYS = ("threshold", "min_focus", "title_boost", "heading_boost", "exclude")
COOCCUR_KEYS = ("terms", "anchors")
EXCLUDE_KEYS = ("phrases", "paragraphs", "titles")


@dataclass(frozen=True)
class Cooccur:
    """Context terms that count only in a paragraph that also has one of the anchors."""

    terms: tuple[tuple[str, float], ...]
    anchors: tuple[str, ...] = ()  # empty: any of the topic's own terms is an anchor


@dataclass(frozen=True)
class TopicRules:
    """One channel's rules: what it is called and which words make an article belong to it."""

    id: str
    name: str
    description: str
    hashtag: str
    terms: tuple[tuple[str, float], ...]  # (phrase, weight), weight > 0
    cooccur: tuple[Cooccur, ...] = ()
    require_any: tuple[str, ...] = ()  # at least one must occur somewhere, else no match
    exclude_phrases: tuple[str, ...] = ()  # a term inside one of these does not count
    exclude_paragraphs: tuple[str, ...] = ()  # a paragraph containing one of these is ignored
    exclude_titles: tuple[str, ...] = ()  # an article whose title has one of these never matches
    threshold: float = 8.0  # score needed to match
    min_focus: float = 0.3  # share of the text (or of one section) that must be about the topic
    title_boost: float = 2.5
    heading_boost: float = 1.5

    @property
    def term_weights(self) -> dict[str, float]:
        """The terms as a mapping."""
        return dict(self.terms)


# Traditional → simplified for characters common in this news (generated once with OpenCC); a
# traditional-character reprint must match the same simplified rules.
_TRADITIONAL = (
    "萬與專業叢東絲兩嚴並喪個豐臨爲麗舉麼義烏樂習鄉書買亂爭於虧雲亞產畝親億僅從倉儀們價衆優夥會偉傳傷倫佈"
    "體餘來側債償儲兒兌黨蘭關興養內岡冊寫軍農馮衝決況凍淨準減幾憑凱擊劃劉則剛創別劑劍劇辦務動勵勁勞勢匯區"
    "醫華協單賣佔衛卻廠廳歷壓廈縣參雙發變敘疊臺葉號籲後嗎噸聽啓吳員諮鹹響譁啟嘯噴團園圍國圖圓場壞塊堅壇壩"
    "壟壘墾堝報壯聲處備復夠夢頭誇夾奪奮獎奧婦娛嫺嬰孫學孿寧寶實寵審宮寬賓對尋導壽將爾塵嘗盡層屆屬嶼歲崗島"
    "巖嶺嶽峽峯鞏幣帥師簾帶幫幗幹廣莊慶牀庫應龐廢廩開異張強彈歸當錄徹徵徑懷態總懟恆惡悅驚慣憤願戲戰戶執擴"
    "掃揚擾撫搶護擔擬擁擇掛撾擋揮損換據摻擱攜攝擺搖撐斂數鬥斬斷無舊時顯晉曉暈暉暫術機雜權槓條楊傑極構樞槍"
    "柵標棧棟欄樹樣橋檢樓榮橫歡歐殘毀畢氣氫漢溝沒滬澤潔淺測濟瀏濃塗湧濤澇滌潤漲淵漸滲溫遊灣溼滾滯滿濾濱灘"
    "潛滅燈靈竈災爐煒點為煉烴煩燒熱煥愛牽狀獨豬獻瑪環現甌産電畫暢療瘋鹽監蓋盤矚礦碼磚礪礎碩確礙鹼稟祿離稈"
    "種祕積稱稅穩窮競筆筍築籌籤簡節類粵糞糧紀約級緊細統經綜綠緩繞繼續紅纖緯純紗綱納綸紛紙紋紡紐線練組織終"
    "紹結給絡絕績維綿繃綢緬纜締編緣繽縮繳網羅罰羣翹職聯肅脹脅膽勝膠脈臍腦脫臉騰艦艙艱豔藝蘇蘋範繭荊薦蕎薈"
    "蕩滎藥獲營薩藍蘊慮虛蟲雖蝕銜補襲裝規視觀見覽覺觸計記設許評詢試認誕説諾謂識議訂討讓訓訊講訝論訪證訴診"
    "詞詩誠話該詳語誤說請諸讀課調諒談謀諧謝譜貢貫資質貝負財責賢敗賬貨貧購貯貼貴貸貿費賀賈賃賦賭賞賴賺賽贊"
    "贈贏贛趙趕趨躍踐蹤較轄轉車軌軒輪軟軻軸輕載輔輛輩輝輻輯輸辭邊遼達遷過邁運還這進遠違連遲迴跡適選遜遞邏"
    "遺鄧郵鄰鄭採釋裏鑑鋪鏡針釕鈣鈦鍾鈉鋼鑰鎢鉤鈁錢鈷鐵鉑鈴銅鋁鋌銘銥銨銀鑄鏈銷鎖鋰鍋鋯鋒鋅銳錯錨錫鑼鍵錳"
    "鎂鎮鎳鎊長門間閃閉問闖閒聞閩閥閣閡閱閾闡闊隊陽陰陣階際陸陳陝險隨隱難霧靜韌韓項預領頁頂頃順須顧頓頒頗"
    "頸頻穎顆題顏額風飛餑飢飪飯飲飾飽飼餓饋馬馳驅駛駐駕驍驗駿騎驟魯鮑鮮鰲鳥雞鳴鴉鴿鴻鸛麥黃齊齡龍"
)
_SIMPLIFIED = (
    "万与专业丛东丝两严并丧个丰临为丽举么义乌乐习乡书买乱争于亏云亚产亩亲亿仅从仓仪们价众优伙会伟传伤伦布"
    "体余来侧债偿储儿兑党兰关兴养内冈册写军农冯冲决况冻净准减几凭凯击划刘则刚创别剂剑剧办务动励劲劳势汇区"
    "医华协单卖占卫却厂厅历压厦县参双发变叙叠台叶号吁后吗吨听启吴员咨咸响哗启啸喷团园围国图圆场坏块坚坛坝"
    "垄垒垦埚报壮声处备复够梦头夸夹夺奋奖奥妇娱娴婴孙学孪宁宝实宠审宫宽宾对寻导寿将尔尘尝尽层届属屿岁岗岛"
    "岩岭岳峡峰巩币帅师帘带帮帼干广庄庆床库应庞废廪开异张强弹归当录彻征径怀态总怼恒恶悦惊惯愤愿戏战户执扩"
    "扫扬扰抚抢护担拟拥择挂挝挡挥损换据掺搁携摄摆摇撑敛数斗斩断无旧时显晋晓晕晖暂术机杂权杠条杨杰极构枢枪"
    "栅标栈栋栏树样桥检楼荣横欢欧残毁毕气氢汉沟没沪泽洁浅测济浏浓涂涌涛涝涤润涨渊渐渗温游湾湿滚滞满滤滨滩"
    "潜灭灯灵灶灾炉炜点为炼烃烦烧热焕爱牵状独猪献玛环现瓯产电画畅疗疯盐监盖盘瞩矿码砖砺础硕确碍碱禀禄离秆"
    "种秘积称税稳穷竞笔笋筑筹签简节类粤粪粮纪约级紧细统经综绿缓绕继续红纤纬纯纱纲纳纶纷纸纹纺纽线练组织终"
    "绍结给络绝绩维绵绷绸缅缆缔编缘缤缩缴网罗罚群翘职联肃胀胁胆胜胶脉脐脑脱脸腾舰舱艰艳艺苏苹范茧荆荐荞荟"
    "荡荥药获营萨蓝蕴虑虚虫虽蚀衔补袭装规视观见览觉触计记设许评询试认诞说诺谓识议订讨让训讯讲讶论访证诉诊"
    "词诗诚话该详语误说请诸读课调谅谈谋谐谢谱贡贯资质贝负财责贤败账货贫购贮贴贵贷贸费贺贾赁赋赌赏赖赚赛赞"
    "赠赢赣赵赶趋跃践踪较辖转车轨轩轮软轲轴轻载辅辆辈辉辐辑输辞边辽达迁过迈运还这进远违连迟回迹适选逊递逻"
    "遗邓邮邻郑采释里鉴铺镜针钌钙钛钟钠钢钥钨钩钫钱钴铁铂铃铜铝铤铭铱铵银铸链销锁锂锅锆锋锌锐错锚锡锣键锰"
    "镁镇镍镑长门间闪闭问闯闲闻闽阀阁阂阅阈阐阔队阳阴阵阶际陆陈陕险随隐难雾静韧韩项预领页顶顷顺须顾顿颁颇"
    "颈频颖颗题颜额风飞饽饥饪饭饮饰饱饲饿馈马驰驱驶驻驾骁验骏骑骤鲁鲍鲜鳌鸟鸡鸣鸦鸽鸿鹳麦黄齐龄龙"
)
_T2S = str.maketrans(_TRADITIONAL, _SIMPLIFIED)
_TRADITIONAL_CHARS = re.compile(f"[{_TRADITIONAL}]")
# Quotes and title marks vary between outlets (《巴黎协定》第六条 vs 巴黎协定第六条); matching ignores them.
_IGNORED = re.compile("[《》〈〉“”‘’「」『』\"']")


def fold(text: str) -> str:
    """Fold text for matching: NFKC (full-width → ASCII), lower case, simplified characters, no quotes."""
    text = _IGNORED.sub("", unicodedata.normalize("NFKC", text).lower())
    # Only a reprint in traditional characters pays for the translation.
    if len(_TRADITIONAL_CHARS.findall(text, 0, 2000)) >= 5:
        text = text.translate(_T2S)
    return text


@dataclass(frozen=True)
class RuleDefaults:
    """Values every topic inherits unless it sets its own (the [defaults] table)."""

    threshold: float = 8.0
    min_focus: float = 0.3
    title_boost: float = 2.5
    heading_boost: float = 1.5
    exclude_phrases: tuple[str, ...] = ()
    exclude_paragraphs: tuple[str, ...] = ()
    exclude_titles: tuple[str, ...] = ()


def load_default_topics() -> dict[str, TopicRules]:
    """The four channels shipped in feedbot/data/topics.toml."""
    return dict(_default_topics())


def merge_topics(defaults: dict[str, TopicRules], user: dict[str, dict], where: str) -> dict[str, TopicRules]:
    """Apply the user's [topics.*] tables (telegram_chat already removed) to the default topics.

    For a known topic: scalars replace; `terms` are merged (weight 0 removes a term) unless
    `replace_terms = true`; `cooccur` and `exclude` lists are extended unless `replace_cooccur` /
    `replace_exclude`; `enabled = false` drops the topic. An unknown id is a new topic and must
    give at least `name` and `terms`; it inherits the [defaults] of topics.toml.
    """
    merged = dict(defaults)
    if not isinstance(user, Mapping):
        raise RulesError(f"{where}: topics: expected a table, got {_show(user)}")
    for topic_id, table in user.items():
        path = f"topics.{topic_id}"
        if not isinstance(table, Mapping):
            raise RulesError(f"{where}: {path}: expected a table, got {_show(table)}")
        if topic_id in defaults:
            base = defaults[topic_id]
        elif "name" in table and "terms" in table:
            base = None
        else:
            raise RulesError(f"{where}: {path}: unknown topic {_show(topic_id)}"
                             f"{_suggest(topic_id, defaults)}; a new topic needs at least name and terms")
        if not _bool(table.get("enabled", True), where, f"{path}.enabled"):
            merged.pop(topic_id, None)
            continue
        merged[topic_id] = _build_topic(topic_id, table, base, _default_settings(), where)
    return merged


def parse_topics(data: Mapping[str, Any], where: str) -> dict[str, TopicRules]:
    """Build topics from a whole rules document: optional [defaults] and [topics.<id>] tables."""
    _check_keys(data, ("defaults", "topics"), where, "")
    settings = _parse_defaults(data.get("defaults", {}), where)
    tables = data.get("topics", {})
    if not isinstance(tables, Mapping) or not tables:
        raise RulesError(f"{where}: topics: expected at least one [topics.<id>] table")
    topics: dict[str, TopicRules] = {}
    for topic_id, table in tables.items():
        if not isinstance(table, Mapping):
            raise RulesError(f"{where}: topics.{topic_id}: expected a table, got {_show(table)}")
        if not _bool(table.get("enabled", True), where, f"topics.{topic_id}.enabled"):
            continue
        topics[topic_id] = _build_topic(topic_id, table, None, settings, where)
    return topics


def _default_document() -> dict[str, Any]:
    text = resources.files("feedbot").joinpath("data/topics.toml").read_text(encoding="utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{DEFAULTS_WHERE}: {exc}") from exc


_cache: dict[str, Any] = {}


def _default_topics() -> dict[str, TopicRules]:
    if "topics" not in _cache:
        _cache["topics"] = parse_topics(_default_document(), DEFAULTS_WHERE)
    return _cache["topics"]


def _default_settings() -> RuleDefaults:
    if "settings" not in _cache:
        _cache["settings"] = _parse_defaults(_default_document().get("defaults", {}), DEFAULTS_WHERE)
    return _cache["settings"]


def _parse_defaults(table: Any, where: str) -> RuleDefaults:
    if not isinstance(table, Mapping):
        raise RulesError(f"{where}: defaults: expected a table, got {_show(table)}")
    _check_keys(table, DEFAULTS_KEYS, where, "defaults")
    base = RuleDefaults()
    values: dict[str, Any] = {}
    for key in ("threshold", "min_focus", "title_boost", "heading_boost"):
        if key in table:
            values[key] = _number(table[key], where, f"defaults.{key}", high=_HIGH.get(key))
    if "exclude" in table:
        values.update(_parse_exclude(table["exclude"], where, "defaults.exclude"))
    return replace(base, **values)


def _build_topic(topic_id: str, table: Mapping[str, Any], base: TopicRules | None, settings: RuleDefaults,
                 where: str) -> TopicRules:
    path = f"topics.{topic_id}"
    if not isinstance(topic_id, str) or not TOPIC_ID.match(topic_id):
        raise RulesError(f"{where}: {path}: a topic id is lower-case letters, digits and '-', "
                         f"got {_show(topic_id)}")
    if topic_id == ALL_CHANNEL:
        raise RulesError(f'{where}: {path}: the topic id "{ALL_CHANNEL}" is reserved (the feed of every topic)')
    table = {key: value for key, value in table.items() if key not in CONFIG_ONLY_KEYS}
    _check_keys(table, TOPIC_KEYS, where, path)
    if base is None:
        for key in ("name", "terms"):
            if key not in table:
                raise RulesError(f"{where}: {path}.{key}: required for a topic")
        base = TopicRules(
            id=topic_id, name="", description="", hashtag="", terms=(),
            exclude_phrases=settings.exclude_phrases, exclude_paragraphs=settings.exclude_paragraphs,
            exclude_titles=settings.exclude_titles, threshold=settings.threshold,
            min_focus=settings.min_focus, title_boost=settings.title_boost,
            heading_boost=settings.heading_boost,
        )
    flags = {key: _bool(table.get(key, False), where, f"{path}.{key}")
             for key in ("replace_terms", "replace_cooccur", "replace_exclude")}
    values: dict[str, Any] = {}
    for key in ("name", "description", "hashtag"):
        if key in table:
            values[key] = _string(table[key], where, f"{path}.{key}", empty_ok=key == "description")
    if "hashtag" in values and not HASHTAG.match(values["hashtag"]):
        raise RulesError(f"{where}: {path}.hashtag: expected '#' and letters, digits or '_', "
                         f"got {_show(values['hashtag'])}")
    for key in ("threshold", "min_focus", "title_boost", "heading_boost"):
        if key in table:
            values[key] = _number(table[key], where, f"{path}.{key}", high=_HIGH.get(key))
    if "terms" in table:
        values["terms"] = _merge_terms(base.terms, table["terms"], flags["replace_terms"], where,
                                       f"{path}.terms")
    if "cooccur" in table:
        added = _parse_cooccur(table["cooccur"], where, f"{path}.cooccur")
        values["cooccur"] = added if flags["replace_cooccur"] else _unique(base.cooccur + added)
    if "require_any" in table:
        values["require_any"] = _strings(table["require_any"], where, f"{path}.require_any")
    if "exclude" in table:
        for key, phrases in _parse_exclude(table["exclude"], where, f"{path}.exclude").items():
            values[key] = phrases if flags["replace_exclude"] else _unique(getattr(base, key) + phrases)
    rules = replace(base, **values)
    if not rules.name:
        raise RulesError(f"{where}: {path}.name: required for a topic")
    if not rules.terms:
        raise RulesError(f"{where}: {path}.terms: a topic needs at least one term with a weight above 0")
    if not rules.hashtag:
        rules = replace(rules, hashtag="#" + (re.sub(r"\W", "", rules.name) or topic_id.replace("-", "_")))
    return rules


def _merge_terms(base: tuple[tuple[str, float], ...], raw: Any, replace_all: bool, where: str,
                 path: str) -> tuple[tuple[str, float], ...]:
    given = _weights(raw, where, path, zero_ok=True)
    merged = {} if replace_all else dict(base)
    for term, weight in given:
        if weight == 0:
            merged.pop(term, None)  # weight 0 is how a user removes a default term
        else:
            merged[term] = weight
    return tuple(merged.items())


def _weights(raw: Any, where: str, path: str, zero_ok: bool = False) -> tuple[tuple[str, float], ...]:
    if not isinstance(raw, Mapping):
        raise RulesError(f"{where}: {path}: expected a table of \"term\" = weight, got {_show(raw)}")
    out = []
    for term, weight in raw.items():
        _phrase(term, where, path)
        value = _number(weight, where, f"{path}.{_key(term)}")
        if value == 0 and not zero_ok:
            raise RulesError(f"{where}: {path}.{_key(term)}: expected a weight above 0, got 0")
        out.append((term, value))
    return tuple(out)


def _parse_cooccur(raw: Any, where: str, path: str) -> tuple[Cooccur, ...]:
    if not isinstance(raw, list):
        raise RulesError(f"{where}: {path}: expected a list of tables ([[{path}]]), got {_show(raw)}")
    rules = []
    for index, item in enumerate(raw):
        item_path = f"{path}[{index}]"
        if not isinstance(item, Mapping):
            raise RulesError(f"{where}: {item_path}: expected a table, got {_show(item)}")
        _check_keys(item, COOCCUR_KEYS, where, item_path)
        if "terms" not in item:
            raise RulesError(f"{where}: {item_path}.terms: required")
        terms = _weights(item["terms"], where, f"{item_path}.terms")
        if not terms:
            raise RulesError(f"{where}: {item_path}.terms: expected at least one term")
        anchors = _strings(item.get("anchors", []), where, f"{item_path}.anchors")
        rules.append(Cooccur(terms=terms, anchors=anchors))
    return tuple(rules)


def _parse_exclude(raw: Any, where: str, path: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise RulesError(f"{where}: {path}: expected a table with {', '.join(EXCLUDE_KEYS)}, "
                         f"got {_show(raw)}")
    _check_keys(raw, EXCLUDE_KEYS, where, path)
    return {f"exclude_{key}": _strings(raw[key], where, f"{path}.{key}")
            for key in EXCLUDE_KEYS if key in raw}


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str, path: str) -> None:
    for key in table:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            full = f"{path}.{key}" if path else str(key)
            if hint:
                raise RulesError(f"{where}: {full}: unknown key (did you mean {_show(hint[0])}?)")
            raise RulesError(f"{where}: {full}: unknown key (expected one of: {', '.join(allowed)})")


def _suggest(topic_id: str, known: Mapping[str, Any]) -> str:
    hint = difflib.get_close_matches(topic_id, list(known), n=1, cutoff=0.6)
    if hint:
        return f" (did you mean {_show(hint[0])}?)"
    return f" (known topics: {', '.join(known)})" if known else ""


def _number(value: Any, where: str, path: str, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RulesError(f"{where}: {path}: expected a number, got {_show(value)}")
    if value < 0 or (high is not None and value > high):
        span = f"between 0 and {high:g}" if high is not None else "0 or more"
        raise RulesError(f"{where}: {path}: expected a number {span}, got {_show(value)}")
    return float(value)


def _bool(value: Any, where: str, path: str) -> bool:
    if not isinstance(value, bool):
        raise RulesError(f"{where}: {path}: expected true or false, got {_show(value)}")
    return value


def _string(value: Any, where: str, path: str, empty_ok: bool = False) -> str:
    if not isinstance(value, str) or (not empty_ok and not value.strip()):
        raise RulesError(f"{where}: {path}: expected a non-empty string, got {_show(value)}")
    return value.strip()


def _strings(value: Any, where: str, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise RulesError(f"{where}: {path}: expected a list of strings, got {_show(value)}")
    for index, item in enumerate(value):
        _phrase(item, where, f"{path}[{index}]")
    return _unique(tuple(value))


def _phrase(value: Any, where: str, path: str) -> None:
    if not isinstance(value, str) or not fold(value).strip():
        raise RulesError(f"{where}: {path}: expected a non-empty phrase, got {_show(value)}")
    if len(value) > 100:
        raise RulesError(f"{where}: {path}: a phrase is at most 100 characters, got {len(value)}")


def _unique(items: tuple) -> tuple:
    return tuple(dict.fromkeys(items))


def _key(term: str) -> str:
    return term if re.fullmatch(r"[A-Za-z0-9_-]+", term) else f'"{term}"'


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)
