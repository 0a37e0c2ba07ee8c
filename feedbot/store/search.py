"""Full-text search over stored articles: FTS5 with the trigram tokenizer, LIKE for terms it cannot index and
for articles still queued for it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from feedbot.model import StoredArticle
from feedbot.store.articles import ArticlesTable
from feedbot.store.migrations import create_search_index
from feedbot.store.searchschema import SEARCH_QUEUE, SEARCH_TABLE, has_search_index, has_table

# Snippets come back as plain text with these around each match; the page escapes the text, then turns them
# into <mark>. Control characters never survive normalization, so they cannot come from an article.
MARK_OPEN, MARK_CLOSE = "\x02", "\x03"
TRIGRAM = 3  # the trigram tokenizer indexes 3-character runs: shorter terms cannot use the index
MAX_TERMS = 8
MAX_TERM_CHARS = 64
SNIPPET_TOKENS = 40  # about as many characters: trigram tokens are one per character
SNIPPET_CONTEXT = 30  # characters either side of the first match, for snippets made here
_LIKE_SPECIAL = re.compile(r"([\\%_])")


@dataclass(frozen=True)
class SearchHit:
    """One article a search found, with a snippet of its text (plain text, matches between MARK_*)."""

    article: StoredArticle
    snippet: str


@dataclass(frozen=True)
class SearchResults:
    """One page of hits, newest stored first; ``indexed`` is False when a LIKE scan answered."""

    hits: tuple[SearchHit, ...]
    has_more: bool
    indexed: bool


def search_terms(query: str) -> list[str]:
    """The query split at spaces: each term must occur (capped in number and length)."""
    terms = [t[:MAX_TERM_CHARS] for t in query.split()]
    return list(dict.fromkeys(terms))[:MAX_TERMS]


class SearchTable(ArticlesTable):
    """The `articles_fts` index, the `search_queue` of articles written since (indexed in batches, scanned
    meanwhile), and the queries over both."""

    def search_indexed(self) -> bool:
        """Whether searches can use the full-text index (else they scan)."""
        if getattr(self, "_search_indexed", None) is None:
            self._search_indexed = has_search_index(self.db.conn)
            # An index without a queue: a file from before _search_queue, opened without migrating.
            self._search_queued = self._search_indexed and has_table(self.db.conn, SEARCH_QUEUE)
        return self._search_indexed

    def rebuild_search_index(self) -> bool:
        """Build the index anew from the articles (creating it if this SQLite now can); True when it exists."""
        with self.transaction():
            if create_search_index(self.db.conn):
                self._execute(f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}) VALUES ('rebuild')")
                self._execute(f"DELETE FROM {SEARCH_QUEUE}")  # every article is indexed now
        self._search_indexed = None
        return self.search_indexed()

    def index_pending(self, limit: int = 500) -> int:
        """Index up to ``limit`` queued articles, oldest first, in one transaction; returns how many (0: none).

        Each costs about what the triggers used to on the poll path (FTS5 tokenizing title and text): the
        daemon calls this in batches between other work, never inside another transaction of its own.
        """
        if not self.search_indexed() or not self._search_queued:
            return 0
        with self.transaction():
            last, count = self._execute(
                f"SELECT MAX(article_id), COUNT(*) FROM (SELECT article_id FROM {SEARCH_QUEUE} "
                "ORDER BY article_id LIMIT ?)", [limit]).fetchone()
            if not count:
                return 0
            self._execute(f"INSERT INTO {SEARCH_TABLE}(rowid, title, text) SELECT a.id, a.title, a.text "
                          f"FROM {SEARCH_QUEUE} q JOIN articles a ON a.id = q.article_id WHERE q.article_id <= ?",
                          [last])
            self._execute(f"DELETE FROM {SEARCH_QUEUE} WHERE article_id <= ?", [last])
        return count

    def search_queue_length(self) -> int:
        """How many stored articles wait for the index (search finds them by a scan meanwhile)."""
        if not self.search_indexed() or not self._search_queued:
            return 0
        return self._execute(f"SELECT COUNT(*) FROM {SEARCH_QUEUE}").fetchone()[0]

    def search(self, query: str, topic: str | None = None, limit: int = 20, offset: int = 0) -> SearchResults:
        """Articles holding every term of ``query`` (in the title or text), newest stored first."""
        terms = search_terms(query)
        if not terms:
            return SearchResults((), False, self.search_indexed())
        long_terms = [t for t in terms if len(t) >= TRIGRAM]
        indexed = bool(long_terms) and self.search_indexed()
        match = " AND ".join('"' + t.replace('"', '""') + '"' for t in long_terms)
        if not indexed:
            sql, params = _scan("articles a", "a.id", terms, topic)
            sql, params = f"{sql} LIMIT ? OFFSET ?", [*params, limit + 1, offset]
        else:
            sql, params = _indexed(match, [t for t in terms if t not in long_terms], topic)
            if self._search_queued:
                # Articles written since the last indexing batch are found by a scan of the queue (a few
                # hundred rows in a running daemon); an article is in one of the two, never both.
                queued, queued_params = _scan(f"{SEARCH_QUEUE} q JOIN articles a ON a.id = q.article_id",
                                              "q.article_id", terms, topic)
                enough = offset + limit + 1
                sql = (f"SELECT id FROM ({sql} LIMIT ?) UNION SELECT id FROM ({queued} LIMIT ?) "
                       "ORDER BY id DESC LIMIT ? OFFSET ?")
                params = [*params, enough, *queued_params, enough, limit + 1, offset]
            else:
                params = [*params, limit + 1, offset]
                sql = f"{sql} LIMIT ? OFFSET ?"
        rows = self._execute(sql, params).fetchall()
        ids = [r[0] for r in rows[:limit]]
        snippets = self._snippets(ids, match) if indexed else {}
        hits = tuple(SearchHit(a, snippets.get(a.id) or _snippet(a.text, terms))
                     for a in self.articles_by_id(ids))
        return SearchResults(hits, len(rows) > limit, indexed)

    def _snippets(self, ids: list[int], match: str) -> dict[int, str]:
        """FTS5's own snippets of the text column, for one page of hits only."""
        if not ids:
            return {}
        rows = self._execute(
            f"SELECT rowid, snippet({SEARCH_TABLE}, 1, ?, ?, '…', ?) FROM {SEARCH_TABLE} "
            f"WHERE {SEARCH_TABLE} MATCH ? AND rowid IN ({', '.join('?' * len(ids))})",
            [MARK_OPEN, MARK_CLOSE, SNIPPET_TOKENS, match, *ids]).fetchall()
        # A match only in the title leaves the text without a mark: the start of the text reads better then.
        return {r[0]: r[1] for r in rows if MARK_OPEN in (r[1] or "")}


