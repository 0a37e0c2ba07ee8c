"""`feedbot status`: what the state database says, as data and as a readable table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from feedbot.clock import SHANGHAI, in_shanghai
from feedbot.settings.config import Config
from feedbot.settings.secrets import redact, redact_url
from feedbot.store import Store

QUARANTINE_SHOWN = 50  # the most recent quarantined items `status` lists (the total is always shown)


def _when(moment: datetime | None) -> str | None:
    return in_shanghai(moment).isoformat(timespec="seconds") if moment else None


def collect_status(store: Store, config: Config) -> dict[str, Any]:
    """Sources, article counts per topic and delivery counts per target, from the database."""
    sources = [
        {
            # Rows written by older versions may hold credentials in the URL or the error: redact on display.
            "id": s.id, "kind": s.kind, "url": redact_url(s.url),
            "last_checked_at": _when(s.last_checked_at), "last_ok_at": _when(s.last_ok_at),
            "next_check_at": _when(s.next_check_at), "failures": s.failures,
            "last_error": redact(s.last_error) if s.last_error else s.last_error,
            "result": "never polled" if s.last_checked_at is None else ("ok" if s.failures == 0 else "failing"),
        }
        for s in store.source_states()
    ]
    counts = store.article_counts()
    deliveries: dict[str, dict[str, Any]] = {}
    for row in store.delivery_counts():
        entry = deliveries.setdefault(str(row.target), {"topic": row.topic, "by_status": {}})
        entry["by_status"][row.status] = entry["by_status"].get(row.status, 0) + row.count
    targets = {str(t.target): {"state": t.status, "last_error": redact(t.last_error) if t.last_error else None,
                               "retry_at": _when(t.retry_at)}
               for t in store.target_states()}
    topics = [
        {"id": tid, "name": t.name, "articles": counts.get(tid, 0), "telegram_chat": config.chats.get(tid)}
        for tid, t in config.topics.items()
    ]
    for target, info in deliveries.items():
        info.update(targets.get(target, {}))
    for target, info in targets.items():  # e.g. blocked before its first delivery
        if target not in deliveries and info["state"] != "ok":
            deliveries[target] = {"topic": "-", "by_status": {}, **info}
    quarantined = [
        {"source": q.source_id, "key": q.key, "url": q.url, "stage": q.stage, "reason": q.reason,
         "count": q.count, "first_seen_at": _when(q.first_seen_at), "last_seen_at": _when(q.last_seen_at),
         "retry_at": _when(q.retry_at)}
        for q in store.quarantined(QUARANTINE_SHOWN)
    ]
    return {
        "database": str(config.db_path),
        "sources": sources,
        "articles": {"total": counts.get("all", 0), "unrouted": counts.get("unrouted", 0),
                     "search_queue": store.search_queue_length()},
        "topics": topics,
        "deliveries": deliveries,
        "digests": store.digest_summary(),
        "quarantine": {"total": store.quarantine_count(), "items": quarantined},
    }


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([_width(h)] + [_width(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(_pad(h, w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _width(text: str) -> int:
    # CJK characters take two terminal columns.
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def relative(moment: str | None, now: datetime) -> str:
    """'2026-11-24T10:31:40+08:00' → '10:31:40 (3m ago)' / '11-20 10:31 (in 2h)'; '-' for None."""
    if not moment:
        return "-"
    when = datetime.fromisoformat(moment).astimezone(SHANGHAI)
    seconds = (when - now).total_seconds()
    span = abs(seconds)
    amount = (f"{span:.0f}s" if span < 60 else f"{span / 60:.0f}m" if span < 3600
              else f"{span / 3600:.0f}h" if span < 86400 else f"{span / 86400:.0f}d")
    shown = when.strftime("%H:%M:%S") if span < 86400 else when.strftime("%m-%d %H:%M")
    return f"{shown} ({'in ' + amount if seconds > 0 else amount + ' ago'})"


def _target_line(info: dict[str, Any], now: datetime) -> str:
    state = info.get("state", "")
    if state != "blocked":
        return state
    return (f"blocked: {info.get('last_error') or '?'}; next try {relative(info.get('retry_at'), now)} "
            "(or at the next start, or `feedbot unblock`)")


def render_status(report: dict[str, Any], now: datetime | None = None) -> str:
    """The status report as aligned plain-text tables (times in Asia/Shanghai)."""
    now = now or datetime.now(SHANGHAI)
    parts = [f"database: {report['database']}", "", "SOURCES"]
    parts.append(_table(
        ["id", "kind", "result", "last ok", "next check", "failures", "last error"],
        [[s["id"], s["kind"], s["result"], relative(s["last_ok_at"], now), relative(s["next_check_at"], now),
          s["failures"], s["last_error"] or ""] for s in report["sources"]]))
    a = report["articles"]
    # Articles stored since the daemon's last indexing batch (or by `feedbot once`): search scans them meanwhile.
    waiting = f", {a['search_queue']} not yet in the search index" if a.get("search_queue") else ""
    parts += ["", f"ARTICLES  total {a['total']}, in no channel {a['unrouted']}{waiting}"]
    parts.append(_table(["topic", "name", "articles", "telegram"],
                        [[t["id"], t["name"], t["articles"], t["telegram_chat"] or "-"] for t in report["topics"]]))
    parts += ["", "DELIVERIES"]
    statuses = ["pending", "sending", "sent", "failed", "dropped"]
    rows = []
    for target, info in report["deliveries"].items():
        rows.append([target, info["topic"], *[info["by_status"].get(s, 0) for s in statuses],
                     _target_line(info, now)])
    parts.append(_table(["target", "topic", *statuses, "state"], rows) if rows else "(none yet)")
    digests = report.get("digests") or []
    if digests:
        kinds = ["pending", "sent", "empty", "missed", "dropped"]
        parts += ["", "DIGESTS  (one per channel and period; missed/dropped: after an outage only the newest is sent)"]
        parts.append(_table(["target", "topic", *kinds, "newest period"],
                            [[d["target"], d["topic"], *[d["by_status"].get(k, 0) for k in kinds], d["newest"]]
                             for d in digests]))
    quarantine = report.get("quarantine") or {"total": 0, "items": []}
    parts += ["", f"QUARANTINE  {quarantine['total']} item(s) set aside (they failed processing; retried sparingly)"]
    if quarantine["items"]:
        parts.append(_table(
            ["source", "item", "stage", "failures", "last failed", "reason"],
            [[q["source"], _short(q["url"] or q["key"], 60), q["stage"], q["count"],
              relative(q["last_seen_at"], now), _short(q["reason"], 100)] for q in quarantine["items"]]))
    return "\n".join(parts)


def _short(text: str, limit: int) -> str:
    # One line per item: a reason or URL may hold newlines or be very long.
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
