"""Folding for rule phrases and matching: width, case and quotes, so 《条例》 matches 条例."""

from __future__ import annotations

import re
import unicodedata

_IGNORED = re.compile("[《》〈〉“”‘’「」『』\"']")


def fold(text: str) -> str:
    """Fold text for matching: NFKC (full-width → ASCII), lower case, no quotes.

    Traditional characters are read as Simplified by the classifier (feedbot.classify.mainland).
    """
    return _IGNORED.sub("", unicodedata.normalize("NFKC", text).lower())
