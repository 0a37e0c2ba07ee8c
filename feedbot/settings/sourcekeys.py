"""The list-page keys of a [[sources]] block (`kind = "html"`): CSS selectors, presets, their validation."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from feedbot.settings.values import Where, bounded_int, expect, suggest

# Selector keys of a list-page source; `item` is required, the rest optional.
SELECTOR_KEYS = ("item", "link", "title", "date", "body", "post_title", "post_date", "next")
LIST_KEYS = (*SELECTOR_KEYS, "max_pages", "preset")


@dataclass(frozen=True)
class ListSelectors:
    """How to read a news list page and its post pages (CSS selectors)."""

    item: str  # one element per listed post
    link: str = "a"  # inside an item: the post link (its href)
    title: str | None = None  # inside an item: the title (default: the link's title attribute or text)
    date: str | None = None  # inside an item: the listed date (2024年3月28日, 2024-03-28, 03-28)
    body: str | None = None  # on a post page: the article (default: readability's main block)
    post_title: str | None = None  # on a post page (default: meta ArticleTitle / the <h1> / <title>)
    post_date: str | None = None  # on a post page (default: meta PubDate / 发布时间： / the listed date)
    next: str | None = None  # on the list page: the link to its next (older) page
    max_pages: int = 3  # list pages followed in one poll when a burst outgrows the first one


@cache
def presets() -> dict[str, dict[str, str]]:
    """The built-in presets (feedbot/data/presets.toml), by name."""
    text = resources.files("feedbot").joinpath("data/presets.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _selector(value: Any, key: str, where: Where) -> str:
    css = expect(value, str, key, where, "a CSS selector string").strip()
    from lxml.cssselect import CSSSelector  # only a config with list-page selectors pays for cssselect

    try:
        CSSSelector(css)
    except Exception as exc:  # SelectorSyntaxError, ExpressionError
        raise where.error(key, f"bad CSS selector {css!r}: {str(exc).splitlines()[0]}") from None
    return css


def apply_preset(table: dict[str, Any], prefix: str, where: Where) -> dict[str, Any]:
    """The block with its preset's keys filled in (keys in the block win)."""
    if "preset" not in table:
        return table
    name = expect(table["preset"], str, f"{prefix}.preset", where, "a preset name")
    known = presets()
    if name not in known:
        raise where.error(f"{prefix}.preset", f"unknown preset {name!r}: expected one of "
                          f"{', '.join(sorted(known))}{suggest(name, tuple(known))}")
    base = {k: v for k, v in known[name].items() if k != "source"}
    return {"kind": "html", **base, **table}


def parse_selectors(table: dict[str, Any], kind: str, prefix: str, where: Where) -> ListSelectors | None:
    """The selectors of a `kind = "html"` block (None for other kinds, which must not carry them)."""
    given = [k for k in (*SELECTOR_KEYS, "max_pages") if k in table]
    if kind != "html":
        if given:
            raise where.error(f"{prefix}.{given[0]}", f'only list-page sources (kind = "html") take selectors, '
                              f"this source is kind {kind!r}")
        return None
    if "item" not in table:
        raise where.error(f"{prefix}.item", 'missing: a kind = "html" source needs an item selector '
                          "(or a preset); `feedbot probe URL` suggests one")
    values = {k: _selector(table[k], f"{prefix}.{k}", where) for k in SELECTOR_KEYS if k in table}
    if "max_pages" in table:
        values["max_pages"] = bounded_int(table["max_pages"], f"{prefix}.max_pages", where, 1, 50)
    return ListSelectors(**values)
