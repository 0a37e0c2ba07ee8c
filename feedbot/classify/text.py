"""An article as the classifier reads it: title, headings and paragraphs, folded for matching."""

from __future__ import annotations

from typing import Literal, NamedTuple

from feedbot.classify.mainland import pieces_to_mainland
from feedbot.model import Article
from feedbot.settings.fold import fold, fold_text

Where = Literal["title", "heading", "body"]


class Unit(NamedTuple):
    """One scored piece of text: the title, a heading or a body paragraph.

    A named tuple, not a frozen dataclass: an article has dozens and the classifier builds them for every
    article; a frozen dataclass sets each field through object.__setattr__, several times slower.
    """

    where: Where
    text: str  # as published (excerpts quote it)
    folded: str  # as matched: folded (settings.fold) and read as mainland Simplified usage
    section: int  # index into article.sections; -1 for the title
    in_lead: bool  # part of the article's first section, which is judged only with the whole text
    size: float  # reading length: CJK characters, with Latin letters counting a quarter


def units(article: Article) -> list[Unit]:
    """The title, then each heading and paragraph in order; repeats of the headline are dropped."""
    pieces: list[tuple[Where, str, int]] = [("title", article.title, -1)]
    for index, section in enumerate(article.sections):
        if section.heading:
            pieces.append(("heading", section.heading, index))
        pieces.extend(("body", paragraph, index) for paragraph in section.paragraphs)
    # One fold for the whole article; NUL never occurs in text that came through the HTML parser.
    folded_pieces = fold_text("\0".join(text for _, text, _ in pieces)).split("\0")
    if len(folded_pieces) != len(pieces):  # a NUL after all: fold piece by piece
        folded_pieces = [fold(text) for _, text, _ in pieces]
    # The one Traditional → Simplified conversion: only what is matched, never what is shown.
    folded_pieces = pieces_to_mainland(folded_pieces)
    title_key = folded_pieces[0].strip()
    # Pages repeat the headline as a heading or a first line; it already counts as the title.
    kept = [0] + [i for i in range(1, len(pieces)) if not _repeats_title(folded_pieces[i], title_key)]
    lead_section = next((pieces[i][2] for i in kept if pieces[i][0] == "body"), -1)
    return [
        Unit(pieces[i][0], pieces[i][1], folded_pieces[i], pieces[i][2],
             pieces[i][2] == lead_section and i > 0, reading_size(folded_pieces[i]))
        for i in kept
    ]


def reading_size(text: str) -> float:
    """Length in CJK-character equivalents: an English word carries about as much as a Chinese one."""
    wide = (len(text.encode("utf-8")) - len(text)) // 2  # non-ASCII characters are 2-3 bytes
    return wide + (len(text) - wide) / 4


def share(members: list[int], units: list[Unit], focus_by_unit: dict[int, float]) -> float:
    """The share of these units' text that is about the topic."""
    size = sum(units[i].size for i in members)
    if not size:
        return 0.0
    return sum(units[i].size * focus_by_unit.get(i, 0.0) for i in members) / size


def _repeats_title(paragraph: str, title: str) -> bool:
    if not title:
        return False
    if paragraph == title:
        return True
    return len(title) >= 8 and title in paragraph and len(paragraph) < 2 * len(title) + 10
