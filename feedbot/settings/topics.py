"""Topic rules as data: parse and validate topics.toml, merge the user's overrides."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

from feedbot.errors import RulesError
from feedbot.model import ALL_CHANNEL
from feedbot.settings.rulecheck import (
    boolean,
    check_keys,
    number,
    phrase,
    show,
    string,
    strings,
    suggest,
    term_key,
    unique,
)

DEFAULTS_WHERE = "feedbot/data/topics.toml"
TOPIC_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
HASHTAG = re.compile(r"^#\w+$")

# Keys a topic table may carry, and the keys of its sub-tables.
SCALAR_KEYS = ("name", "description", "hashtag", "threshold", "min_focus", "title_boost", "heading_boost")
TOPIC_KEYS = (
    *SCALAR_KEYS, "terms", "cooccur", "require_any", "exclude", "enabled",
    "replace_terms", "replace_cooccur", "replace_exclude", "frames", "yield_to",
)
CONFIG_ONLY_KEYS = ("telegram_chat",)  # read by feedbot.settings.config, not a rule
_HIGH = {"min_focus": 1.0}  # upper bounds of the numeric settings that have one
DEFAULTS_KEYS = ("threshold", "min_focus", "title_boost", "heading_boost", "exclude")
COOCCUR_KEYS = ("terms", "anchors")
FRAME_KEYS = ("name", "weight", "all")
EXCLUDE_KEYS = ("phrases", "paragraphs", "titles")


@dataclass(frozen=True)
class Cooccur:
    """Context terms that count only in a paragraph that also has one of the anchors."""

    terms: tuple[tuple[str, float], ...]
    anchors: tuple[str, ...] = ()  # empty: any of the topic's own terms is an anchor


@dataclass(frozen=True)
class Frame:
    """A framing: one word of every slot in one sentence ("气候变化" + "风险" + "农业") is evidence."""

    name: str  # shown as the evidence term
    weight: float
    slots: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class TopicRules:
    """One channel's rules: what it is called and which words make an article belong to it."""

    id: str
    name: str
    description: str
    hashtag: str
    terms: tuple[tuple[str, float], ...]  # (phrase, weight), weight > 0
    cooccur: tuple[Cooccur, ...] = ()
    frames: tuple[Frame, ...] = ()
    # Another topic whose subject this one is often the background of: when that topic matches on
    # its title and this one is named in neither the title nor a heading, this one does not match.
    yield_to: tuple[str, ...] = ()
    require_any: tuple[str, ...] = ()  # at least one must occur somewhere, else no match
    exclude_phrases: tuple[str, ...] = ()  # a term inside one of these does not count
    exclude_paragraphs: tuple[str, ...] = ()  # a paragraph containing one of these is ignored
    exclude_titles: tuple[str, ...] = ()  # an article whose title has one of these never matches
    threshold: float = 8.0  # score needed to match
    min_focus: float = 0.3  # share of the text (or of one section) that must be about the topic
    title_boost: float = 2.5
    heading_boost: float = 1.5

    @property
    def term_weights(self) -> dict[str, float]:
        """The terms as a mapping."""
        return dict(self.terms)


# Quotes and title marks vary between outlets (《巴黎协定》第六条 vs 巴黎协定第六条); matching ignores them.
@dataclass(frozen=True)
class RuleDefaults:
    """Values every topic inherits unless it sets its own (the [defaults] table)."""

    threshold: float = 8.0
    min_focus: float = 0.3
    title_boost: float = 2.5
    heading_boost: float = 1.5
    exclude_phrases: tuple[str, ...] = ()
    exclude_paragraphs: tuple[str, ...] = ()
    exclude_titles: tuple[str, ...] = ()


def load_default_topics() -> dict[str, TopicRules]:
    """The four channels shipped in feedbot/data/topics.toml."""
    return dict(_default_topics())


