"""Loading many articles at once, for benchmarks and drills that need a big database quickly."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime

from feedbot.clock import utcnow
from feedbot.model import Article, Classification, Target
from feedbot.store import Store
from feedbot.store.db import to_db
from feedbot.store.deliveries import key_of


def bulk_load(store: Store, items: Iterable[tuple[Article, Classification]],
              targets: Mapping[str, Iterable[Target | str]],
              *, delivered: bool = True, now: datetime | None = None) -> int:
    """Load many new articles in one transaction, indexed for search (benchmark set-up); deliveries are stored
    as sent."""
    now_db = to_db(now or utcnow())
    targets = {topic: [key_of(t) for t in ts] for topic, ts in targets.items()}
    status = "sent" if delivered else "pending"
    count = 0
    with store.transaction():
        for article, classification in items:
            cursor = store.db.execute(
                "INSERT INTO articles(source_id, key, first_seen_at, updated_at, url, title, published_at, "
                "body_html, text, content_hash, outlet, origin_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [article.source_id, article.key, now_db, to_db(article.updated_at), article.url, article.title,
                 to_db(article.published_at), article.body_html, article.text, article.content_hash,
                 article.outlet, article.origin_url])
            article_id = cursor.lastrowid
            for match in classification.matches:
                if not match.matched:
                    continue
                evidence = [[e.term, e.where, e.count, e.weight] for e in match.evidence]
                store.db.execute(
                    "INSERT INTO classifications(article_id, topic, score, evidence, excerpt) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [article_id, match.topic, match.score, json.dumps(evidence, ensure_ascii=False),
                     match.excerpt])
                for target in targets.get(match.topic, ()):
                    store.db.execute(
                        "INSERT INTO deliveries(article_id, topic, target, status, attempts, created_at, "
                        "sent_at, content_hash, message_id) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)",
                        [article_id, match.topic, target, status, now_db, now_db if delivered else None,
                         article.content_hash, article_id if delivered else None])
            count += 1
        # Indexed here, not left to the daemon: a benchmark measures searches over a complete index.
        while store.index_pending(limit=10_000):
            pass
    store.forget_caches()  # rows written here, not through save_article
    return count


