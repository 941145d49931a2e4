"""The shipped tokenizer and greedy CTC decoding."""

import hashlib

import numpy as np

from lcasr_jax.data.tokenizer import (
    ctc_collapse,
    ctc_runs,
    default_tokenizer,
    default_tokenizer_path,
)
from lcasr_jax.data.vocab import BLANK_ID
from lcasr_jax.decode import greedy_decode


def test_shipped_model_is_the_original():
    digest = hashlib.sha256(default_tokenizer_path().read_bytes()).hexdigest()
    assert digest == "82442a0fe9334f183b3f64302712293905327d52d0968a14fac19754eed8d650"
    tok = default_tokenizer()
    assert tok.vocab_size == 4095 and tok.blank_id == BLANK_ID == 4095
    assert tok.decode(tok.encode("Hello World")) == "hello world"  # nmt_nfkc_cf case-folds


def test_ctc_collapse_merges_repeats_and_drops_blanks():
    b = BLANK_ID
    assert ctc_collapse(np.array([b, 5, 5, b, 5, 7, 7, b])) == [5, 5, 7]
    assert ctc_collapse(np.array([], int)) == []
    assert ctc_collapse(np.array([b, b])) == []


def test_ctc_runs_spans_and_collapse_agree():
    tokens, first, last = ctc_runs(np.array([4, 4, 9, 4, 9, 9, 1]), blank_id=9)
    assert (tokens.tolist(), first.tolist(), last.tolist()) == ([4, 4, 1], [0, 3, 6], [1, 3, 6])
    rng = np.random.default_rng(0)
    for _ in range(20):
        ids = rng.integers(0, 4, size=rng.integers(0, 30))
        tokens, first, last = ctc_runs(ids, blank_id=3)
        assert ctc_collapse(ids, blank_id=3) == tokens.tolist()
        for t, a, b in zip(tokens, first, last, strict=True):  # each span is one run of t
            assert (ids[a:b + 1] == t).all()
            assert (a == 0 or ids[a - 1] != t) and (b + 1 == ids.size or ids[b + 1] != t)


def test_greedy_decode_respects_length():
    tok = default_tokenizer()
    ids = tok.encode("the cat sat")
    frames = []
    for i in ids:
        frames += [i, i, BLANK_ID]
    frames += ids  # beyond `length`: must be ignored
    log_probs = np.full((len(frames), 4096), -10.0, np.float32)
    log_probs[np.arange(len(frames)), frames] = 0.0
    assert greedy_decode(log_probs, length=3 * len(ids), tokenizer=tok) == "the cat sat"
