"""Pure classification: an article and topic rules in, a scored verdict per topic out."""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from types import MappingProxyType
from typing import NamedTuple

from feedbot.classify import text as article_text
from feedbot.classify.excerpt import EXCERPT_MAX_CHARS, MIN_SECTION_CHARS, SENTENCE_END, topic_excerpt
from feedbot.classify.layout import is_roundup, items_with
from feedbot.classify.text import Unit, Where, reading_size, share
from feedbot.classify.vocabulary import (
    ANCHOR,
    CONTEXT,
    EXCLUDE,
    FRAME,
    REQUIRED,
    SKIP_PARAGRAPH,
    SKIP_TITLE,
    TERM,
    CompiledTopics,
    Phrase,
    compile_topics,
    is_word_char,
)
from feedbot.model import Article, Classification, Entry, Evidence, TopicMatch
from feedbot.settings.topics import TopicRules
from feedbot.sources.normalize import normalize

__all__ = ["EXCERPT_MAX_CHARS", "TopicScore", "classify", "classify_html", "compile_topics", "explain"]

# One weight point makes this many characters of the sentence it is in "about" the topic: a strong
# term (weight 3) covers a whole ordinary sentence, one mention in a long list sentence only part of it.
CHARS_PER_WEIGHT = 40.0
# A section smaller than MIN_SECTION_CHARS cannot carry a topic on its own (a short list is not a
# section); one whose heading names the topic can be shorter.
MIN_NAMED_SECTION_CHARS = 60
# Below this much body text the title decides what the article is about.
SHORT_BODY_CHARS = 80
# Coverage is counted per sentence, and per item of an enumeration (、): a term in a list of
# policies covers its own item, not the whole list.
# (Written as "one of these characters, a '.' only before white space" rather than as the alternative
# r"[。！？；!?;、]|\.(?=\s)": the same matches, but a pattern that starts with a character class lets the
# regex engine skip to the next candidate character instead of trying the pattern at every position.)
SEGMENT_END = re.compile(r"[。！？；!?;、.](?:(?<!\.)|(?=\s))")


@dataclass
class _TopicTally:
    """Per-topic working state while one article is scored."""

    counts: dict[tuple[str, Where], int]
    weights: dict[str, float]
    hits: dict[int, list[tuple[int, float, str]]]  # unit -> (offset in unit.folded, weight, term)
    skipped: set[int]
    title_vetoed: bool = False
    required_seen: bool = False


def classify(article: Article, topics: Mapping[str, TopicRules]) -> Classification:
    """Score the article against every topic; it belongs to each topic whose score reaches the threshold."""
    return Classification(tuple(
        TopicMatch(verdict.rules.id, verdict.score, verdict.matched, verdict.evidence, excerpt)
        if verdict.evidence or excerpt else _no_evidence(verdict.rules.id, verdict.score, verdict.matched)
        for verdict, excerpt in _judged(article, topics)))


@lru_cache(maxsize=1024, typed=True)  # typed: a score of 0 (min_focus 0) is not one of 0.0
def _no_evidence(topic: str, score: float, matched: bool) -> TopicMatch:
    """The verdict on a topic without evidence, the same for most topics of most articles: made once."""
    return TopicMatch(topic, score, matched)


def classify_html(title: str, body_html: str, topics: Mapping[str, TopicRules], *, key: str = "",
                  url: str | None = None, source_id: str = "adhoc") -> Classification:
    """Normalize raw HTML into an article and classify it."""
    entry = Entry(source_id=source_id, key=key or title, url=url, title=title, body_html=body_html)
    return classify(normalize(entry), topics)


