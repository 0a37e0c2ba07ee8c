"""Articles and their classifications: new, edited or unchanged, and the newest per channel."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from feedbot.clock import utcnow
from feedbot.model import Article, Classification, Evidence, SaveResult, StoredArticle, Target, TopicMatch
from feedbot.store.db import Database, from_db, to_db
from feedbot.store.deliveries import key_of
from feedbot.store.migrations import CHANGE_COUNTER

# json.dumps with an option builds a JSONEncoder per call; one, built once, writes every article's evidence.
_evidence_json = json.JSONEncoder(ensure_ascii=False).encode


class ArticlesTable(Database):
    """The `articles` and `classifications` tables (and the deliveries an article brings with it)."""

    def known_keys(self, source_id: str) -> set[str]:
        """Keys of every article already stored for a source.

        Read from the table once per source, then kept in step by this connection's writes (the state-dir
        lock makes this process the only writer); a commit by any other connection drops the cache.
        """
        cache = self._known_cache()
        keys = cache.get(source_id)
        if keys is None:
            cursor = self._execute("SELECT key FROM articles WHERE source_id = ?", [source_id])
            keys = cache[source_id] = {row[0] for row in cursor}
        return set(keys)

    def _known_cache(self) -> dict[str, set[str]]:
        # PRAGMA data_version changes when another connection commits: then the cache may be stale.
        version = self._execute("PRAGMA data_version").fetchone()[0]
        if getattr(self, "_known_version", None) != version:
            self._known, self._known_version = {}, version
        return self._known

    def forget_caches(self) -> None:
        super().forget_caches()
        self._known_version = None  # keys added in the rolled-back transaction are not stored

    def content_hashes(self, source_id: str) -> dict[str, str]:
        """key → content hash for a source's stored articles (to tell updates from repeats)."""
        cursor = self._execute("SELECT key, content_hash FROM articles WHERE source_id = ?", [source_id])
        return dict(cursor.fetchall())

    def remember_key(self, source_id: str, key: str) -> None:
        """A key just stored by this connection joins the cache (no data_version check: our own write)."""
        keys = getattr(self, "_known", {}).get(source_id)
        if keys is not None:
            keys.add(key)

    def save_article(self, article: Article, classification: Classification,
                     targets: Mapping[str, Iterable[Target | str]], now: datetime | None = None) -> SaveResult:
        """Store an article, its classification and its deliveries in one transaction.

        ``targets`` maps a topic to the publishing targets that want it (e.g. "telegram:@chan").
        An unchanged article writes nothing; an edited one keeps its id and gets ``updated_at``.
        """
        now = now or utcnow()
        with self.transaction():
            saved = self.write_article(article, classification, targets, now)
        if saved.status == "new":
            self.remember_key(article.source_id, article.key)
        return saved

    def write_article(self, article: Article, classification: Classification,
                      targets: Mapping[str, Iterable[Target | str]], now: datetime) -> SaveResult:
        """``save_article`` inside the caller's transaction; the caller remembers a new key once it commits."""
        row = self._execute("SELECT id, content_hash FROM articles WHERE source_id = ? AND key = ?",
                              [article.source_id, article.key]).fetchone()
        # Stored now: a post that failed before needs no more retries.
        self.clear_post_retry(article.source_id, article.key)
        if row is not None and row[1] == article.content_hash:
            return SaveResult(article_id=row[0], status="unchanged")
        if row is None:
            article_id = self.insert_article(article, now)
            return SaveResult(article_id=article_id, status="new",
                              deliveries_added=self.write_topics(article_id, classification, targets, now))
        values = _columns(article)
        values["updated_at"] = to_db(article.updated_at or now)
        self._execute("UPDATE articles SET " + ", ".join(f"{k} = ?" for k in values) + " WHERE id = ?",
                      [*values.values(), row[0]])
        added = self.write_topics(row[0], classification, targets, now, replace=True)
        return SaveResult(article_id=row[0], status="updated", deliveries_added=added)

    def insert_article(self, article: Article, now: datetime) -> int | None:
        """A new article's row (inside the caller's transaction): its id, or None when its key is stored already.

        One statement whatever the answer: a caller whose cached keys say "new" needs no lookup first.
        """
        values = _columns(article)
        cursor = self._execute(
            "INSERT INTO articles(source_id, key, first_seen_at, updated_at, " + ", ".join(values)
            + ") VALUES (?, ?, ?, ?" + ", ?" * len(values) + ") ON CONFLICT(source_id, key) DO NOTHING",
            [article.source_id, article.key, to_db(now), to_db(article.updated_at), *values.values()])
        return cursor.lastrowid if cursor.rowcount == 1 else None

    def clear_post_retry(self, source_id: str, key: str) -> None:
        """A post stored at last needs no more retries."""
        self._execute("DELETE FROM post_retries WHERE source_id = ? AND key = ?", [source_id, key])

    def write_topics(self, article_id: int, classification: Classification,
                     targets: Mapping[str, Iterable[Target | str]], now: datetime, *, replace: bool = False) -> int:
        """An article's classification rows and a delivery per wanting target (inside the caller's transaction).

        ``replace`` drops the rows an edited article had; a new one has none. Returns the deliveries added.
        """
        created, added = to_db(now), 0
        for match in self._write_classification(article_id, classification, replace=replace):
            for target in targets.get(match.topic, ()):
                # ON CONFLICT: two topics routed to one chat still give it one message.
                added += self._execute(
                    "INSERT INTO deliveries(article_id, topic, target, status, attempts, created_at) "
                    "VALUES (?, ?, ?, 'pending', 0, ?) ON CONFLICT(article_id, target) DO NOTHING",
                    [article_id, match.topic, key_of(target), created]).rowcount
        return added

    def _write_classification(self, article_id: int, classification: Classification, *,
                              replace: bool = True) -> list[TopicMatch]:
        """Write an article's classification rows (inside the caller's transaction); returns the matches."""
        if replace:
            self._execute("DELETE FROM classifications WHERE article_id = ?", [article_id])
        matched = [m for m in classification.matches if m.matched]
        for match in matched:
            evidence = [[e.term, e.where, e.count, e.weight] for e in match.evidence]
            self._execute(
                "INSERT INTO classifications(article_id, topic, score, evidence, excerpt) VALUES (?, ?, ?, ?, ?)",
                [article_id, match.topic, match.score, _evidence_json(evidence), match.excerpt])
        return matched

    def reclassify(self, article_id: int, classification: Classification) -> bool:
        """Replace a stored article's classification (new rules); no deliveries. True when its topics changed."""
        with self.transaction():
            before = {r[0] for r in self._execute("SELECT topic FROM classifications WHERE article_id = ?",
                                                    [article_id])}
            self._write_classification(article_id, classification)
            self.set_meta("reclassified_at", to_db(utcnow()))
        return before != set(classification.topics)

    def article_ids(self) -> list[int]:
        """Every stored article's id, oldest first."""
        return [row[0] for row in self._execute("SELECT id FROM articles ORDER BY id")]

    def article(self, article_id: int) -> StoredArticle | None:
        """One stored article with its topics."""
        rows = self._rows("SELECT * FROM articles WHERE id = ?", [article_id])
        return self._with_topics(rows)[0] if rows else None

    def articles(self, topic: str | None = None, limit: int = 50, offset: int = 0) -> list[StoredArticle]:
        """The newest articles (of one topic, or all classified into any topic), newest first."""
        if topic is None:
            sql = ("SELECT a.* FROM articles a WHERE EXISTS (SELECT 1 FROM classifications c "
                   "WHERE c.article_id = a.id) ORDER BY COALESCE(a.published_at, a.first_seen_at) DESC, a.id DESC "
                   "LIMIT ? OFFSET ?")
            params: list[Any] = [limit, offset]
        else:
            # EXISTS (not JOIN) lets SQLite walk idx_articles_newest and stop after `limit` rows.
            sql = ("SELECT a.* FROM articles a WHERE EXISTS (SELECT 1 FROM classifications c "
                   "WHERE c.article_id = a.id AND c.topic = ?) "
                   "ORDER BY COALESCE(a.published_at, a.first_seen_at) DESC, a.id DESC LIMIT ? OFFSET ?")
            params = [topic, limit, offset]
        return self._with_topics(self._rows(sql, params))

    def articles_by_id(self, ids: list[int]) -> list[StoredArticle]:
        """Stored articles with their topics, in the order of ``ids`` (unknown ids left out)."""
        if not ids:
            return []
        rows = self._rows(f"SELECT * FROM articles WHERE id IN ({', '.join('?' * len(ids))})", ids)
        found = {a.id: a for a in self._with_topics(rows)}
        return [found[i] for i in ids if i in found]

    def count_articles(self, topic: str | None = None) -> int:
        """How many articles a channel holds (None: every article classified into any topic)."""
        if topic is None:
            # The primary key (article_id, topic) covers this: no article row is read.
            sql, params = "SELECT COUNT(DISTINCT article_id) FROM classifications", []
        else:
            sql, params = "SELECT COUNT(*) FROM classifications WHERE topic = ?", [topic]
        return self._execute(sql, params).fetchone()[0]

    def classifications(self, article_id: int) -> list[TopicMatch]:
        """Why an article sits in each of its channels: score, evidence and excerpt per matched topic."""
        rows = self._rows("SELECT topic, score, evidence, excerpt FROM classifications WHERE article_id = ? "
                          "ORDER BY score DESC, topic", [article_id])
        return [TopicMatch(topic=r["topic"], score=r["score"], matched=True, evidence=_evidence(r["evidence"]),
                           excerpt=r["excerpt"] or "") for r in rows]

    def changed_at(self) -> datetime | None:
        """When stored articles or their channels last changed (a page's Last-Modified)."""
        # One MAX() per statement: SQLite answers each from its index instead of scanning the table.
        seen = self._execute("SELECT MAX(first_seen_at) FROM articles").fetchone()[0]
        edited = self._execute("SELECT MAX(updated_at) FROM articles").fetchone()[0]
        moments = [from_db(v) for v in (seen, edited, self.get_meta("reclassified_at")) if v]
        return max(moments, default=None)

    def _with_topics(self, rows: list[dict[str, Any]]) -> list[StoredArticle]:
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        excerpts: dict[int, dict[str, str]] = {i: {} for i in ids}
        scores: dict[int, dict[str, float]] = {i: {} for i in ids}
        marks = ", ".join("?" * len(ids))
        for c in self._rows(f"SELECT article_id, topic, score, excerpt FROM classifications "
                            f"WHERE article_id IN ({marks})", ids):
            excerpts[c["article_id"]][c["topic"]] = c["excerpt"] or ""
            scores[c["article_id"]][c["topic"]] = c["score"]
        return [_stored(r, excerpts[r["id"]], scores[r["id"]]) for r in rows]

    def weekly_counts(self, topic: str | None, weeks: int, now: datetime | None = None) -> list[int]:
        """Articles per week for the last ``weeks`` weeks, oldest first (by publication time)."""
        now = now or utcnow()
        start = now - timedelta(weeks=weeks)
        # The expression spelled as idx_articles_newest spells it, bounded on both sides: an index range.
        moment = "COALESCE(a.published_at, a.first_seen_at)"
        sql = (f"SELECT {moment} FROM articles a WHERE {moment} >= ? AND {moment} <= ? "
               "AND EXISTS (SELECT 1 FROM classifications c WHERE c.article_id = a.id"
               + ("" if topic is None else " AND c.topic = ?") + ")")
        params: list[Any] = [to_db(start), to_db(now)] + ([] if topic is None else [topic])
        counts = [0] * weeks
        for (moment,) in self._execute(sql, params):
            age_weeks = int((now - datetime.fromisoformat(moment)).total_seconds() // (7 * 86400))
            if 0 <= age_weeks < weeks:
                counts[weeks - 1 - age_weeks] += 1
        return counts

    def article_counts(self) -> dict[str, int]:
        """Stored articles per topic, plus "all" (every stored article) and "unrouted"."""
        out = {r["topic"]: r["n"] for r in self._rows(
            "SELECT topic, COUNT(*) AS n FROM classifications GROUP BY topic ORDER BY topic")}
        out["all"] = self._execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        out["unrouted"] = self._execute(
            "SELECT COUNT(*) FROM articles a WHERE NOT EXISTS "
            "(SELECT 1 FROM classifications c WHERE c.article_id = a.id)").fetchone()[0]
        return out

    def last_change(self) -> str | None:
        """A token that changes with every write to articles or classifications (to skip needless feed rebuilds).

        Triggers count the writes in one row (migration ``_change_counter``): one lookup, and an edit always
        counts, whatever its ``updated_at`` says.
        """
        row = self._execute(f"SELECT value FROM {CHANGE_COUNTER}").fetchone()
        return str(row[0]) if row else None


def _columns(article: Article) -> dict[str, Any]:
    """The article columns an insert and an edit both write."""
    return {
        "url": article.url, "title": article.title, "published_at": to_db(article.published_at),
        "body_html": article.body_html, "text": article.text, "content_hash": article.content_hash,
        "outlet": article.outlet, "origin_url": article.origin_url,
    }


def _evidence(value: str | None) -> tuple[Evidence, ...]:
    """The stored evidence JSON ([[term, where, count, weight], ...]) back into dataclasses."""
    try:
        rows = json.loads(value) if value else []
    except ValueError:
        return ()  # a damaged cell hides the evidence, not the article
    return tuple(Evidence(term=str(t), where=w, count=int(c), weight=float(x)) for t, w, c, x in rows)


def _stored(r: Mapping[str, Any], excerpts: dict[str, str], scores: dict[str, float]) -> StoredArticle:
    return StoredArticle(
        id=r["id"], source_id=r["source_id"], key=r["key"], url=r["url"], title=r["title"],
        body_html=r["body_html"] or "", text=r["text"] or "", content_hash=r["content_hash"],
        published_at=from_db(r["published_at"]), updated_at=from_db(r["updated_at"]),
        first_seen_at=from_db(r["first_seen_at"]), outlet=r["outlet"], origin_url=r["origin_url"],
        excerpts=excerpts, scores=scores)
