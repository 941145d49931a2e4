"""Greedy CTC decoding with word timestamps; optional pyctcdecode beam search."""

import numpy as np
import pytest

from lcasr_jax import decode
from lcasr_jax.data.tokenizer import default_tokenizer
from lcasr_jax.decode import BeamDecoder

BLANK = 4095


def _log_probs(frame_ids, classes=4096):
    x = np.full((len(frame_ids), classes), -20.0, np.float32)
    x[np.arange(len(frame_ids)), frame_ids] = -0.01
    return x


def _path():
    tok = default_tokenizer()
    un, bel, ie, v, ably, qu = tok.encode("unbelievably qu")  # ▁un bel ie v ably ▁qu
    # frames: 0 blank, 1-2 ▁un, 3 bel, 4 blank, 5 ie, 6 v, 7 ably, 8-9 blank,
    # 10-11 ▁qu, 12 blank, 13 ▁qu again (a new token after a blank)
    return [BLANK, un, un, bel, BLANK, ie, v, ably, BLANK, BLANK, qu, qu, BLANK, qu]


def test_token_runs_hand_checked():
    runs = decode.token_runs(np.array([4, 4, 9, 4, 9, 9, 1]), blank_id=9)
    assert runs == [(4, 0, 1), (4, 3, 3), (1, 6, 6)]
    assert decode.token_runs(np.array([], int), 9) == []


def test_greedy_text_and_word_times():
    out = decode.greedy(_log_probs(_path()), factor=8)
    tok = default_tokenizer()
    un, bel, ie, v, ably, qu = tok.encode("unbelievably qu")
    assert out.text == tok.decode([un, bel, ie, v, ably, qu, qu])
    assert [w.word for w in out.words] == ["unbelievably", "qu", "qu"]
    # 80 ms per output frame: word = [first frame of first token, last frame + 1)
    assert [(w.start, w.end) for w in out.words] == [(0.08, 0.64), (0.8, 0.96), (1.04, 1.12)]
    assert decode.greedy(_log_probs(_path()), factor=4).words[0].end == 0.32


def test_greedy_texts_of_a_batch_cut_each_row_at_its_length():
    tok = default_tokenizer()
    path = np.array(_path())
    ids = np.stack([path, np.r_[path[:8], path[:6]]])  # row 1: more words after frame 8
    texts = decode.greedy_texts(ids, [len(path), 8], tok)
    assert texts == [decode.greedy(_log_probs(path), factor=8).text,
                     tok.decode(tok.encode("unbelievably"))]
    assert texts[1] == decode.greedy_decode(_log_probs(ids[1]), length=8, tokenizer=tok)


def test_greedy_rejects_mismatched_classes():
    with pytest.raises(ValueError, match="checkpoint/tokenizer mismatch: model has 100"):
        decode.greedy(np.zeros((5, 100), np.float32), factor=8)


def test_beam_search_agrees_with_greedy_on_peaked_input():
    pytest.importorskip("pyctcdecode")
    lp = _log_probs(_path())
    beam = BeamDecoder(beam_width=8)(lp, 8)
    greedy = decode.greedy(lp, factor=8)
    assert beam.text.split() == greedy.text.split()
    assert [w.word for w in beam.words] == [w.word for w in greedy.words]
    assert beam.words[0].start == pytest.approx(greedy.words[0].start, abs=0.081)


def _random_log_probs(frames=60, seed=0, temperature=2.0):
    """(frames, 4096) log-softmax of random logits, blank favoured: several tokens compete."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((frames, BLANK + 1)) * temperature
    logits[:, BLANK] += rng.uniform(3, 9, frames)
    logits -= logits.max(1, keepdims=True)
    return (logits - np.log(np.exp(logits).sum(1, keepdims=True))).astype(np.float32)


def test_greedy_equals_independent_best_path():
    tok = default_tokenizer()
    for seed in range(3):
        lp = _random_log_probs(seed=seed)
        best = lp.astype(np.float64).argmax(1)
        ids = [int(t) for i, t in enumerate(best) if t != BLANK and (i == 0 or t != best[i - 1])]
        got = decode.make_decoder(decode.DecoderSettings())(best, 8)
        assert got.text == tok.decode(ids) and got.text


@pytest.mark.parametrize("width", [1, 4])
def test_beam_equals_pyctcdecode_as_the_original_builds_it(width):
    pyctcdecode = pytest.importorskip("pyctcdecode")
    sp = default_tokenizer().sp
    vocab = [sp.IdToPiece(i) for i in range(sp.GetPieceSize())] + [""]
    original = pyctcdecode.build_ctcdecoder(vocab, kenlm_model_path=None, alpha=None, beta=None)
    ours = decode.make_decoder(decode.DecoderSettings("beam", beam_width=width))
    assert ours.wants == "log_probs"
    for seed in range(3):
        lp = _random_log_probs(seed=seed)
        text, _, frames, *_ = original.decode_beams(lp, beam_width=width)[0]
        got = ours(lp, factor=8)
        assert got.text == text and text
        assert [(w.word, w.start, w.end) for w in got.words] == \
            [(w, round(a * 0.08, 3), round(b * 0.08, 3)) for w, (a, b) in frames]


@pytest.mark.parametrize("kwargs, match", [
    ({"kind": "viterbi"}, "decoder must be one of greedy, beam"),
    ({"kind": "beam", "beam_width": 0}, "beam width must be >= 1"),
    ({"kind": "greedy", "kenlm": "lm.arpa"}, "need --decoder beam"),
    ({"kind": "beam", "alpha": 0.3}, "give --kenlm too"),
    ({"kind": "beam", "beta": 1.0}, "give --kenlm too"),
])
def test_decoder_settings_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        decode.DecoderSettings(**kwargs)


def test_kenlm_path_errors(tmp_path):
    pytest.importorskip("pyctcdecode")
    import importlib.util

    settings = decode.DecoderSettings("beam", kenlm=str(tmp_path / "missing.arpa"), alpha=0.3)
    if importlib.util.find_spec("kenlm") is None:
        with pytest.raises(ImportError, match="needs the kenlm python package"):
            decode.make_decoder(settings)
    else:
        with pytest.raises(FileNotFoundError, match="missing.arpa: KenLM model not found"):
            decode.make_decoder(settings)
