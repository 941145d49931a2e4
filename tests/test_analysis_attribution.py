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
    assert got.wer.shape == (5, 5) and got.wer_base >= 0
    curve = attribution.by_distance(got.logp)
    assert curve.shape == (5,) and curve[0] == pytest.approx(np.trace(got.logp) / 5)
