"""Articles in and verdicts out for the classifier on its own: JSON lines, files, HTML pages, explanations."""

from __future__ import annotations

import io
import json
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lxml.html
from lxml import etree

from feedbot.classify.scoring import TopicScore
from feedbot.errors import CorpusError
from feedbot.model import Article, Classification, Entry


def classification_record(article_id: str, verdict: Classification) -> dict[str, Any]:
    """The `feedbot classify` JSON line for one article."""
    matched = [m for m in verdict.matches if m.matched]
    return {
        "id": article_id,
        "topics": [m.topic for m in matched],
        "scores": {m.topic: m.score for m in verdict.matches},
        "evidence": {m.topic: list(dict.fromkeys(e.term for e in m.evidence)) for m in verdict.matches},
        "excerpt": {m.topic: m.excerpt for m in matched},
    }


def read_articles(lines: Iterable[str], name: str = "<stdin>") -> Iterator[Entry]:
    """Parse JSON lines {"id", "title", "body_html", …} into entries; blank lines are skipped.

    Bytes that are not UTF-8 (read with errors="surrogateescape") or a lone surrogate (a JSON escape such as
    \\ud800) stop the run with one line naming the line: one output line per article cannot skip silently.
    """
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        _check_text(line, where, "line")
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{where}: not JSON: {exc.msg}") from exc
        yield entry_from_row(row, where)


def _check_text(text: str, where: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lxml and the UTF-8 output would fail on it later, with a traceback
        char = text[exc.start]
        if what == "line" and "\udc80" <= char <= "\udcff":
            byte = ord(char) - 0xDC00  # surrogateescape keeps the raw byte as U+DC80..U+DCFF
            raise CorpusError(f"{where}: not UTF-8 (byte 0x{byte:02x} at column {exc.start + 1})") from None
        raise CorpusError(f"{where}: {what} holds a lone surrogate (\\u{ord(char):04x}), not text") from None


def entry_from_row(row: Any, where: str) -> Entry:
    """One JSON article object as an entry (id may be a string or a number)."""
    if not isinstance(row, Mapping):
        raise CorpusError(f"{where}: expected a JSON object")
    article_id = row.get("id")
    if isinstance(article_id, bool) or not isinstance(article_id, (str, int)):
        raise CorpusError(f"{where}: 'id' must be a string")
    for key in ("title", "body_html"):
        if not isinstance(row.get(key), str):
            raise CorpusError(f"{where}: {key!r} must be a string")
    url = row.get("url") if isinstance(row.get("url"), str) else None
    for key in ("id", "title", "body_html", "url"):
        _check_text(str(row.get(key) or ""), where, repr(key))
    return Entry(source_id="file", key=str(article_id), url=url, title=row["title"],
                 body_html=row["body_html"])


def entry_from_file(path: str | Path, article_id: str | None = None) -> Entry:
    """One article from .html, .json (one object) or .jsonl (the first row, or the one with article_id)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if path.suffix.lower() in (".html", ".htm"):
        return entry_from_html(text, path.as_uri())
    if path.suffix.lower() == ".json":
        try:
            return entry_from_row(json.loads(text), str(path))
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path}: not JSON: {exc.msg}") from exc
    for entry in read_articles(text.splitlines(), str(path)):
        if article_id is None or entry.key == article_id:
            return entry
    raise CorpusError(f"{path}: no article with id {article_id!r}" if article_id else f"{path}: no articles")


def entry_from_html(page: str, url: str) -> Entry:
    """A minimal reading of any article page: the <h1> (or <title>) and the <p> paragraphs."""
    try:
        root = lxml.html.document_fromstring(page)
    except (etree.ParserError, ValueError) as exc:
        raise CorpusError(f"{url}: not an HTML page: {exc}") from exc
    heading = root.find(".//h1")
    if heading is None:
        heading = root.find(".//title")
    title = " ".join(heading.text_content().split()) if heading is not None else ""
    paragraphs = [lxml.html.tostring(p, encoding="unicode", with_tail=False) for p in root.iter("p")]
    return Entry(source_id="url", key=url, url=url, title=title, body_html="\n".join(paragraphs))


def explanation_dict(article: Article, scores: Iterable[TopicScore]) -> dict[str, Any]:
    """What `feedbot explain --json` prints."""
    return {
        "title": article.title,
        "url": article.url,
        "paragraphs": len(article.paragraphs),
        "sections": len(article.sections),
        "topics": [
            {
                "topic": s.rules.id, "name": s.rules.name, "matched": s.matched, "score": s.score,
                "threshold": s.rules.threshold, "scope": s.scope, "strength": s.strength, "focus": s.focus,
                "min_focus": s.rules.min_focus, "vetoed": s.vetoed,
                "evidence": [asdict(e) for e in s.evidence], "excerpt": s.excerpt,
            }
            for s in scores
        ],
    }


def format_explanation(article: Article, scores: Iterable[TopicScore]) -> str:
    """Each topic's verdict, the numbers behind it, its evidence and its excerpt."""
    out = io.StringIO()
    out.write(f"{article.title}\n")
    if article.url:
        out.write(f"{article.url}\n")
    out.write(f"{len(article.paragraphs)} paragraphs in {len(article.sections)} sections\n")
    for s in scores:
        rules = s.rules
        verdict = "MATCH" if s.matched else "no"
        relation = ">=" if s.score >= rules.threshold else "<"
        out.write(f"\n== {rules.id} ({rules.name}): {verdict}, score {s.score:g} {relation} threshold "
                  f"{rules.threshold:g}\n")
        scope = "the whole article" if s.scope == "article" else f"section “{s.scope}”"
        out.write(f"   strength {s.strength:g} × min(1, focus {s.focus:g} / min_focus {rules.min_focus:g}) "
                  f"in {scope}\n")
        if s.vetoed:
            out.write(f"   ruled out: {s.vetoed}\n")
        if s.evidence:
            width = max(_width(e.term) for e in s.evidence)
            out.write("   evidence:\n")
            for e in s.evidence:
                padding = " " * (width - _width(e.term))
                out.write(f"     {e.term}{padding}  {e.where:<7}  ×{e.count:<3} {e.weight:g}\n")
        else:
            out.write("   evidence: none\n")
        if s.excerpt:
            out.write("   excerpt:\n")
            for line in s.excerpt.splitlines():
                out.write(f"     {line}\n")
    return out.getvalue()


def _width(text: str) -> int:
    """Columns the text takes in a terminal: CJK characters are two wide."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
