"""Topic rules compiled for matching: every phrase of every topic in one Aho-Corasick automaton."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import ahocorasick

from feedbot.classify.mainland import phrase_to_mainland
from feedbot.settings.fold import fold
from feedbot.settings.topics import TopicRules

# Roles a phrase plays for a topic. Excluding phrases sort first so that an exclusion with the
# same span as a term wins.
EXCLUDE, TERM, CONTEXT, ANCHOR, SKIP_PARAGRAPH, SKIP_TITLE, REQUIRED, FRAME = range(8)


@dataclass(frozen=True)
class Phrase:
    """What one matched phrase means for one topic."""

    topic: int
    role: int
    label: str  # the phrase as the rules wrote it (shown as evidence)
    weight: float
    group: int  # index of the cooccur rule for CONTEXT/ANCHOR, of the frame for FRAME, else -1
    slot: int = -1  # FRAME: which slot of the frame this word fills
    slot_count: int = 0  # FRAME: how many slots the frame has


@dataclass(frozen=True)
class CompiledTopics:
    """Topic rules compiled once: one Aho-Corasick automaton over every phrase of every topic.

    The automaton maps each folded phrase to (length, whether its first and last characters are Latin
    letters or digits, ((topic, role, Phrase), ...) in role order).
    """

    topics: tuple[TopicRules, ...]
    automaton: ahocorasick.Automaton
    default_anchor_groups: tuple[frozenset[int], ...]  # per topic: cooccur groups anchored by its terms


_compiled_cache: dict[tuple[TopicRules, ...], CompiledTopics] = {}
# The rule set compiled last. Every article of a poll (and every article a worker process prepares) comes
# with the same TopicRules objects, so comparing with these first (a tuple compare is an identity check
# per item when they are the same objects) skips hashing every rule of every topic per article, which
# cost more than the rest of the lookup. An equal but not identical rule set (rules reloaded, or unpickled
# in a worker) compares equal by value and gets the same compiled rules, as the dict would give it.
_last: tuple[tuple[TopicRules, ...], CompiledTopics] | None = None


def compile_topics(topics: Mapping[str, TopicRules]) -> CompiledTopics:
    """Build (or fetch from the cache) the automaton for a rule set."""
    global _last
    key = tuple(topics.values())
    last = _last
    if last is not None and last[0] == key:
        return last[1]
    compiled = _compiled_cache.get(key)
    if compiled is None:
        if len(_compiled_cache) > 32:  # rule sets change rarely; keep the cache from growing forever
            _compiled_cache.clear()
        compiled = _compiled_cache[key] = _build(key)
    _last = (key, compiled)
    return compiled


def _build(topics: tuple[TopicRules, ...]) -> CompiledTopics:
    phrases: dict[str, list[Phrase]] = {}

    def add(text: str, phrase: Phrase) -> None:
        # Rules are matched against mainland usage, so a rule written in Traditional is read the same way.
        folded = phrase_to_mainland(fold(text)).strip()
        if folded:
            phrases.setdefault(folded, []).append(phrase)

    default_groups = []
    for index, rules in enumerate(topics):
        for term in rules.exclude_phrases:
            add(term, Phrase(index, EXCLUDE, term, 0.0, -1))
        for term, weight in rules.terms:
            add(term, Phrase(index, TERM, term, weight, -1))
        groups = set()
        for group, rule in enumerate(rules.cooccur):
            for term, weight in rule.terms:
                add(term, Phrase(index, CONTEXT, term, weight, group))
            for term in rule.anchors:
                add(term, Phrase(index, ANCHOR, term, 0.0, group))
            if not rule.anchors:
                groups.add(group)
        default_groups.append(frozenset(groups))
        for group, frame in enumerate(rules.frames):
            for slot, words in enumerate(frame.slots):
                for word in words:
                    add(word, Phrase(index, FRAME, frame.name, frame.weight, group, slot, len(frame.slots)))
        for term in rules.exclude_paragraphs:
            add(term, Phrase(index, SKIP_PARAGRAPH, term, 0.0, -1))
        for term in rules.exclude_titles:
            add(term, Phrase(index, SKIP_TITLE, term, 0.0, -1))
        for term in rules.require_any:
            add(term, Phrase(index, REQUIRED, term, 0.0, -1))
    automaton = ahocorasick.Automaton()
    for folded, entries in phrases.items():
        entries.sort(key=lambda p: p.role)
        # A Latin word must match whole ("ets" is not inside "markets"); CJK has no word breaks. Each
        # phrase comes with its topic and role: read for every match of every article.
        automaton.add_word(folded, (len(folded), is_word_char(folded[0]), is_word_char(folded[-1]),
                                    tuple((p.topic, p.role, p) for p in entries)))
    if phrases:
        automaton.make_automaton()
    return CompiledTopics(topics, automaton, tuple(default_groups))


def is_word_char(char: str) -> bool:
    """A Latin letter or digit: such phrases must not match inside a longer word."""
    return char.isascii() and char.isalnum()
