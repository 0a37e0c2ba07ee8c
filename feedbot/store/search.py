"""Full-text search over stored articles: FTS5 with the trigram tokenizer, LIKE for terms it cannot index."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from feedbot.model import StoredArticle
from feedbot.store.articles import ArticlesTable
from feedbot.store.db import SEARCH_TABLE, create_search_index, has_search_index

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
    """The `articles_fts` index (kept by triggers on `articles`) and the queries over it."""

    def search_indexed(self) -> bool:
        """Whether searches can use the full-text index (else they scan)."""
        if getattr(self, "_search_indexed", None) is None:
            self._search_indexed = has_search_index(self.db.conn)
        return self._search_indexed

    def rebuild_search_index(self) -> bool:
        """Build the index anew from the articles (creating it if this SQLite now can); True when it exists."""
        with self.transaction():
            if create_search_index(self.db.conn):
                self._execute(f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}) VALUES ('rebuild')")
        self._search_indexed = None
        return self.search_indexed()

    def search(self, query: str, topic: str | None = None, limit: int = 20, offset: int = 0) -> SearchResults:
        """Articles holding every term of ``query`` (in the title or text), newest stored first."""
        terms = search_terms(query)
        if not terms:
            return SearchResults((), False, self.search_indexed())
        long_terms = [t for t in terms if len(t) >= TRIGRAM]
        indexed = bool(long_terms) and self.search_indexed()
        short_terms = [t for t in terms if t not in long_terms] if indexed else terms
        where: list[str] = []
        params: list[Any] = []
        row_id = "f.rowid" if indexed else "a.id"
        if indexed:
            where.append(f"{SEARCH_TABLE} MATCH ?")
            params.append(" AND ".join('"' + t.replace('"', '""') + '"' for t in long_terms))
        likes = []
        for term in short_terms:
            likes.append("(a.title LIKE ? ESCAPE '\\' OR a.text LIKE ? ESCAPE '\\')")
            pattern = "%" + _LIKE_SPECIAL.sub(r"\\\1", term) + "%"
            params += [pattern, pattern]
        if likes and indexed:
            where.append(f"EXISTS (SELECT 1 FROM articles a WHERE a.id = f.rowid AND {' AND '.join(likes)})")
        else:
            where += likes
        if topic is not None:
            where.append(f"EXISTS (SELECT 1 FROM classifications c WHERE c.article_id = {row_id} AND c.topic = ?)")
            params.append(topic)
        # Newest stored first walks rowid order (the index's own order), so a page stops after `limit` rows
        # instead of ranking every match (a common term matches half the archive).
        source = f"{SEARCH_TABLE} f" if indexed else "articles a"
        rows = self._execute(f"SELECT {row_id} FROM {source} WHERE {' AND '.join(where)} "
                             f"ORDER BY {row_id} DESC LIMIT ? OFFSET ?", [*params, limit + 1, offset]).fetchall()
        ids = [r[0] for r in rows[:limit]]
        snippets = self._snippets(ids, params[0]) if indexed else {}
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
