"""Normalisation cleanups and WER details (hand-checked cases + an independent DP)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lcasr_jax.eval import normalize, wer


def test_earnings22_cleanup_hand_checked():
    raw = "Good morning, everyone. <inaudible> Our well-known revenue… was up? <laugh> Yes."
    assert normalize.earnings22_clean(raw) == \
        "good morning everyone our well known revenue was up yes"
    assert normalize.normalize_reference(raw, "earnings22_full") == \
        "good morning everyone our well known revenue was up yes"
    for tag in normalize.EARNINGS22_TAGS:
        assert normalize.earnings22_clean(f"a {tag.upper()} b") == "a b"


def test_tedlium_apostrophe_join():
    assert normalize.tedlium_join("it 's what they 're  doing '90s") == \
        "it's what they're doing '90s"
    # joined contractions are then expanded by Whisper's normaliser
    assert normalize.normalize_reference("and it 's true", "tedlium") == "and it is true"


def test_whisper_normaliser_used_for_hypotheses():
    assert normalize.normalize_hypothesis("Hello, Mr. Smith!") == "hello mister smith"


def test_wer_detail_hand_checked():
    d = wer.word_error_rate_detail(["a x c d e"], ["a b c d"])
    assert (d.substitutions, d.insertions, d.deletions, d.words) == (1, 1, 0, 4)
    assert d.wer == pytest.approx(0.5) and d.sub_rate == pytest.approx(0.25)
    d = wer.word_error_rate_detail(["a c d", "x y"], ["a b c d", ""])
    assert (d.words, d.deletions, d.insertions) == (4, 1, 2)
    assert (d.wer, d.ins_rate, d.del_rate, d.sub_rate) == (0.75, 0.5, 0.25, 0.0)
    d = wer.word_error_rate_detail(["", ""], ["a b", "c"])
    assert d.wer == 1.0 and d.del_rate == 1.0
    d = wer.word_error_rate_detail(["x"], [" "])
    assert math.isinf(d.wer) and d.words == 0 and d.insertions == 1
    with pytest.raises(ValueError, match="hypotheses"):
        wer.word_error_rate_detail(["a"], [])


def _levenshtein(ref, hyp):
    d = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, 1):
        prev, d[0] = d.copy(), i
        for j, h in enumerate(hyp, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r != h))
    return int(d[-1])


words = st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=8).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(words, words), min_size=1, max_size=4))
def test_wer_errors_equal_edit_distance(pairs):
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    d = wer.word_error_rate_detail(hyps, refs)
    errors = sum(_levenshtein(r.split(), h.split()) for r, h in pairs)
    n = sum(len(r.split()) for r in refs)
    assert d.insertions + d.deletions + d.substitutions == errors
    if n:
        assert d.wer == pytest.approx(errors / n)
        assert d.ins_rate + d.del_rate + d.sub_rate == pytest.approx(d.wer)
