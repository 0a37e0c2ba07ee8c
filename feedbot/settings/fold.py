"""Folding for rule phrases and matching: width, case and quotes, so 《条例》 matches 条例."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_IGNORED = re.compile("[《》〈〉“”‘’「」『』\"']")


def fold(text: str) -> str:
    """Fold text for matching: NFKC (full-width → ASCII), lower case, no quotes.

    Traditional characters are read as Simplified by the classifier (feedbot.classify.mainland).
    """
    return _IGNORED.sub("", unicodedata.normalize("NFKC", text).lower())


def fold_text(text: str) -> str:
    """``fold(text)``, faster on article-length text (the classifier folds every article once)."""
    return _IGNORED.sub("", nfkc(text).lower())


def nfkc(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, faster on Chinese text of more than a few characters.

    CPython's NFKC returns text it finds normalized at once, but one character it must change (a
    full-width comma, in nearly every Chinese sentence) makes it decompose and recompose the whole
    string, ~100 ns a character. Replacing each character NFKC changes on its own by its own NFKC form
    first does not change the result (NFKC of a string is NFKC of the string with any character replaced
    by that character's NFKC form: both have the same compatibility decomposition), and usually leaves
    NFKC nothing to do. What the replacement misses (a combining mark that composes with the letter
    before it, a character beyond the BMP) NFKC still does.
    """
    changing, forms = _nfkc_changing()
    # Each distinct such character replaced throughout by one str.replace: a regex callback per occurrence
    # (a full-width comma or two per sentence) costs more.
    for char in set(changing.findall(text)):
        text = text.replace(char, forms[char])
    return unicodedata.normalize("NFKC", text)


@lru_cache(maxsize=1)
def _nfkc_changing() -> tuple[re.Pattern[str], dict[str, str]]:
    """The BMP characters NFKC changes on their own (~3,000), and their NFKC forms; derived once (~10 ms)."""
    forms: dict[str, str] = {}
    for code in range(0x10000):
        char = chr(code)
        if not 0xD800 <= code <= 0xDFFF and not unicodedata.is_normalized("NFKC", char):
            forms[char] = unicodedata.normalize("NFKC", char)
    codes = sorted(ord(char) for char in forms)
    ranges: list[str] = []  # as ranges, which compile much faster than 3,000 single characters
    start = previous = codes[0]
    for code in [*codes[1:], -1]:
        if code != previous + 1:
            ranges.append(re.escape(chr(start)) if start == previous
                          else f"{re.escape(chr(start))}-{re.escape(chr(previous))}")
            start = code
        previous = code
    return re.compile(f"[{''.join(ranges)}]"), forms