def _tally(compiled: CompiledTopics, units: list[Unit]) -> list[_TopicTally]:
    starts: list[int] = []
    offset = 0
    for unit in units:
        starts.append(offset)
        offset += len(unit.folded) + 1
    text = "\n".join(unit.folded for unit in units)
    # Per topic, in the order found: the phrases that score or exclude, with their sort key first
    # (start, start - end, role, end, unit, phrase); and the others (start, end, unit, phrase).
    scoring: list[list[tuple[int, int, int, int, int, Phrase]]] = [[] for _ in compiled.topics]
    others: list[list[tuple[int, int, int, Phrase]]] = [[] for _ in compiled.topics]
    if len(compiled.automaton):
        for end, (length, open_left, open_right, entries) in compiled.automaton.iter(text):
            start = end - length + 1
            if (open_left or open_right) and (
                (open_left and start > 0 and is_word_char(text[start - 1]))
                or (open_right and end + 1 < len(text) and is_word_char(text[end + 1]))
            ):
                continue
            unit = bisect_right(starts, start) - 1
            for topic, role, phrase in entries:
                if role in _SCORING_ROLES:
                    scoring[topic].append((start, start - end, role, end, unit, phrase))
                else:
                    others[topic].append((start, end, unit, phrase))
    return [
        _tally_topic(scoring[index], others[index], units, starts, groups)
        for index, groups in enumerate(compiled.default_anchor_groups)
    ]


_SCORING_ROLES = frozenset((EXCLUDE, TERM, CONTEXT))


# The tally of a topic nothing in the article matched (most topics of most articles): one, shared, never
# written to (read-only views: a write by mistake raises instead of leaking into the next article).
_NOTHING = _TopicTally(counts=MappingProxyType({}), weights=MappingProxyType({}),  # type: ignore[arg-type]
                       hits=MappingProxyType({}), skipped=frozenset())  # type: ignore[arg-type]


def _tally_topic(scoring: list[tuple[int, int, int, int, int, Phrase]], others: list[tuple[int, int, int, Phrase]],
                 units: list[Unit], starts: list[int], default_groups: frozenset[int]) -> _TopicTally:
    if not scoring and not others:
        return _NOTHING
    tally = _TopicTally(counts={}, weights={}, hits={}, skipped=set())
    anchor_hits: list[tuple[int, int, int, Phrase]] = []
    required_units: set[int] = set()
    frame_hits: list[tuple[int, int, int, Phrase]] = []
    for hit in others:
        unit, role = hit[2], hit[3].role
        if role == ANCHOR:
            anchor_hits.append(hit)
        elif role == SKIP_PARAGRAPH and units[unit].where != "title":
            tally.skipped.add(unit)
        elif role == SKIP_TITLE and units[unit].where == "title":
            tally.title_vetoed = True
        elif role == REQUIRED:
            required_units.add(unit)
        elif role == FRAME:
            frame_hits.append(hit)
    skipped = tally.skipped
    tally.required_seen = bool(required_units - skipped)
    # A phrase inside a longer one of the same topic does not count (碳市场 inside 全国碳市场,
    # 碳交易 inside the excluded 碳交易板块); partly overlapping phrases both count. (The sort is stable:
    # of phrases with the same span and role, the first found is kept.)
    scoring.sort(key=_SCORING_ORDER)
    kept: list[tuple[int, int, Phrase]] = []
    excluded: list[tuple[int, int]] = []
    max_end = -1
    for start, _, role, end, unit, phrase in scoring:
        if role == EXCLUDE:
            excluded.append((start, end))
        if end <= max_end:
            continue
        max_end = end
        if role != EXCLUDE and unit not in skipped:
            kept.append((start, unit, phrase))
    if frame_hits:
        kept.extend(_framed(frame_hits, units, starts, skipped))
    anchors: dict[int, set[int]] = {}  # unit -> cooccur groups anchored there
    # Anchors only decide whether context terms count: without a context term they change nothing.
    if any(phrase.role == CONTEXT for _, _, phrase in kept):
        for start, end, unit, phrase in anchor_hits:
            # An anchor inside an excluded phrase is not one (碳排放 inside 碳排放管理员).
            if not excluded or not any(a <= start and end <= b for a, b in excluded):
                if unit in anchors:
                    anchors[unit].add(phrase.group)
                else:
                    anchors[unit] = {phrase.group}
        if default_groups:
            for _, unit, phrase in kept:
                if phrase.role == TERM:
                    anchors.setdefault(unit, set()).update(default_groups)
    # The title (unit 0) sets the context of the whole article: its anchors hold in every paragraph.
    title_anchors = anchors.get(0, ())
    counts, weights, unit_hits = tally.counts, tally.weights, tally.hits
    for start, unit, phrase in kept:
        if phrase.role == CONTEXT and phrase.group not in title_anchors and phrase.group not in anchors.get(unit, ()):
            continue
        key = (phrase.label, units[unit].where)
        counts[key] = counts.get(key, 0) + 1
        weights[phrase.label] = phrase.weight
        if unit in unit_hits:
            unit_hits[unit].append((start - starts[unit], phrase.weight, phrase.label))
        else:
            unit_hits[unit] = [(start - starts[unit], phrase.weight, phrase.label)]
    return tally


