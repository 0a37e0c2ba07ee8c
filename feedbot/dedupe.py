"""The same story once: a new article that is a reprint of one first seen on another source joins it.

MinHash over character shingles of the article text estimates the Jaccard similarity of
two articles; at or above THRESHOLD (measured on the labelled corpora: docs/dedupe.md) a new article
from another source is a reprint. A reprint is stored (its page shows where it came from) but gets no
chat deliveries, and feeds and pages show it under the first-seen article as "also reported by".

The MinHash is datasketch 2's own ("affine32": sha1 of each shingle, MurmurHash3's finalizer, then a·h + b
mod 2^32 per permutation, seeded the same way, so the signatures are bit for bit datasketch's), written out
here with numpy: importing datasketch pulls in scipy for its LSH (+44 MB RSS,
0.4 s), and feedbot needs only the signature and the share of equal minima.
"""

from __future__ import annotations

import functools
import hashlib
import re
import weakref
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from feedbot.model import Article, Classification, SaveResult, Target
from feedbot.settings.fold import nfkc
from feedbot.store import Store

SHINGLE = 4  # characters: Chinese words are 1-4 characters, so 4-grams are specific yet survive edits
PERMUTATIONS = 128
SEED = 17  # fixed: stored signatures stay comparable across restarts and versions
THRESHOLD = 0.5  # estimated Jaccard at or above which a new article is a reprint (docs/dedupe.md)
WINDOW = timedelta(days=30)  # reprints follow the original within days; older signatures are not compared
MIN_SHINGLES = 300  # shorter texts (wire flashes, captions) share templates: no evidence of a reprint (docs/dedupe.md)
# Everything but letters and digits goes: punctuation, spaces and full-width forms differ between outlets.
_NOISE = re.compile(r"[^\w]|_", re.UNICODE)


def _flat(text: str) -> str:
    """The text as shingles are cut from it: NFKC, lower case, punctuation and spaces removed."""
    return _NOISE.sub("", nfkc(text)).lower()


def shingles(text: str, k: int = SHINGLE) -> set[str]:
    """The set of k-character runs of the text, after NFKC and with punctuation and spaces removed."""
    flat = _flat(text)
    return {flat[i:i + k] for i in range(max(len(flat) - k + 1, 0))}


def signature(text: str) -> bytes | None:
    """The MinHash signature of a text as bytes (PERMUTATIONS little-endian uint64), None when too short."""
    flat = _flat(text)
    # n characters hold at most n - k + 1 shingles: most feed items are too short to reach MIN_SHINGLES, and
    # for them neither the set nor numpy is needed.
    if len(flat) - SHINGLE + 1 < MIN_SHINGLES:
        return None
    grams = {flat[i:i + SHINGLE] for i in range(len(flat) - SHINGLE + 1)}
    if len(grams) < MIN_SHINGLES:  # long but repetitive (a table, a template)
        return None
    import numpy as np  # imported on first use so `feedbot --help` stays quick

    a, b = _permutations()
    h = np.fromiter((int.from_bytes(hashlib.sha1(g.encode("utf-8")).digest()[:4], "little") for g in grams),
                    dtype=np.uint32, count=len(grams))
    # MurmurHash3's finalizer spreads the input hashes; then h -> a·h + b mod 2^32 per permutation (a odd: a
    # bijection). uint32 arithmetic wraps: that wraparound is the modulo.
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    values = (h[:, None] * a + b).min(axis=0)
    return values.astype("<u8").tobytes()


@functools.cache
def _permutations():
    import numpy as np

    gen = np.random.RandomState(SEED)
    a = gen.randint(0, 1 << 31, PERMUTATIONS, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, PERMUTATIONS, dtype=np.uint32)
    return a, b


def similarity(a: bytes, b: bytes) -> float:
    """The Jaccard similarity two signatures estimate (the share of equal minima)."""
    import numpy as np

    left, right = np.frombuffer(a, dtype="<u8"), np.frombuffer(b, dtype="<u8")
    return float(np.count_nonzero(left == right)) / len(left)


# LSH: a signature's 128 minima cut into 32 bands of 4; two stories are compared only when a band matches.
# At the threshold (Jaccard 0.5) a pair shares a band with probability 1 - (1 - 0.5^4)^32 = 0.87, at 0.6 with
# 0.99; the reprints measured score 0.8-1.0 (docs/dedupe.md). Without it every new article was compared with
# every signature of the last 30 days, read back from the database each time: quadratic in a first cycle.
BANDS, ROWS = 32, 4
_BAND_BYTES = ROWS * 8