def _likes(terms: list[str]) -> tuple[list[str], list[Any]]:
    """One condition per term (in the title or the text of `a`), LIKE patterns with their specials escaped."""
    likes, params = [], []
    for term in terms:
        likes.append("(a.title LIKE ? ESCAPE '\\' OR a.text LIKE ? ESCAPE '\\')")
        pattern = "%" + _LIKE_SPECIAL.sub(r"\\\1", term) + "%"
        params += [pattern, pattern]
    return likes, params


def _in_topic(row_id: str, topic: str | None) -> tuple[list[str], list[Any]]:
    """The condition that the article ``row_id`` names sits in a channel (none without a topic)."""
    if topic is None:
        return [], []
    return [f"EXISTS (SELECT 1 FROM classifications c WHERE c.article_id = {row_id} AND c.topic = ?)"], [topic]


def _indexed(match: str, short_terms: list[str], topic: str | None) -> tuple[str, list[Any]]:
    """Ids the index finds, newest stored first; short terms (under a trigram) checked on the article row.

    Newest stored first walks rowid order (the index's own order), so a page stops after `limit` rows
    instead of ranking every match (a common term matches half the archive).
    """
    where, params = [f"{SEARCH_TABLE} MATCH ?"], [match]
    likes, like_params = _likes(short_terms)
    if likes:
        where.append(f"EXISTS (SELECT 1 FROM articles a WHERE a.id = f.rowid AND {' AND '.join(likes)})")
        params += like_params
    topics, topic_params = _in_topic("f.rowid", topic)
    return (f"SELECT f.rowid AS id FROM {SEARCH_TABLE} f WHERE {' AND '.join(where + topics)} "
            "ORDER BY f.rowid DESC", params + topic_params)


def _scan(source: str, row_id: str, terms: list[str], topic: str | None) -> tuple[str, list[Any]]:
    """Ids of the articles of ``source`` (aliased `a`) holding every term, by LIKE, newest stored first."""
    likes, params = _likes(terms)
    topics, topic_params = _in_topic(row_id, topic)
    return (f"SELECT {row_id} AS id FROM {source} WHERE {' AND '.join(likes + topics)} ORDER BY {row_id} DESC",
            params + topic_params)


def _snippet(text: str, terms: list[str]) -> str:
    """A window of ``text`` around the first term found, every term in it marked (for LIKE-scan hits)."""
    lowered = text.lower()
    found = [(lowered.find(t.lower()), t) for t in terms]
    found = [(i, t) for i, t in found if i >= 0]
    if not found:
        return text[: SNIPPET_CONTEXT * 2] + ("…" if len(text) > SNIPPET_CONTEXT * 2 else "")
    first = min(i for i, _ in found)
    start, end = max(0, first - SNIPPET_CONTEXT), min(len(text), first + SNIPPET_CONTEXT * 2)
    window = text[start:end]
    pattern = re.compile("|".join(re.escape(t) for _, t in sorted(found, key=lambda f: -len(f[1]))), re.I)
    marked = pattern.sub(lambda m: MARK_OPEN + m.group(0) + MARK_CLOSE, window)
    return ("…" if start else "") + marked + ("…" if end < len(text) else "")
