"""The part of an article a channel quotes: its own section, its paragraphs, or the lead."""

from __future__ import annotations

import re

from feedbot.classify.text import Unit, share

# A paragraph counts toward an excerpt when at least this much of it is about the topic.
EXCERPT_PARAGRAPH_FOCUS = 0.5
EXCERPT_MAX_CHARS = 1500
# A section smaller than this cannot carry a topic on its own (a short list is not a section).
MIN_SECTION_CHARS = 150
# A sentence ends at 。！？；!?; or at a '.' before white space. (One character class, then the condition
# on '.': the regex engine skips to candidate characters, where r"[。！？；!?;]|\.(?=\s)" tries every position.)
SENTENCE_END = re.compile(r"[。！？；!?;.](?:(?<!\.)|(?=\s))")


def topic_excerpt(units: list[Unit], focus_by_unit: dict[int, float], skipped: set[int], several: bool) -> str:
    """The part of the article about the topic: the sections named for it, its paragraphs when the
    article has several topics, or else the lead."""
    body = [i for i, u in enumerate(units) if u.where != "title" and i not in skipped]
    body_size = sum(units[i].size for i in body) or 1.0
    # Members per section, grouped once: work per section over the whole body would be quadratic.
    members: dict[int, list[int]] = {}
    for i in body:
        members.setdefault(units[i].section, []).append(i)
    if len(members) > 1:
        # A heading that names the topic is the author's own word for what its section is about.
        chosen = {units[i].section for i in body if units[i].where == "heading" and i in focus_by_unit}
        if not chosen and several:
            chosen = {s for s, m in members.items() if _section_focus(m, units, focus_by_unit) >= 0.5}
        picked = [i for i in body if units[i].section in chosen]
        if picked and sum(units[i].size for i in picked) < 0.8 * body_size:
            return _cap([units[i].text for i in picked], EXCERPT_MAX_CHARS)
    if several:
        about = [i for i in body if focus_by_unit.get(i, 0.0) >= EXCERPT_PARAGRAPH_FOCUS]
        if about and sum(units[i].size for i in about) < 0.5 * body_size:
            return _cap([units[i].text for i in about], EXCERPT_MAX_CHARS)
    return _cap([units[i].text for i in _lead(body, units, focus_by_unit)], EXCERPT_MAX_CHARS)


def _section_focus(members: list[int], units: list[Unit], focus_by_unit: dict[int, float]) -> float:
    if sum(units[i].size for i in members) < MIN_SECTION_CHARS:
        return 0.0
    return share(members, units, focus_by_unit)


def _lead(body: list[int], units: list[Unit], focus_by_unit: dict[int, float]) -> list[int]:
    """Body from the first real paragraph: page furniture before the story is short and topic-free."""
    for position, index in enumerate(body):
        unit = units[index]
        if unit.where == "body" and (focus_by_unit.get(index, 0.0) > 0 or len(unit.text) >= 40):
            return body[position:]
    return body


def _cap(paragraphs: list[str], limit: int) -> str:
    """Join paragraphs up to limit characters, cutting only at a paragraph or sentence end."""
    out: list[str] = []
    used = 0
    for paragraph in paragraphs:
        cost = len(paragraph) + (1 if out else 0)
        if used + cost <= limit:
            out.append(paragraph)
            used += cost
            continue
        room = limit - used - (1 if out else 0)
        cut = _sentence_cut(paragraph, room)
        if cut:
            out.append(cut)
        elif not out:
            out.append(paragraph[: max(room - 1, 0)].rstrip() + "…")
        break
    return "\n".join(out)


def _sentence_cut(paragraph: str, room: int) -> str:
    if room <= 0:
        return ""
    ends = [m.end() for m in SENTENCE_END.finditer(paragraph, 0, room)]
    return paragraph[: ends[-1]] if ends else ""