class _BandIndex:
    """The originals of the last WINDOW, bucketed by band, built once per store and kept in step with it."""

    def __init__(self, store: Store, now: datetime):
        self.buckets: dict[tuple[int, bytes], list[int]] = {}
        self.entries: dict[int, tuple[str, bytes, datetime]] = {}  # id -> (source, signature, first seen)
        for article_id, source_id, sig, seen in store.original_signatures_since(now - WINDOW):
            self.add(article_id, source_id, sig, seen)

    def add(self, article_id: int, source_id: str, sig: bytes, seen: datetime) -> None:
        self.entries[article_id] = (source_id, sig, seen)
        for band in range(BANDS):
            self.buckets.setdefault((band, sig[band * _BAND_BYTES:(band + 1) * _BAND_BYTES]), []).append(article_id)

    def candidates(self, sig: bytes) -> set[int]:
        found: set[int] = set()
        for band in range(BANDS):
            found.update(self.buckets.get((band, sig[band * _BAND_BYTES:(band + 1) * _BAND_BYTES]), ()))
        return found


_INDEXES: weakref.WeakKeyDictionary[Store, _BandIndex] = weakref.WeakKeyDictionary()


def _index(store: Store, now: datetime) -> _BandIndex:
    index = _INDEXES.get(store)
    if index is None:
        index = _INDEXES[store] = _BandIndex(store, now)
    return index


def find_original(store: Store, article: Article, sig: bytes, now: datetime) -> int | None:
    """The first-seen article (another source, within WINDOW) this one reprints, or None."""
    index = _index(store, now)
    best_id, best = None, THRESHOLD
    for article_id in sorted(index.candidates(sig)):
        source_id, other, seen = index.entries[article_id]
        if source_id == article.source_id or seen < now - WINDOW:
            continue
        score = similarity(sig, other)
        if score >= best:
            best_id, best = article_id, score
    # The index lives in memory: an original whose poll was rolled back is no longer there to join.
    if best_id is not None and store.article(best_id) is None:
        return None
    return best_id


_COMPUTE = object()


def save_once(store: Store, article: Article, classification: Classification,
              targets: Mapping[str, Iterable[Target | str]], *, now: datetime, sig: object = _COMPUTE,
              new: bool = False, retried: bool = True) -> SaveResult:
    """Save an article; a new one that reprints a story first seen elsewhere is saved without deliveries.

    An article already stored (same source and key) is an update of itself, never a reprint, even
    when it grew; so is a reprint's later version, which stays a reprint. ``sig`` is the signature when
    the caller computed it already (off the event loop). ``new`` says the caller's cached keys do not
    hold this one: it is inserted without a lookup first (a stored one is still recognised: the insert
    does nothing and the lookup follows). ``retried=False`` says it has no post_retries row to clear.
    All of it is one savepoint: a failure leaves nothing of the item, not an article without its signature.
    """
    with store.transaction():
        saved, sig, original = _save(store, article, classification, targets, now, sig, new, retried)
    if saved.status == "new":
        store.remember_key(article.source_id, article.key)
        if sig and original is None:
            _index(store, now).add(saved.article_id, article.source_id, sig, now)
    return saved


def _save(store: Store, article: Article, classification: Classification,
          targets: Mapping[str, Iterable[Target | str]], now: datetime, sig: object, new: bool,
          retried: bool) -> tuple[SaveResult, bytes | None, int | None]:
    """save_once inside its savepoint: (result, signature and original of a new article)."""
    stored = None if new else store.stored_id(article.source_id, article.key)
    article_id = store.insert_article(article, now) if stored is None else None
    if article_id is None:  # stored before (found, or the insert met its key)
        stored = stored if stored is not None else store.stored_id(article.source_id, article.key)
        is_reprint = store.original_of(stored) is not None
        return store.write_article(article, classification, {} if is_reprint else targets, now), None, None
    if sig is _COMPUTE:
        sig = signature(article.text)
    original = find_original(store, article, sig, now) if sig else None
    added = store.write_topics(article_id, classification, {} if original else targets, now)
    if retried:
        store.clear_post_retry(article.source_id, article.key)
    if sig:  # a short text has no signature and so can be no reprint: a row would say nothing
        store.record_signature(article_id, article.source_id, sig, original, now)
    return SaveResult(article_id=article_id, status="new", deliveries_added=added), sig, original
