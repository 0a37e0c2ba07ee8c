"""Page layouts that change what a mention means: a roundup or list is many items, not one subject."""

from __future__ import annotations

import re

from feedbot.classify.text import Unit

# Headlines of digests: finance morning and evening roundups, news briefs, weekly reviews.
ROUNDUP_TITLE = re.compile(
    "早报|晚报|午报|晨报|早知道|早餐|要闻|速览|速递|简报|快报|快讯|一览|汇总|汇编|盘点|周报|周评|"
    "收评|午评|盘前|复盘|新闻联播|资讯精选|新闻精选|热点回顾|大事记"
)
# An item of a list: "1、", "(2)", "【标题】", "三、", a bullet.
ITEM_MARK = re.compile(r"^\s*(?:\d{1,2}\s*[、.．]|[（(]\s*\d{1,2}\s*[)）]|【[^】]{1,30}】|"
                       r"[一二三四五六七八九十]{1,3}、|[■●◆▶★•·])")
# This many marked items, making up at least this share of the body, is a list layout.
MIN_ITEMS = 5
MIN_ITEM_SHARE = 0.4


def is_roundup(units: list[Unit]) -> bool:
    """A digest by its headline, or a body that is mostly a list of marked items."""
    if units and ROUNDUP_TITLE.search(units[0].folded):
        return True
    body = [unit for unit in units if unit.where != "title"]
    marked = sum(1 for unit in body if ITEM_MARK.match(unit.folded))
    return marked >= MIN_ITEMS and marked >= MIN_ITEM_SHARE * len(body)


def items_with(hit_units: set[int], units: list[Unit]) -> int:
    """How many items carry evidence: a heading and the first paragraph under it are one item."""
    items = set()
    for index in hit_units:
        unit = units[index]
        if unit.where == "heading":
            following = index + 1
            if following < len(units) and units[following].section == unit.section:
                index = following
        items.add(index)
    return len(items)
