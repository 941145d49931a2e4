"""SpecAugment: structure of masks, fill values and sampling statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lcasr_jax.data.specaugment import SpecAugmentConfig, spec_augment

ORIGINAL = {"n_time_masks": 2, "time_mask_param": -1, "n_freq_masks": 2, "freq_mask_param": 27,
            "iid_masks": True, "min_p": 0.1, "max_p": 0.5, "zero_masking": False}


def _masked(spec_in, spec_out):
    return np.asarray(spec_in != spec_out)


def test_from_original_and_params():
    cfg = SpecAugmentConfig.from_original(ORIGINAL)
    assert cfg.time_param(2048) == int(int(2048 * 0.1) / 2) == 102
    assert cfg.freq_param(80) == 27
    assert SpecAugmentConfig.from_original({**ORIGINAL, "max_p": 0.2}).freq_param(80) == 16
    fixed = SpecAugmentConfig.from_original({"n_time_masks": 3, "n_freq_masks": 0,
                                             "freq_mask_param": 0, "time_mask_param": 40})
    assert fixed.time_param(1000) == 40 and fixed.max_p == 1.0
    with pytest.raises(ValueError, match="unknown"):
        SpecAugmentConfig.from_original({**ORIGINAL, "bogus": 1})
    with pytest.raises(ValueError, match="min_p or time_mask_param"):
        SpecAugmentConfig(time_mask_param=-1, min_p=-1)


def test_mask_structure_and_mean_fill():
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (16, 80, 512)) + 3.0
    lengths = jnp.array([512] * 8 + [300] * 8)
    cfg = SpecAugmentConfig.from_original(ORIGINAL)
    y = jax.jit(spec_augment, static_argnums=3)(jax.random.PRNGKey(1), x, lengths, cfg)
    m = _masked(x, y)
    fill = np.asarray(y)[m]
    valid = np.arange(512)[None] < np.asarray(lengths)[:, None]
    ref_mean = np.asarray(x, np.float64).transpose(0, 2, 1)[valid].mean()
    np.testing.assert_allclose(fill, ref_mean, rtol=1e-5)
    for b in range(16):  # masked cells = union of full rows and full columns
        rows, cols = m[b].all(1), m[b].all(0)
        np.testing.assert_array_equal(m[b], rows[:, None] | cols[None, :])
        assert rows.sum() <= 2 * 26 and cols.sum() <= 2 * 50
    assert not np.array_equal(m[0], m[1])  # iid per example
    z = spec_augment(jax.random.PRNGKey(1), x, lengths,
                     SpecAugmentConfig.from_original({**ORIGINAL, "zero_masking": True}))
    assert np.all(np.asarray(z)[_masked(x, z)] == 0)
    shared = spec_augment(jax.random.PRNGKey(2), x, None,
                          SpecAugmentConfig.from_original({**ORIGINAL, "iid_masks": False}))
    ms = _masked(x, shared)
    assert all(np.array_equal(ms[0], ms[b]) for b in range(16))


def test_width_and_start_statistics():
    """One time mask, param W over T frames: width ~ floor(U W) uniform on {0..W-1};
    start ~ floor(U2 (T - U1 W)); compared with a float64 Monte-Carlo of the same law."""
    t, w, n = 200, 40, 4000
    cfg = SpecAugmentConfig(n_time_masks=1, n_freq_masks=0, time_mask_param=w, min_p=-1,
                            max_p=1.0, zero_masking=True)
    x = jnp.ones((n, 1, t))
    m = _masked(x, spec_augment(jax.random.PRNGKey(3), x, None, cfg))[:, 0]
    width = m.sum(1)
    hist = np.bincount(width, minlength=w)
    assert hist.size == w  # never wider than W - 1
    expected = n / w
    chi2 = ((hist - expected) ** 2 / expected).sum()
    assert chi2 < 80, chi2  # 39 dof: p < 1e-3 above ~73
    starts = m[width > 0].argmax(1)
    rng = np.random.default_rng(0)
    u1, u2 = rng.random(200_000), rng.random(200_000)
    ref = np.floor(u2 * (t - u1 * w))[np.floor(u1 * w) > 0]
    assert abs(starts.mean() - ref.mean()) < 4 * ref.std() / np.sqrt(len(starts))
    assert (starts + width[width > 0]).max() <= t


def test_proportion_masks_scale_with_length_and_stay_inside():
    cfg = SpecAugmentConfig(n_time_masks=2, n_freq_masks=0, min_p=0.2, max_p=1.0,
                            zero_masking=True, per_example_length=True)
    x = jnp.ones((2000, 1, 400))
    lengths = jnp.array([400, 100] * 1000)
    m = _masked(x, spec_augment(jax.random.PRNGKey(4), x, lengths, cfg))[:, 0]
    long_cov, short_cov = m[0::2].sum(1).mean(), m[1::2].sum(1).mean()
    # each mask ~ U{0..39} (long) / U{0..9} (short): union of two ~ just under 2 * mean width
    assert 30 < long_cov < 39 and 7 < short_cov < 9.5
    assert not m[1::2, 100:].any()  # masks stay inside each example's length
    zero = SpecAugmentConfig(n_time_masks=2, n_freq_masks=2, freq_mask_param=0, min_p=0.0,
                             max_p=1.0)
    assert np.array_equal(np.asarray(spec_augment(jax.random.PRNGKey(0), x, None, zero)),
                          np.asarray(x))