_SCORING_ORDER = itemgetter(0, 1, 2)  # by start, longest first, excluding phrases first


def _framed(frame_hits: list[tuple[int, int, int, Phrase]], units: list[Unit], starts: list[int],
            skipped: set[int]) -> list[tuple[int, int, Phrase]]:
    """One hit per sentence in which every slot of a frame is filled, at the sentence's first frame word."""
    filled: dict[tuple[int, int, int], dict[int, int]] = {}  # (unit, sentence, frame) -> slot -> first start
    phrase_of: dict[tuple[int, int, int], Phrase] = {}
    ends_of: dict[int, list[int]] = {}
    for start, _, unit, phrase in frame_hits:
        if unit in skipped:
            continue
        if unit not in ends_of:
            ends_of[unit] = [m.end() for m in SENTENCE_END.finditer(units[unit].folded)]
        key = (unit, bisect_right(ends_of[unit], start - starts[unit]), phrase.group)
        filled.setdefault(key, {}).setdefault(phrase.slot, start)
        phrase_of[key] = phrase
    out = []
    for key, slots in filled.items():
        phrase = phrase_of[key]
        if len(slots) == phrase.slot_count:
            out.append((min(slots.values()), key[0], phrase))
    return out


@dataclass(frozen=True)
class TopicScore:
    """How one topic's score came about: the numbers `feedbot explain` shows."""

    rules: TopicRules
    score: float  # strength × min(1, focus / min_focus), of the scope that scores best
    matched: bool
    scope: str  # "article", or the heading of the section that carries the topic
    strength: float  # sum of the evidence weights in that scope
    focus: float  # share of that scope's text about the topic, 0..1
    vetoed: str | None  # why the topic was ruled out regardless of score
    evidence: tuple[Evidence, ...]  # over the whole article
    excerpt: str

    def as_match(self) -> TopicMatch:
        """The verdict as the rest of feedbot sees it."""
        return TopicMatch(self.rules.id, self.score, self.matched, self.evidence, self.excerpt)


def explain(article: Article, topics: Mapping[str, TopicRules]) -> tuple[TopicScore, ...]:
    """Score the article against every topic, keeping the intermediate numbers."""
    return tuple(TopicScore(*verdict, excerpt) for verdict, excerpt in _judged(article, topics))


class _Verdict(NamedTuple):
    """A topic's verdict while the article is judged: TopicScore's fields, but the excerpt.

    A named tuple: one is built for every topic of every article, and classify never needs the TopicScore.
    """

    rules: TopicRules
    score: float
    matched: bool
    scope: str
    strength: float
    focus: float
    vetoed: str | None
    evidence: tuple[Evidence, ...]


def _judged(article: Article, topics: Mapping[str, TopicRules]) -> list[tuple[_Verdict, str]]:
    """Each topic's verdict, and its excerpt ("" unless it matched)."""
    compiled = compile_topics(topics)
    units = article_text.units(article)
    tallies = _tally(compiled, units)
    roundup = is_roundup(units)
    segment_ends: dict[int, list[int]] = {}  # shared by the topics: each unit is split into segments once
    judged = [_judge(rules, tally, units, roundup, segment_ends)
              for rules, tally in zip(compiled.topics, tallies, strict=True)]
    judged = _apply_yields(judged)
    several = sum(verdict.matched for verdict, _ in judged) > 1
    return [(verdict, topic_excerpt(units, focus, tally.skipped, several) if verdict.matched else "")
            for (verdict, focus), tally in zip(judged, tallies, strict=True)]


