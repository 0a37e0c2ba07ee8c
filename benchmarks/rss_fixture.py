"""RSS documents for the polling benchmarks: one small feed per loopback source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

PARAGRAPH = ("生态环境部有关负责人表示，将持续完善全国碳排放权交易市场制度体系，"
             "强化排放数据质量管理，稳步扩大行业覆盖范围。")


def rss_feed(source: int, entries: int, version: int = 0) -> bytes:
    """RSS 2.0 of one source; a new ``version`` gives every entry a new guid (a changed feed)."""
    start = datetime(2024, 5, 1, tzinfo=UTC) + timedelta(hours=version)
    items = []
    for n in range(entries):
        link = f"https://news{source}.example.org/{version}/{n}.html"
        items.append(f"<item><title>第{source}号源 第{n}条 全国碳市场动态 v{version}</title><link>{link}</link>"
                     f"<guid>{link}</guid><pubDate>{format_datetime(start - timedelta(minutes=n))}</pubDate>"
                     f"<description>&lt;p&gt;{PARAGRAPH * 3}&lt;/p&gt;</description></item>")
    return ('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>源{source}</title><link>https://news{source}.example.org/</link><description>d</description>"
            + "".join(items) + "</channel></rss>").encode()
