"""Story signatures and reprints: which stored article is the same story as an earlier one elsewhere."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from feedbot.store.db import Database, from_db, to_db


@dataclass(frozen=True)
class Reprint:
    """Another outlet's copy of a stored article: shown as "also reported by <outlet> <link>"."""

    article_id: int
    outlet: str
    url: str | None


class ReprintsTable(Database):
    """The `signatures` table: a MinHash signature per article and, for a reprint, its original."""

    def stored_id(self, source_id: str, key: str) -> int | None:
        """The id of the article a source stored under this key, or None."""
        row = self._execute("SELECT id FROM articles WHERE source_id = ? AND key = ?", [source_id, key]).fetchone()
        return row[0] if row else None

    def original_signatures_since(self, since: datetime) -> Iterator[tuple[int, str, bytes, datetime]]:
        """(article id, source, signature, first seen) of the originals (not reprints) first seen since a moment."""
        cursor = self._execute(
            "SELECT article_id, source_id, signature, first_seen_at FROM signatures WHERE first_seen_at >= ? "
            "AND signature IS NOT NULL AND original_id IS NULL ORDER BY first_seen_at, article_id", [to_db(since)])
        yield from ((row[0], row[1], row[2], from_db(row[3])) for row in cursor)

    def record_signature(self, article_id: int, source_id: str, signature: bytes | None, original_id: int | None,
                         now: datetime) -> None:
        """Remember a new article's signature, and the original it reprints (None: a story of its own)."""
        # One statement, atomic alone: no savepoint of its own inside the caller's item savepoint.
        self._execute("INSERT OR REPLACE INTO signatures(article_id, source_id, signature, original_id, "
                      "first_seen_at) VALUES (?, ?, ?, ?, ?)",
                      [article_id, source_id, signature, original_id, to_db(now)])

    def reprint_ids(self) -> set[int]:
        """Ids of every stored article that is a reprint (feeds and lists show them under their original)."""
        return {row[0] for row in self._execute("SELECT article_id FROM signatures WHERE original_id IS NOT NULL")}

    def original_of(self, article_id: int) -> int | None:
        """The article a reprint joins, or None."""
        row = self._execute("SELECT original_id FROM signatures WHERE article_id = ?", [article_id]).fetchone()
        return row[0] if row else None

    def originals_of(self, article_ids: Iterable[int]) -> dict[int, int]:
        """reprint id → the id of the article it joins, for those of the given ids that are reprints."""
        ids = list(article_ids)
        out: dict[int, int] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            cursor = self._execute("SELECT article_id, original_id FROM signatures WHERE original_id IS NOT NULL "
                                   f"AND article_id IN ({', '.join('?' * len(chunk))})", chunk)
            out.update(dict(cursor.fetchall()))
        return out

    def reprints_of(self, article_ids: Iterable[int]) -> dict[int, list[Reprint]]:
        """original id → its reprints (outlet or source, link), first seen first."""
        ids = list(article_ids)
        if not ids:
            return {}
        out: dict[int, list[Reprint]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            cursor = self._execute(
                "SELECT s.original_id, a.id, COALESCE(NULLIF(a.outlet, ''), a.source_id), "
                "COALESCE(a.origin_url, a.url) FROM signatures s JOIN articles a ON a.id = s.article_id "
                f"WHERE s.original_id IN ({', '.join('?' * len(chunk))}) ORDER BY s.first_seen_at, a.id", chunk)
            for original, article_id, outlet, url in cursor:
                out.setdefault(original, []).append(Reprint(article_id, outlet, url))
        return out