def _apply_yields(judged: list[tuple[_Verdict, dict[int, float]]]) -> list[tuple[_Verdict, dict[int, float]]]:
    """A topic that is the background of another topic's headline story does not match on its own."""
    headline = {verdict.rules.id for verdict, _ in judged
                if verdict.matched and any(e.where == "title" for e in verdict.evidence)}
    if not headline:
        return judged
    out = []
    for verdict, focus in judged:
        if verdict.matched:
            named = any(e.where in ("title", "heading") for e in verdict.evidence)
            other = next((o for o in verdict.rules.yield_to if o in headline), None)
            if other and not named:
                verdict = verdict._replace(
                    matched=False, vetoed=f"the headline is about {other}; this topic is named in no title or heading")
        out.append((verdict, focus))
    return out


def _judge(rules: TopicRules, tally: _TopicTally, units: list[Unit], roundup: bool = False,
           segment_ends: dict[int, list[int]] | None = None) -> tuple[_Verdict, dict[int, float]]:
    """Score the whole article, and each later section on its own: a topic may fill one section."""
    if not tally.hits:
        # No evidence anywhere: every scope scores 0 and the whole article, the first candidate, wins the
        # tie; what is left to say is whether a veto applies (most topics, most articles).
        return _no_hits(rules, _veto(rules, tally, units, roundup)), {}
    boost = {"title": rules.title_boost, "heading": rules.heading_boost, "body": 1.0}
    evidence = _evidence(tally.counts, tally.weights, boost)
    focus_by_unit = _unit_focus(tally, units, {} if segment_ends is None else segment_ends)
    body = [i for i, u in enumerate(units) if u.where != "title" and i not in tally.skipped]
    focus = share(body, units, focus_by_unit)
    if 0 in tally.hits and sum(units[i].size for i in body) < SHORT_BODY_CHARS:
        focus = 1.0  # a flash or a video post: too little text to judge, the title says what it is
    candidates = [("article", sum(e.weight for e in evidence), focus)]
    for section, members in _sections(body, units).items():
        hit = [i for i in members if i in tally.hits]
        if not hit:
            continue  # no evidence: it scores 0, and cannot beat the whole article, which comes first
        named = any(units[i].where == "heading" for i in hit)
        least = MIN_NAMED_SECTION_CHARS if named else MIN_SECTION_CHARS
        if units[members[0]].in_lead or sum(units[i].size for i in members) < least:
            continue  # a news peg in the lead, or a short list, does not carry a topic
        if roundup and not named:
            continue  # in a roundup a section is just more items
        counts: dict[tuple[str, Where], int] = {}
        for i in hit:
            for _, _, term in tally.hits[i]:
                counts[(term, units[i].where)] = counts.get((term, units[i].where), 0) + 1
        strength = sum(e.weight for e in _evidence(counts, tally.weights, boost))
        heading = next((units[i].text for i in members if units[i].where == "heading"), f"#{section}")
        candidates.append((heading, strength, share(members, units, focus_by_unit)))
    scope, strength, focus = max(candidates, key=lambda candidate: _scored(rules, candidate[1], candidate[2]))
    score = _scored(rules, strength, focus)
    vetoed = _veto(rules, tally, units, roundup)
    matched = vetoed is None and score > 0 and score >= rules.threshold
    verdict = _Verdict(rules, round(score, 3), matched, scope, round(strength, 3), round(focus, 3), vetoed, evidence)
    return verdict, focus_by_unit


# The verdict on a topic without hits depends on its rules and its veto only: made once per pair. Keyed by
# the rules' identity (hashing a TopicRules hashes every rule): the compiled rules keep them alive, and an
# entry whose rules are gone is replaced when the id is reused (the verdict holds its rules to compare).
_NO_HITS: dict[tuple[int, str | None], _Verdict] = {}


