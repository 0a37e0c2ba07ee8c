"""fold_text and nfkc, the fast fold and NFKC of a whole article, give exactly what fold and NFKC give."""

from __future__ import annotations

import random
import unicodedata

from feedbot.settings.fold import _nfkc_changing, fold, fold_text, nfkc

# Characters where NFKC does more than map one character: combining marks that compose with the letter
# before them, conjoining Hangul jamo that compose into syllables (and the compatibility jamo that NFKC
# turns into them), characters beyond the BMP, and the quotes fold drops.
TRICKY = (
    "e\u0301\u0327\u0300\u0308\u0344\u0345\u0954\u0f73\u1100\u1161\u11a8\uac00\u3131\u314f\u3134\uffa1"
    "\U0001d400\U0001d7ce\U0001f100\U0002f800\u2126\u212b\u00c5\u0041\u030a\ufb01\u2460\u3300\u33a1"
    "《》〈〉\u2329\u232a“”‘’「」『』\"'\uff02\uff07\u3000\u00a0，。！：；（）ＡＢｃ１２碳市场ETS Ü\0\n"
)


def test_every_bmp_character_folds_the_same():
    chars = [chr(code) for code in range(0x10000) if not 0xD800 <= code <= 0xDFFF]
    assert [fold_text(c) for c in chars] == [fold(c) for c in chars]
    assert fold_text("".join(chars)) == fold("".join(chars))
    assert [nfkc(c) for c in chars] == [unicodedata.normalize("NFKC", c) for c in chars]
    assert nfkc("".join(chars)) == unicodedata.normalize("NFKC", "".join(chars))


def test_random_mixes_of_the_tricky_characters_fold_the_same():
    _, forms = _nfkc_changing()
    alphabet = list(TRICKY) + random.Random(1).sample(sorted(forms), 300)
    rng = random.Random(7)
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        assert fold_text(text) == fold(text), ascii(text)
        assert nfkc(text) == unicodedata.normalize("NFKC", text), ascii(text)


def test_the_table_is_every_bmp_character_nfkc_changes():
    pattern, forms = _nfkc_changing()
    changed = {chr(code) for code in range(0x10000) if not 0xD800 <= code <= 0xDFFF
               and unicodedata.normalize("NFKC", chr(code)) != chr(code)}
    assert set(forms) == changed
    assert all(pattern.fullmatch(char) for char in changed)
    assert not pattern.search("碳市场。、“”《》abc ")  # what Chinese text is mostly made of is left alone


def test_an_article_folds_to_ascii_width_lower_case_without_quotes():
    folded = fold_text("《碳排放权交易管理暂行条例》：ＣＣＥＲ，“全国碳市场”")
    assert folded == "碳排放权交易管理暂行条例:ccer,全国碳市场"