def merge_topics(defaults: dict[str, TopicRules], user: dict[str, dict], where: str) -> dict[str, TopicRules]:
    """Apply the user's [topics.*] tables (telegram_chat already removed) to the default topics.

    For a known topic: scalars replace; `terms` are merged (weight 0 removes a term) unless
    `replace_terms = true`; `cooccur` and `exclude` lists are extended unless `replace_cooccur` /
    `replace_exclude`; `enabled = false` drops the topic. An unknown id is a new topic and must
    give at least `name` and `terms`; it inherits the [defaults] of topics.toml.
    """
    merged = dict(defaults)
    if not isinstance(user, Mapping):
        raise RulesError(f"{where}: topics: expected a table, got {show(user)}")
    for topic_id, table in user.items():
        path = f"topics.{topic_id}"
        if not isinstance(table, Mapping):
            raise RulesError(f"{where}: {path}: expected a table, got {show(table)}")
        if topic_id in defaults:
            base = defaults[topic_id]
        elif "name" in table and "terms" in table:
            base = None
        else:
            raise RulesError(f"{where}: {path}: unknown topic {show(topic_id)}"
                             f"{suggest(topic_id, defaults)}; a new topic needs at least name and terms")
        if not boolean(table.get("enabled", True), where, f"{path}.enabled"):
            merged.pop(topic_id, None)
            continue
        merged[topic_id] = _build_topic(topic_id, table, base, _default_settings(), where)
    # A yield to a topic the user disabled is dropped; a misspelt one is an error.
    known = {**defaults, **merged}
    for topic_id, rules in list(merged.items()):
        _check_yields(topic_id, rules, known, where)
        kept = tuple(other for other in rules.yield_to if other in merged)
        if kept != rules.yield_to:
            merged[topic_id] = replace(rules, yield_to=kept)
    return merged


def parse_topics(data: Mapping[str, Any], where: str) -> dict[str, TopicRules]:
    """Build topics from a whole rules document: optional [defaults] and [topics.<id>] tables."""
    check_keys(data, ("defaults", "topics"), where, "")
    settings = _parse_defaults(data.get("defaults", {}), where)
    tables = data.get("topics", {})
    if not isinstance(tables, Mapping) or not tables:
        raise RulesError(f"{where}: topics: expected at least one [topics.<id>] table")
    topics: dict[str, TopicRules] = {}
    for topic_id, table in tables.items():
        if not isinstance(table, Mapping):
            raise RulesError(f"{where}: topics.{topic_id}: expected a table, got {show(table)}")
        if not boolean(table.get("enabled", True), where, f"topics.{topic_id}.enabled"):
            continue
        topics[topic_id] = _build_topic(topic_id, table, None, settings, where)
    for topic_id, rules in topics.items():
        _check_yields(topic_id, rules, topics, where)
    return topics


def _check_yields(topic_id: str, rules: TopicRules, known: Mapping[str, Any], where: str) -> None:
    for index, other in enumerate(rules.yield_to):
        if other not in known or other == topic_id:
            raise RulesError(f"{where}: topics.{topic_id}.yield_to[{index}]: not another topic: "
                             f"{show(other)}{suggest(other, known)}")


def _default_document() -> dict[str, Any]:
    text = resources.files("feedbot").joinpath("data/topics.toml").read_text(encoding="utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{DEFAULTS_WHERE}: {exc}") from exc


_cache: dict[str, Any] = {}


def _default_topics() -> dict[str, TopicRules]:
    if "topics" not in _cache:
        _cache["topics"] = parse_topics(_default_document(), DEFAULTS_WHERE)
    return _cache["topics"]


def _default_settings() -> RuleDefaults:
    if "settings" not in _cache:
        _cache["settings"] = _parse_defaults(_default_document().get("defaults", {}), DEFAULTS_WHERE)
    return _cache["settings"]


