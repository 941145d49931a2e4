"""Context attribution (analysis.attribution) on the random-weight parity fixture."""

from __future__ import annotations

import numpy as np
import pytest

import lcasr_jax
from lcasr_jax.analysis import attribution
from lcasr_jax.eval import engine

WINDOW = 400  # frames = 50 output frames per window


@pytest.fixture(scope="module")
def fixture(parity_dir):
    model, variables = lcasr_jax.load_pretrained(parity_dir / "rotary_ln" / "checkpoint.pt")
    spec = np.load(parity_dir / "rotary_ln" / "io.npz")["spec"][0]  # (80, 1000)
    spec = np.concatenate([spec, spec[:, ::-1]], axis=1)[:, :1800]  # 1800 frames: 5 windows
    return model, variables, np.ascontiguousarray(spec)


def test_windows_beyond_the_receptive_field_get_zero_attribution(fixture):
    model, variables, spec = fixture
    cfg = model.config
    w = 2  # tokens each side
    limited = model.clone(config=cfg.replace(attention_window=(w, w)))
    # per layer: attention w + depthwise conv (k - 1) / 2 tokens; the subsampling: < 2 tokens
    reach = cfg.n_layers * (w + (cfg.conv_kernel_size - 1) // 2) + 2
    assert reach < WINDOW // cfg.subsampling_factor  # windows two apart are out of reach
    forward, n = engine.make_forward(limited, variables)
    got = attribution.attribute(forward, n, spec, WINDOW, factor=8, batch_size=4)
    d = np.abs(np.arange(5)[:, None] - np.arange(5)[None])
    assert got.logp.shape == (5, 5)
    assert np.abs(got.logp[d >= 2]).max() < 1e-6
    assert not got.changed[d >= 2].any()
    assert (np.abs(got.logp[d <= 1]) > 1e-4).all()  # near windows do matter

    forward, n = engine.make_forward(model, variables)  # full attention reaches everywhere
    full = attribution.attribute(forward, n, spec, WINDOW, factor=8, batch_size=4)
    assert (np.abs(full.logp[d >= 2]) > 1e-6).all()


def test_batched_matrix_equals_one_variant_at_a_time(fixture):
    model, variables, spec = fixture
    forward, n = engine.make_forward(model, variables)
    got = attribution.attribute(forward, n, spec, WINDOW, factor=8, batch_size=3,
                                reference="good morning")
    bounds = attribution.segment_bounds(spec.shape[1], WINDOW)
    np.testing.assert_array_equal(bounds, [[0, 400], [400, 800], [800, 1200], [1200, 1600],
                                           [1600, 1800]])
    base = np.asarray(model.apply(variables, spec[None])["final_posteriors"])[0]
    path = base.argmax(-1)
    frames_out = base.shape[0]
    want_logp, want_changed = np.zeros((5, 5)), np.zeros((5, 5))
    for j, (a, b) in enumerate(bounds):
        masked = spec.copy()
        masked[:, a:b] = spec[:, a:b].mean()
        out = np.asarray(model.apply(variables, masked[None])["final_posteriors"])[0]
        for i, (c, e) in enumerate(bounds):
            lo, hi = int(c / (spec.shape[1] / frames_out)), int(e / (spec.shape[1] / frames_out))
            rows = np.arange(lo, hi)
            want_logp[i, j] = np.mean(base[rows, path[rows]] - out[rows, path[rows]])
            want_changed[i, j] = np.mean(out[rows].argmax(-1) != path[rows])
    np.testing.assert_allclose(got.logp, want_logp, atol=2e-5)
    np.testing.assert_array_equal(got.changed, want_changed)
    assert got.wer.shape == (5, 6) and (got.wer[:, 5] == got.wer_base).all()
    curve = attribution.by_distance(got.logp)
    assert curve.shape == (5,) and curve[0] == pytest.approx(np.trace(got.logp) / 5)


def _original_greedy_text(logits: np.ndarray) -> str:
    """The original's GreedyCTCDecoder: argmax, unique_consecutive, blanks (4095) dropped,
    sentencepiece decode (the shipped model file, loaded here directly)."""
    import sentencepiece

    from lcasr_jax.data.tokenizer import default_tokenizer_path

    sp = sentencepiece.SentencePieceProcessor(model_file=str(default_tokenizer_path()))
    ids = logits.argmax(-1)
    ids = ids[np.r_[True, ids[1:] != ids[:-1]]]
    return sp.decode([int(i) for i in ids if i != 4095])


def _wer_percent(hyp: str, ref: str) -> float:
    """100 x word-level Levenshtein distance / reference words."""
    h, r = hyp.split(), ref.split()
    d = np.arange(len(h) + 1)
    for i, rw in enumerate(r, 1):
        prev, d = d, np.empty_like(d)
        d[0] = i
        for j, hw in enumerate(h, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (rw != hw))
    return 100.0 * d[-1] / len(r)


def test_wer_matrix_is_the_originals(fixture):
    """run_context_attribution.py rebuilt here: the whole recording run once per masked
    window j (features set to the window's mean), output window i's logits taken from that
    run, greedy-decoded, normalised, scored; column n: the unmasked run."""
    from lcasr_jax.eval.normalize import whisper_normalize

    model, variables, spec = fixture
    apply = lambda x: np.asarray(model.apply(variables, x[None])["final_posteriors"])[0]  # noqa: E731
    base = apply(spec)
    words = whisper_normalize(_original_greedy_text(base)).split()
    reference = " ".join(words[::2] + ["good", "morning"])  # base WER neither 0 nor 100
    frames, n = spec.shape[1], 5
    ratio = frames / base.shape[0]
    windows = [(i, min(i + WINDOW, frames)) for i in range(0, frames, WINDOW)]
    want = np.zeros((n, n + 1))
    want[:, -1] = _wer_percent(whisper_normalize(_original_greedy_text(base)), reference)
    for j, (a, b) in enumerate(windows):
        masked = spec.copy()
        masked[:, a:b] = spec[:, a:b].mean()
        out = apply(masked)
        for i, (c, e) in enumerate(windows):
            cur = base.copy()
            cur[int(c / ratio):int(e / ratio)] = out[int(c / ratio):int(e / ratio)]
            want[i, j] = _wer_percent(whisper_normalize(_original_greedy_text(cur)), reference)
    forward, devices = engine.make_forward(model, variables)
    got = attribution.attribute(forward, devices, spec, WINDOW, factor=8, batch_size=4,
                                reference=reference)
    assert got.wer.shape == (n, n + 1)
    np.testing.assert_allclose(got.wer, want, atol=1e-9)
    assert len(np.unique(want[:, :n])) > 1 and 0 < want[0, -1] < 100
