"""The shipped tokenizer and greedy CTC decoding."""

import hashlib

import numpy as np

from lcasr_jax.data.tokenizer import (
    ctc_collapse,
    default_tokenizer,
    default_tokenizer_path,
    greedy_decode,
)
from lcasr_jax.model.config import BLANK_ID


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