def _parse_defaults(table: Any, where: str) -> RuleDefaults:
    if not isinstance(table, Mapping):
        raise RulesError(f"{where}: defaults: expected a table, got {show(table)}")
    check_keys(table, DEFAULTS_KEYS, where, "defaults")
    base = RuleDefaults()
    values: dict[str, Any] = {}
    for key in ("threshold", "min_focus", "title_boost", "heading_boost"):
        if key in table:
            values[key] = number(table[key], where, f"defaults.{key}", high=_HIGH.get(key))
    if "exclude" in table:
        values.update(_parse_exclude(table["exclude"], where, "defaults.exclude"))
    return replace(base, **values)


def _build_topic(topic_id: str, table: Mapping[str, Any], base: TopicRules | None, settings: RuleDefaults,
                 where: str) -> TopicRules:
    path = f"topics.{topic_id}"
    if not isinstance(topic_id, str) or not TOPIC_ID.match(topic_id):
        raise RulesError(f"{where}: {path}: a topic id is lower-case letters, digits and '-', "
                         f"got {show(topic_id)}")
    if topic_id == ALL_CHANNEL:
        raise RulesError(f'{where}: {path}: the topic id "{ALL_CHANNEL}" is reserved (the feed of every topic)')
    table = {key: value for key, value in table.items() if key not in CONFIG_ONLY_KEYS}
    check_keys(table, TOPIC_KEYS, where, path)
    if base is None:
        for key in ("name", "terms"):
            if key not in table:
                raise RulesError(f"{where}: {path}.{key}: required for a topic")
        base = TopicRules(
            id=topic_id, name="", description="", hashtag="", terms=(),
            exclude_phrases=settings.exclude_phrases, exclude_paragraphs=settings.exclude_paragraphs,
            exclude_titles=settings.exclude_titles, threshold=settings.threshold,
            min_focus=settings.min_focus, title_boost=settings.title_boost,
            heading_boost=settings.heading_boost,
        )
    flags = {key: boolean(table.get(key, False), where, f"{path}.{key}")
             for key in ("replace_terms", "replace_cooccur", "replace_exclude")}
    values: dict[str, Any] = {}
    for key in ("name", "description", "hashtag"):
        if key in table:
            values[key] = string(table[key], where, f"{path}.{key}", empty_ok=key == "description")
    if "hashtag" in values and not HASHTAG.match(values["hashtag"]):
        raise RulesError(f"{where}: {path}.hashtag: expected '#' and letters, digits or '_', "
                         f"got {show(values['hashtag'])}")
    for key in ("threshold", "min_focus", "title_boost", "heading_boost"):
        if key in table:
            values[key] = number(table[key], where, f"{path}.{key}", high=_HIGH.get(key))
    if "terms" in table:
        values["terms"] = _merge_terms(base.terms, table["terms"], flags["replace_terms"], where,
                                       f"{path}.terms")
    if "cooccur" in table:
        added = _parse_cooccur(table["cooccur"], where, f"{path}.cooccur")
        values["cooccur"] = added if flags["replace_cooccur"] else unique(base.cooccur + added)
    if "frames" in table:
        added_frames = _parse_frames(table["frames"], where, f"{path}.frames")
        values["frames"] = added_frames if flags["replace_cooccur"] else unique(base.frames + added_frames)
    if "yield_to" in table:
        values["yield_to"] = strings(table["yield_to"], where, f"{path}.yield_to")
    if "require_any" in table:
        values["require_any"] = strings(table["require_any"], where, f"{path}.require_any")
    if "exclude" in table:
        for key, phrases in _parse_exclude(table["exclude"], where, f"{path}.exclude").items():
            values[key] = phrases if flags["replace_exclude"] else unique(getattr(base, key) + phrases)
    rules = replace(base, **values)
    if not rules.name:
        raise RulesError(f"{where}: {path}.name: required for a topic")
    if not rules.terms:
        raise RulesError(f"{where}: {path}.terms: a topic needs at least one term with a weight above 0")
    if not rules.hashtag:
        rules = replace(rules, hashtag="#" + (re.sub(r"\W", "", rules.name) or topic_id.replace("-", "_")))
    return rules


