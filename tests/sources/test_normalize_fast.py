"""normalize's faster paths read every page exactly as the plain ones they replaced (kept here as the oracle)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import lxml.html
import nh3
import pytest
from lxml import etree

from feedbot.sources.normalize import (
    _SANITIZER_OPTIONS,
    BLOCK_TAGS,
    DROP_WITH_CONTENT,
    HEADING_TAGS,
    clean_line,
    html_paragraphs,
    sanitize_html,
)
from tests.conftest import SHARED


def reference_paragraphs(html: str) -> list[tuple[str, bool]]:
    """html_paragraphs as it was: lxml.html.fragment_fromstring, then a walk of the tree."""
    if not html.strip():
        return []
    if "<" not in html:
        return [(line, False) for line in (clean_line(x) for x in html.splitlines()) if line]
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return [(clean_line(html), False)] if clean_line(html) else []
    for bad in root.iter(*DROP_WITH_CONTENT):
        bad.drop_tree() if bad.getparent() is not None else None
    out: list[tuple[str, bool]] = []
    buf: list[str] = []

    def flush(is_heading: bool = False) -> None:
        text = clean_line("".join(buf))
        buf.clear()
        if text:
            out.append((text, is_heading))

    def walk(el) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in BLOCK_TAGS:
            flush()
        if tag == "br":
            flush()
        elif el.text and tag:
            buf.append(el.text)
        for child in el:
            walk(child)
        if tag in BLOCK_TAGS:
            flush(tag in HEADING_TAGS)
        if el.tail:
            buf.append(el.tail)

    walk(root)
    flush()
    return out


PAGES = [
    "<p>甲</p>",
    "导语<p>甲<br>乙</p>尾",
    "  <p>甲</p>\n <p>乙</p>  ",
    "\u3000<span>甲</span>乙<p>丙</p>",
    "\u2003 <b>甲</b> 乙",
    "\u200b<p>甲</p>",
    "<h2>小标题</h2><div>丙<span>丁</span></div><h3>再</h3>",
    "<p>甲<p>乙<div>丙</div>丁</p>",
    "<ul><li>一<li>二</ul><table><tr><td>表</td><td>格</td></tr></table>",
    "<p>a &amp; b &lt; c &gt; d &nbsp; &copy; &#169; &#x4e2d;</p>",
    "<!-- 注释 --><p>甲<!-- 内 -->乙</p><?pi x?>",
    "<p>正文<script>alert('x')</script>尾</p><style>p{}</style>后",
    "<script>x</script>头<p>甲</p>",
    "<html><body><p>整页</p></body></html>",
    "  <!DOCTYPE html><html><head><title>t</title></head><body><p>整页</p></body></html>",
    "<p>甲</p></body>之后<body><p>乙</p>",
    "<head><title>题</title></head><p>甲</p>",
    "<html><p>甲</p>",
    "<title>题</title><meta charset='gbk'><p>甲</p>",
    "<?xml version='1.0' encoding='utf-8'?><p>甲</p>",
    "<p>" + "深" * 20 + "<b>" * 300 + "层" + "</b>" * 300 + "</p>",
    "<p>未闭合<div>块<span>行",
    "<>< p>不是标签</ p>a<b",
    "<br><br/>x<br>",
    "<svg><text>图</text></svg>后",
    "<noscript>无</noscript><p>有</p><iframe>框</iframe>尾",
    "<p>\x00空字符</p>",
    "<p>\ufeff字节序</p>",
]


def outcome(read, page):
    """What reading the page gives: its paragraphs, or the exception it raises (some pages make lxml.html
    assert; the fast path hands those back to it)."""
    try:
        return read(page)
    except Exception as exc:
        return type(exc).__name__, re.sub(r" at 0x[0-9a-f]+", "", str(exc))


@pytest.mark.parametrize("page", PAGES)
def test_paragraphs_are_what_the_plain_path_reads(page):
    assert outcome(html_paragraphs, page) == outcome(reference_paragraphs, page)
    safe = sanitize_html(page)
    assert html_paragraphs(safe) == reference_paragraphs(safe)


HOSTILE = [
    '<p onclick="x()">a<img src="https://e.org/x.png" onerror="alert(1)"><a href="javascript:alert(1)">j</a></p>',
    '<a href="https://e.org/a" target="_blank">原文</a><table><tr><td colspan="2">表</td></tr></table>',
]


@pytest.mark.parametrize("page", [*PAGES, *HOSTILE])
def test_the_reused_sanitizer_cleans_as_nh3_clean_does(page):
    assert sanitize_html(page) == nh3.clean(page, **_SANITIZER_OPTIONS)


def real_pages() -> list[str]:
    pages = [path.read_bytes().decode("gbk" if ".gbk." in path.name else "utf-8")
             for path in sorted((Path(__file__).parent / "pages").glob("*.html"))]
    for name in ("dev.jsonl", "dev2.jsonl"):
        path = SHARED / "corpus" / name
        if path.exists():
            pages += [json.loads(line)["body_html"] for line in path.read_text(encoding="utf-8").splitlines()]
    return pages


def test_real_pages_read_the_same_raw_and_sanitized():
    for page in real_pages():
        assert outcome(html_paragraphs, page) == outcome(reference_paragraphs, page)
        assert sanitize_html(page) == nh3.clean(page, **_SANITIZER_OPTIONS)
        assert html_paragraphs(sanitize_html(page)) == reference_paragraphs(sanitize_html(page))


def test_the_shared_sanitizer_and_parser_work_from_several_threads():
    # prepare runs in worker threads (asyncio.to_thread), several polls at once.
    import threading

    page = "<p onclick='x()'>甲<script>s()</script>" + "<b>乙</b>丙" * 500 + "</p><h3>小标题</h3><p>丁</p>"
    want = nh3.clean(page, **_SANITIZER_OPTIONS)
    errors: list[str] = []

    def work() -> None:
        try:
            for _ in range(50):
                assert sanitize_html(page) == want
                assert html_paragraphs(want) == reference_paragraphs(want)
        except Exception as exc:  # collected: an assertion in a thread would not fail the test
            errors.append(repr(exc))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_without_an_nh3_cleaner_sanitizing_falls_back_to_nh3_clean(monkeypatch):
    import feedbot.sources.normalize as normalize_module

    with_cleaner = [sanitize_html(page) for page in [*PAGES, *HOSTILE]]
    monkeypatch.setattr(normalize_module, "_CLEANER", None)
    assert [sanitize_html(page) for page in [*PAGES, *HOSTILE]] == with_cleaner