def _no_hits(rules: TopicRules, vetoed: str | None) -> _Verdict:
    key = (id(rules), vetoed)
    verdict = _NO_HITS.get(key)
    if verdict is None or verdict.rules is not rules:
        if len(_NO_HITS) >= 1024:
            _NO_HITS.clear()
        verdict = _NO_HITS[key] = _Verdict(rules, round(_scored(rules, 0, 0.0), 3), False, "article", 0, 0.0,
                                           vetoed, ())
    return verdict


def _scored(rules: TopicRules, strength: float, share: float) -> float:
    """A scope's score: its strength, scaled down when less than min_focus of its text is about the topic."""
    return strength * min(1.0, share / rules.min_focus) if rules.min_focus > 0 else strength


def _veto(rules: TopicRules, tally: _TopicTally, units: list[Unit], roundup: bool) -> str | None:
    """Why the topic is ruled out whatever it scores, or None."""
    if tally.title_vetoed:
        return "the title has an excluded phrase"
    if rules.require_any and not tally.required_seen:
        return "none of require_any occurs"
    if roundup and 0 not in tally.hits and items_with(set(tally.hits), units) < 2:
        return "one item of a roundup or list, not the article's subject"
    return None


def _evidence(counts: Mapping[tuple[str, Where], int], weights: Mapping[str, float],
              boost: Mapping[str, float]) -> tuple[Evidence, ...]:
    """Each term's contribution: weight × boost of where it was × (1 + log2 count), strongest first."""
    # Sorted as plain tuples (term and where are never both equal, so count is never compared).
    rows = sorted((-round(weights[term] * boost[where] * (1 + math.log2(count)), 3), term, where, count)
                  for (term, where), count in counts.items())
    return tuple(_evidence_of(term, where, count, -negated) for negated, term, where, count in rows)


# Evidence is immutable, and articles share the same few (term, where, count, weight): each is made once
# (building a frozen dataclass costs ten dictionary look-ups). Bounded: emptied when it gets large.
_EVIDENCE: dict[tuple[str, Where, int, float], Evidence] = {}
_EVIDENCE_MAX = 50_000


def _evidence_of(term: str, where: Where, count: int, weight: float) -> Evidence:
    if not weight > 0:  # a zero weight (a boost of 0): 0.0 and -0.0 are one key, but not one repr
        return Evidence(term, where, count, weight)
    key = (term, where, count, weight)
    evidence = _EVIDENCE.get(key)
    if evidence is None:
        if len(_EVIDENCE) >= _EVIDENCE_MAX:
            _EVIDENCE.clear()
        evidence = _EVIDENCE[key] = Evidence(term, where, count, weight)
    return evidence


def _sections(body: list[int], units: list[Unit]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for i in body:
        out.setdefault(units[i].section, []).append(i)
    return out


def _unit_focus(tally: _TopicTally, units: list[Unit], segment_ends: dict[int, list[int]]) -> dict[int, float]:
    """How much of each heading or paragraph is about the topic, 0..1.

    Each weight point covers CHARS_PER_WEIGHT characters of the sentence it occurs in, so one
    term in a long list sentence covers little, and a sentence full of terms is covered whole.
    """
    out = {}
    for unit, hits in tally.hits.items():
        info = units[unit]
        if info.where == "title":
            continue
        ends = segment_ends.get(unit)
        if ends is None:
            ends = segment_ends[unit] = [m.end() for m in SEGMENT_END.finditer(info.folded)]
        per_sentence: dict[int, float] = {}
        for offset, weight, _ in hits:
            sentence = bisect_right(ends, offset)
            per_sentence[sentence] = per_sentence.get(sentence, 0.0) + weight
        bounds = [0, *ends, len(info.folded)]
        covered = sum(
            min(reading_size(info.folded[bounds[s]:bounds[s + 1]]), weight * CHARS_PER_WEIGHT)
            for s, weight in per_sentence.items()
        )
        out[unit] = min(1.0, covered / max(info.size, 1.0))
    return out


