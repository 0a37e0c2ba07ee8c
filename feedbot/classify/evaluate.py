"""Offline tools around the classifier: read article files, measure on a labelled corpus, explain."""

from __future__ import annotations

import io
import json
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lxml.html
from lxml import etree

from feedbot.classify.scoring import TopicScore, explain
from feedbot.errors import CorpusError
from feedbot.model import Article, Classification, Entry
from feedbot.settings.topics import TopicRules
from feedbot.sources.normalize import normalize


@dataclass(frozen=True)
class LabelledArticle:
    """One corpus row: what the classifier reads and the topics a person gave it."""

    id: str
    title: str
    body_html: str
    labels: frozenset[str]


@dataclass(frozen=True)
class TopicMetrics:
    """Counts and scores for one topic (or the micro-average over all of them)."""

    topic: str
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        """Share of predicted articles that were labelled; 1.0 when nothing was predicted."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """Share of labelled articles that were predicted; 1.0 when nothing was labelled."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class Mistake:
    """One wrong call: a false positive (fp) or a false negative (fn), with what the classifier saw."""

    kind: str  # "fp" or "fn"
    topic: str
    id: str
    title: str
    score: float
    threshold: float
    evidence: tuple[str, ...]  # "term@where×count=weight", strongest first
    scope: str = "article"  # where the best score came from: the article or one section
    strength: float = 0.0
    focus: float = 0.0
    min_focus: float = 0.0
    vetoed: str | None = None


@dataclass(frozen=True)
class EvalReport:
    """The outcome of one evaluation run."""

    articles: int
    topics: tuple[TopicMetrics, ...]
    micro: TopicMetrics
    mistakes: tuple[Mistake, ...]

    @property
    def macro(self) -> tuple[float, float, float]:
        """Precision, recall and F1 averaged over topics, each topic counting once."""
        return _macro(self.topics)


def _macro(topics: Iterable[TopicMetrics]) -> tuple[float, float, float]:
    rows = list(topics)
    if not rows:
        return (1.0, 1.0, 1.0)
    return (sum(m.precision for m in rows) / len(rows), sum(m.recall for m in rows) / len(rows),
            sum(m.f1 for m in rows) / len(rows))


