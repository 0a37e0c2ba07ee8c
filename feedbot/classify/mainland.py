"""Read Traditional-character (Taiwan, Hong Kong) text as mainland Simplified usage, for matching only."""

from __future__ import annotations

import re
from functools import lru_cache

import opencc

# Enough Traditional-only characters in the first stretch of text mark a Traditional article; a
# Simplified article quoting a name (乾隆, 著作) stays below this and is not converted.
SAMPLE_CHARS = 2000
MIN_TRADITIONAL = 5

# Taiwan and Hong Kong climate-policy usage, after OpenCC has made the glyphs Simplified, mapped to
# the mainland words the rules are written in. OpenCC's own phrase tables cover general usage
# (軟體→软件) but not this vocabulary. Sources: Taiwan's 《氣候變遷因應法》(2023) and its 碳費 /
# 自願減量 / 抵換 regulations, the 台灣碳權交易所, the 國家氣候變遷調適行動計畫, and Hong Kong's
# 《香港氣候行動藍圖2050》. Longer phrases are listed first so that they win over their parts.
REGIONAL_USAGE: tuple[tuple[str, str], ...] = (
    # adaptation: 氣候變遷 is 气候变化; 調適 is 适应
    ("气候变迁调适", "适应气候变化"),
    ("气候调适", "气候适应"),
    ("调适", "适应"),
    ("气候变迁", "气候变化"),
    # carbon market: 碳權 (credits and allowances alike), offsets, cap and trade
    ("碳权交易", "碳排放权交易"),
    ("碳权", "碳排放权"),
    ("总量管制与交易", "总量控制与交易"),
    ("总量管制", "总量控制"),
    ("减量额度", "减排量"),
    ("自愿减量", "自愿减排"),
    ("抵换专案", "抵销项目"),
    ("抵换", "抵销"),
    ("排放额度", "排放配额"),
    # verification and accounting: 查驗 is 核查, 確證 is 审定, 盤查 is the inventory (核算)
    ("查验机构", "核查机构"),
    ("查验人员", "核查人员"),
    ("查验员", "核查员"),
    ("盘查人员", "核算人员"),
    ("盘查员", "核算员"),
    # the profession: Taiwan certifies it as iPAS 淨零碳規劃管理師, and says 證照 for a certificate
    ("净零碳规划管理师", "碳排放管理师"),
    ("证照", "证书"),
    ("确证", "审定"),
    ("温室气体盘查", "温室气体排放核算"),
    ("碳盘查", "碳排放核算"),
    # money for climate: Taiwan and Hong Kong say 融資/資金 the same way; 氣候基金 is 气候资金 in sense
    ("气候变化融资", "气候融资"),
)
_REGIONAL = dict(REGIONAL_USAGE)
_REGIONAL_PATTERN = re.compile("|".join(re.escape(old) for old, _ in REGIONAL_USAGE))


@lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    # tw2sp: Traditional → Simplified with Taiwan phrases (軟體→软件); it also reads Hong Kong text.
    return opencc.OpenCC("tw2sp")


@lru_cache(maxsize=1)
def _traditional_chars() -> re.Pattern[str]:
    """Characters OpenCC changes on their own: the Traditional-only glyphs, derived once, not hand-kept."""
    converter = opencc.OpenCC("t2s")
    chars = [chr(code) for code in range(0x4E00, 0xA000)]
    simplified = converter.convert("\n".join(chars)).split("\n")
    changed = "".join(a for a, b in zip(chars, simplified, strict=True) if a != b)
    return re.compile(f"[{re.escape(changed)}]")


def is_traditional(text: str) -> bool:
    """Whether the text reads as a Traditional-character article."""
    return len(_traditional_chars().findall(text, 0, SAMPLE_CHARS)) >= MIN_TRADITIONAL


def to_mainland(text: str) -> str:
    """Traditional text as Simplified mainland usage; Simplified text unchanged. Lengths may change."""
    if not is_traditional(text):
        return text
    return regional_to_mainland(_converter().convert(text))


def pieces_to_mainland(pieces: list[str]) -> list[str]:
    """Several texts of one article, judged and converted together (one OpenCC call)."""
    if not is_traditional("".join(pieces)[:SAMPLE_CHARS]):
        return pieces
    # OpenCC stops at a NUL, so the pieces are joined by newlines; a piece with its own newline is
    # converted alone.
    if any("\n" in piece for piece in pieces):
        return [regional_to_mainland(_converter().convert(piece)) for piece in pieces]
    return regional_to_mainland(_converter().convert("\n".join(pieces))).split("\n")


def regional_to_mainland(text: str) -> str:
    """Replace Taiwan/Hong Kong climate-policy words (already in Simplified glyphs) by mainland ones."""
    return _REGIONAL_PATTERN.sub(lambda m: _REGIONAL[m.group()], text)


def phrase_to_mainland(phrase: str) -> str:
    """A rule phrase as mainland usage: rules may be written in Traditional characters too."""
    return regional_to_mainland(_converter().convert(phrase)) if _traditional_chars().search(phrase) else phrase