def _merge_terms(base: tuple[tuple[str, float], ...], raw: Any, replace_all: bool, where: str,
                 path: str) -> tuple[tuple[str, float], ...]:
    given = _weights(raw, where, path, zero_ok=True)
    merged = {} if replace_all else dict(base)
    for term, weight in given:
        if weight == 0:
            merged.pop(term, None)  # weight 0 is how a user removes a default term
        else:
            merged[term] = weight
    return tuple(merged.items())


def _weights(raw: Any, where: str, path: str, zero_ok: bool = False) -> tuple[tuple[str, float], ...]:
    if not isinstance(raw, Mapping):
        raise RulesError(f"{where}: {path}: expected a table of \"term\" = weight, got {show(raw)}")
    out = []
    for term, weight in raw.items():
        phrase(term, where, path)
        value = number(weight, where, f"{path}.{term_key(term)}")
        if value == 0 and not zero_ok:
            raise RulesError(f"{where}: {path}.{term_key(term)}: expected a weight above 0, got 0")
        out.append((term, value))
    return tuple(out)


def _tables(raw: Any, keys: tuple[str, ...], where: str, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The tables of a [[path]] list, each with its path for errors, keys checked."""
    if not isinstance(raw, list):
        raise RulesError(f"{where}: {path}: expected a list of tables ([[{path}]]), got {show(raw)}")
    for index, item in enumerate(raw):
        item_path = f"{path}[{index}]"
        if not isinstance(item, Mapping):
            raise RulesError(f"{where}: {item_path}: expected a table, got {show(item)}")
        check_keys(item, keys, where, item_path)
        yield item_path, item


def _parse_cooccur(raw: Any, where: str, path: str) -> tuple[Cooccur, ...]:
    rules = []
    for item_path, item in _tables(raw, COOCCUR_KEYS, where, path):
        if "terms" not in item:
            raise RulesError(f"{where}: {item_path}.terms: required")
        terms = _weights(item["terms"], where, f"{item_path}.terms")
        if not terms:
            raise RulesError(f"{where}: {item_path}.terms: expected at least one term")
        anchors = strings(item.get("anchors", []), where, f"{item_path}.anchors")
        rules.append(Cooccur(terms=terms, anchors=anchors))
    return tuple(rules)


def _parse_frames(raw: Any, where: str, path: str) -> tuple[Frame, ...]:
    frames = []
    for item_path, item in _tables(raw, FRAME_KEYS, where, path):
        for key in FRAME_KEYS:
            if key not in item:
                raise RulesError(f"{where}: {item_path}.{key}: required")
        name = string(item["name"], where, f"{item_path}.name")
        weight = number(item["weight"], where, f"{item_path}.weight")
        if weight == 0:
            raise RulesError(f"{where}: {item_path}.weight: expected a weight above 0, got 0")
        slots = item["all"]
        if not isinstance(slots, list) or len(slots) < 2:
            raise RulesError(f"{where}: {item_path}.all: expected a list of at least two lists of phrases, "
                             f"got {show(slots)}")
        parsed = tuple(strings(slot, where, f"{item_path}.all[{n}]") for n, slot in enumerate(slots))
        if any(not slot for slot in parsed):
            raise RulesError(f"{where}: {item_path}.all: every slot needs at least one phrase")
        frames.append(Frame(name, weight, parsed))
    return tuple(frames)


def _parse_exclude(raw: Any, where: str, path: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise RulesError(f"{where}: {path}: expected a table with {', '.join(EXCLUDE_KEYS)}, "
                         f"got {show(raw)}")
    check_keys(raw, EXCLUDE_KEYS, where, path)
    return {f"exclude_{key}": strings(raw[key], where, f"{path}.{key}")
            for key in EXCLUDE_KEYS if key in raw}