def read_corpus(lines: Iterable[str], name: str = "<corpus>") -> Iterator[LabelledArticle]:
    """Parse JSON lines with id, title, body_html and labels; blank lines are skipped."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{name}:{number}: not JSON: {exc.msg}") from exc
        yield labelled_article(row, f"{name}:{number}")


def labelled_article(row: Any, where: str) -> LabelledArticle:
    """Validate one corpus row."""
    if not isinstance(row, Mapping):
        raise CorpusError(f"{where}: expected a JSON object")
    for key in ("id", "title", "body_html"):
        if not isinstance(row.get(key), str):
            raise CorpusError(f"{where}: {key!r} must be a string")
    labels = row.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise CorpusError(f"{where}: 'labels' must be a list of topic ids")
    return LabelledArticle(row["id"], row["title"], row["body_html"], frozenset(labels))


def load_corpus(path: str | Path) -> list[LabelledArticle]:
    """Read a corpus file."""
    with open(path, encoding="utf-8") as handle:
        return list(read_corpus(handle, str(path)))


def evaluate(articles: Iterable[LabelledArticle], topics: Mapping[str, TopicRules]) -> EvalReport:
    """Classify every article and compare with its labels, topic by topic."""
    counts = {topic: [0, 0, 0] for topic in topics}
    mistakes: list[Mistake] = []
    total = 0
    for article in articles:
        total += 1
        entry = Entry(source_id="corpus", key=article.id, url=None, title=article.title,
                      body_html=article.body_html)
        verdict = {score.rules.id: score for score in explain(normalize(entry), topics)}
        for topic, rules in topics.items():
            match = verdict.get(topic)
            predicted = bool(match and match.matched)
            labelled = topic in article.labels
            if predicted and labelled:
                counts[topic][0] += 1
            elif predicted or labelled:
                kind = "fp" if predicted else "fn"
                counts[topic][1 if predicted else 2] += 1
                mistakes.append(_mistake(kind, article, rules, match))
    per_topic = tuple(TopicMetrics(topic, *counts[topic]) for topic in topics)
    micro = TopicMetrics(
        "micro", sum(m.tp for m in per_topic), sum(m.fp for m in per_topic), sum(m.fn for m in per_topic)
    )
    return EvalReport(total, per_topic, micro, tuple(mistakes))


def _mistake(kind: str, article: LabelledArticle, rules: TopicRules, match: TopicScore | None) -> Mistake:
    if match is None:
        return Mistake(kind, rules.id, article.id, article.title, 0.0, rules.threshold, ())
    evidence = tuple(f"{e.term}@{e.where}×{e.count}={e.weight:g}" for e in match.evidence)
    return Mistake(kind, rules.id, article.id, article.title, match.score, rules.threshold, evidence,
                   match.scope, match.strength, match.focus, rules.min_focus, match.vetoed)


def report_dict(report: EvalReport) -> dict[str, Any]:
    """The report as plain data for --json."""

    def metrics(m: TopicMetrics) -> dict[str, Any]:
        return {"tp": m.tp, "fp": m.fp, "fn": m.fn, "precision": round(m.precision, 4),
                "recall": round(m.recall, 4), "f1": round(m.f1, 4)}

    return {
        "articles": report.articles,
        "topics": {m.topic: metrics(m) for m in report.topics},
        "micro": metrics(report.micro),
        "macro": dict(zip(("precision", "recall", "f1"), (round(v, 4) for v in report.macro), strict=True)),
        "mistakes": [asdict(m) | {"evidence": list(m.evidence)} for m in report.mistakes],
    }


def format_report(report: EvalReport, *, details: bool = False) -> str:
    """A human-readable table of the metrics, then every mistake with the evidence behind it."""
    return format_table(report) + format_mistakes(report, details=details)


def format_table(report: EvalReport) -> str:
    """The metrics table of one report."""
    out = io.StringIO()
    width = max([len(m.topic) for m in report.topics] + [len("topic")])
    out.write(f"{report.articles} articles\n\n")
    out.write(f"{'topic':<{width}}  {'TP':>4} {'FP':>4} {'FN':>4}  {'precision':>9} {'recall':>7} "
              f"{'F1':>6}\n")
    for m in (*report.topics, report.micro):
        out.write(f"{m.topic:<{width}}  {m.tp:>4} {m.fp:>4} {m.fn:>4}  {m.precision:>9.3f} {m.recall:>7.3f} "
                  f"{m.f1:>6.3f}\n")
    return out.getvalue()


def format_mistakes(report: EvalReport, *, details: bool = False) -> str:
    """Every miss with its score and evidence; with details, the scope, focus and veto that decided it."""
    out = io.StringIO()
    for kind, heading in (("fp", "False positives"), ("fn", "False negatives")):
        rows = [m for m in report.mistakes if m.kind == kind]
        out.write(f"\n{heading} ({len(rows)}):\n")
        for m in rows:
            out.write(f"  [{m.topic}] {m.id}  {m.title}\n")
            evidence = ", ".join(m.evidence if details else m.evidence[:8]) or "no evidence"
            out.write(f"      score {m.score:g} / threshold {m.threshold:g}: {evidence}\n")
            if details:
                scope = "whole article" if m.scope == "article" else f"section “{m.scope}”"
                out.write(f"      = strength {m.strength:g} × min(1, focus {m.focus:g} / {m.min_focus:g}) "
                          f"in the {scope}")
                out.write(f"; ruled out: {m.vetoed}\n" if m.vetoed else "\n")
    return out.getvalue()


def format_many(reports: list[tuple[str, EvalReport]], *, errors: bool = False) -> str:
    """One table per corpus (its misses too when errors is set), then a micro/macro summary."""
    out = io.StringIO()
    for name, report in reports:
        out.write(f"== {name}: ")
        out.write(format_report(report, details=True) if errors else format_table(report))
        out.write("\n")
    out.write(format_summary(reports))
    return out.getvalue()


def format_summary(reports: list[tuple[str, EvalReport]]) -> str:
    """Micro and macro precision/recall/F1 per corpus and over all of them together."""
    rows = [(name, report.micro, report.macro) for name, report in reports]
    if len(reports) > 1:
        pooled = pool([report for _, report in reports])
        rows.append(("all", pooled.micro, pooled.macro))
    width = max(len(name) for name, _, _ in rows)
    out = io.StringIO()
    out.write(f"{'corpus':<{width}}  {'micro P':>7} {'R':>6} {'F1':>6}  {'macro P':>7} {'R':>6} {'F1':>6}\n")
    for name, micro, (p, r, f1) in rows:
        out.write(f"{name:<{width}}  {micro.precision:>7.3f} {micro.recall:>6.3f} {micro.f1:>6.3f}  "
                  f"{p:>7.3f} {r:>6.3f} {f1:>6.3f}\n")
    return out.getvalue()


def pool(reports: list[EvalReport]) -> EvalReport:
    """Several reports as one, as if their corpora were a single file."""
    names = list(dict.fromkeys(m.topic for report in reports for m in report.topics))
    topics = tuple(
        TopicMetrics(name, *(sum(getattr(m, field) for report in reports for m in report.topics if m.topic == name)
                             for field in ("tp", "fp", "fn")))
        for name in names
    )
    micro = TopicMetrics("micro", sum(m.tp for m in topics), sum(m.fp for m in topics), sum(m.fn for m in topics))
    return EvalReport(sum(r.articles for r in reports), topics, micro,
                      tuple(m for r in reports for m in r.mistakes))


def reports_dict(reports: list[tuple[str, EvalReport]]) -> dict[str, Any]:
    """Several corpora for --json: each report, and the pooled summary."""
    pooled = pool([report for _, report in reports])
    summary = report_dict(pooled)
    del summary["mistakes"]
    return {"corpora": [{"corpus": name, **report_dict(report)} for name, report in reports], "all": summary}


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


def run_eval(paths: Iterable[str], topics: Mapping[str, TopicRules], *, as_json: bool = False,
             errors: bool = False) -> str:
    """What `feedbot eval` prints for one or several corpus files."""
    reports = [(str(path), evaluate(load_corpus(path), topics)) for path in paths]
    if as_json:
        data = report_dict(reports[0][1]) if len(reports) == 1 else reports_dict(reports)
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if len(reports) == 1:  # one corpus: its table and every miss, as before; the summary adds macro
        return format_report(reports[0][1], details=errors) + "\n" + format_summary(reports)
    return format_many(reports, errors=errors)
