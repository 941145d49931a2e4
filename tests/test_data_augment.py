"""On-accelerator augmentation (lcasr_jax.data.augment), each stage against numpy references:
features = the numpy frontend, speed = the analytic resampled sine, formant warp = the numpy
generator's, reverb = numpy convolution, noise = its SNR, band limit = no energy outside,
EQ and level by hand; determinism per (seed, epoch, recording), change across epochs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lcasr_jax.data import augment as A
from lcasr_jax.data.features import compute_features, features_jax, num_frames

SR = 16000


def _speechlike(n, seed=0):
    """Harmonics of a gliding f0 under two formants, with pauses: (n,) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    ph = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.exp(-((k * 120 - 700) / 250) ** 2) + 0.5 * np.exp(-((k * 120 - 1800) / 300) ** 2)
            * np.sin(k * ph) for k in range(1, 30))
    env = (np.sin(2 * np.pi * 1.3 * t) > -0.3).astype(float)
    return (0.3 * x * env + 1e-3 * rng.standard_normal(n)).astype(np.float32)


def test_features_of_padded_audio_equal_the_numpy_frontend_of_the_valid_part():
    n, length = 23_456, 40_000
    x = _speechlike(n)
    pad = np.zeros(length, np.float32)
    pad[:n] = x
    pad[n:] = 5.0  # garbage past the valid end must not leak in (reflect at n)
    got = np.asarray(jax.jit(features_jax)(jnp.asarray(pad), n))
    ref = compute_features(x).T
    assert got.shape == (num_frames(length), 80)
    np.testing.assert_allclose(got[:num_frames(n)], ref, atol=2e-3, rtol=1e-3)
    assert not got[num_frames(n):].any()


@pytest.mark.parametrize("speed", [0.9, 1.0, 1.1])
def test_speed_resampling_gives_the_analytic_sine(speed):
    n, f = 8000, 440.0
    m = np.arange(n)
    x = np.sin(2 * np.pi * f * m / SR).astype(np.float32)
    out_len = 9000
    y = np.asarray(A.resample_speed(jnp.asarray(x), n, jnp.float32(speed), out_len, block=4096))
    n_out = A.out_samples(n, speed)
    ref = np.sin(2 * np.pi * f * speed * np.arange(out_len) / SR)
    inner = slice(200, n_out - 200)  # away from the edges the sinc window sees zeros
    np.testing.assert_allclose(y[inner], ref[inner], atol=2e-3)
    assert not y[n_out + 1:].any()
    if speed == 1.0:
        np.testing.assert_allclose(y[:n], x, atol=1e-6)


def test_speed_resampling_removes_what_would_alias():
    n = 16000
    x = np.sin(2 * np.pi * 7800 * np.arange(n) / SR).astype(np.float32)  # above 8000 / 1.1
    y = np.asarray(A.resample_speed(jnp.asarray(x), n, jnp.float32(1.1), n, block=4096))
    assert np.sqrt(np.mean(y[500:14000] ** 2)) < 0.02  # a 7.8 kHz tone would fold to 7.4 kHz


@pytest.mark.parametrize("alpha", [0.88, 1.0, 1.12])
def test_formant_warp_matches_the_numpy_generator(alpha):
    from lcasr_jax.data.synth.perturb import formant_warp

    x = _speechlike(12_345)
    got = np.asarray(jax.jit(A.formant_warp)(jnp.asarray(x), jnp.float32(alpha)))
    ref = formant_warp(x, alpha)
    np.testing.assert_allclose(got, ref, atol=2e-4 * np.abs(ref).max())


def test_reverb_is_numpy_convolution_with_the_drawn_impulse_response():
    rir = np.asarray(A.impulse_response(jax.random.key(3), jnp.float32(0.4), jnp.float32(0.5)))
    assert rir[0] == 1 and not rir[1:48].any() and not rir[int(0.4 * SR) + 1:].any()
    np.testing.assert_allclose(np.sum(rir[1:] ** 2), 0.25, rtol=1e-4)
    x = _speechlike(20_000)
    got = np.asarray(A.reverberate(jnp.asarray(x), jnp.asarray(rir)))
    ref = np.convolve(x.astype(np.float64), rir.astype(np.float64))[:len(x)]
    np.testing.assert_allclose(got, ref, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("colour", [0.0, 1.0, 2.0])
def test_noise_is_added_at_the_drawn_snr_on_the_valid_part(colour):
    n, length = 15_000, 20_000
    x = np.zeros(length, np.float32)
    x[:n] = _speechlike(n)
    y = np.asarray(A.add_noise(jnp.asarray(x), n, jax.random.key(1), jnp.float32(colour),
                               jnp.float32(12.5)))
    noise = y.astype(np.float64) - x
    snr = 10 * np.log10(np.sum(x[:n].astype(np.float64) ** 2) / np.sum(noise[:n] ** 2))
    assert snr == pytest.approx(12.5, abs=0.01)
    assert not noise[n:].any()
    # colour: the low/high band power ratio grows with the exponent
    spec = np.abs(np.fft.rfft(noise[:n])) ** 2
    f = np.fft.rfftfreq(n, 1 / SR)
    tilt = 10 * np.log10(spec[(f > 200) & (f < 400)].mean() / spec[(f > 3200) & (f < 6400)].mean())
    assert tilt == pytest.approx(10 * colour * np.log10(16), abs=2.5)


def test_band_limit_removes_the_energy_outside_and_flat_eq_is_identity():
    x = np.random.default_rng(0).standard_normal(32_768).astype(np.float32)
    flat = jnp.zeros(8)
    same = np.asarray(A.channel(jnp.asarray(x), flat, jnp.bool_(False), 100.0, 4000.0))
    np.testing.assert_allclose(same, x, atol=1e-5)
    y = np.asarray(A.channel(jnp.asarray(x), flat, jnp.bool_(True), 300.0, 3400.0))
    p = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / SR)
    outside = p[(f > 3420) | (f < 280)].sum() / p.sum()
    assert outside < 1e-8
    inside = np.abs(np.fft.rfft(x)) ** 2
    band = (f > 320) & (f < 3380)
    np.testing.assert_allclose(p[band], inside[band], rtol=1e-3)
    up = np.asarray(A.channel(jnp.asarray(x), jnp.full(8, 6.0), jnp.bool_(False), 0.0, 8000.0))
    np.testing.assert_allclose(up, x * 10 ** (6 / 20), atol=1e-4)


def test_level_scales_the_peak_and_clips():
    x = np.array([0.1, -0.5, 0.25, 0.0], np.float32)
    np.testing.assert_allclose(np.asarray(A.level(jnp.asarray(x), -6.0)),
                               x / 0.5 * 10 ** (-6 / 20), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(A.level(jnp.asarray(x), 6.0)),
                               np.clip(x / 0.5 * 10 ** (6 / 20), -1, 1), rtol=1e-6)


def test_bucket_lengths_are_few_and_hold_the_recording():
    for n in (1, 65_536, 65_537, 7_700_000, 12_800_000):
        b = A.bucket(n)
        assert n <= b < 1.25 * n + A._BUCKET_UNIT + 1 and b % A._BUCKET_UNIT == 0
    assert len({A.bucket(n) for n in range(7_700_000, 12_800_000, 10_000)}) <= 4


def test_recordings_differ_per_epoch_and_repeat_per_key():
    cfg = A.AugmentConfig()
    x = _speechlike(30_000)
    a0, s0 = A.augment_recording(x, 7, 0, 3, cfg)
    b0, t0 = A.augment_recording(x, 7, 0, 3, cfg)
    a1, s1 = A.augment_recording(x, 7, 1, 3, cfg)
    c0, _ = A.augment_recording(x, 7, 0, 4, cfg)
    assert np.array_equal(a0, b0) and s0 == t0
    assert s0 != s1 and not np.array_equal(a0[:100], a1[:100])
    assert not np.array_equal(a0[:100], c0[:100])
    assert a0.dtype == np.float16 and a0.shape == (num_frames(A.out_samples(30_000, s0)), 80)
    assert 0.9 <= s0 <= 1.1 and np.isfinite(a0).all()
    # A config with every range fixed and every probability 0 is the plain frontend.
    off = A.AugmentConfig(speed=(1.0, 1.0), formant=(1.0, 1.0), p_reverb=0.0, p_noise=0.0,
                          eq_db=0.0, p_band=0.0, level_db=(-6.0, -6.0))
    plain, s = A.augment_recording(x, 7, 0, 3, off)
    assert s == 1.0
    np.testing.assert_allclose(plain, compute_features(x).T, atol=3e-3, rtol=2e-3)


def test_dry_source_scales_word_times_by_the_drawn_speed(tmp_path):
    import soundfile as sf

    from lcasr_jax.data.alignments import Recording, Words, write_recording
    from lcasr_jax.data.sources.dry import DryRecordingsSource

    x = _speechlike(3 * SR)
    sf.write(tmp_path / "r.wav", x, SR, "PCM_16")
    words = Words(("one", "two", "three"), np.array([0.2, 1.0, 2.0]), np.array([0.8, 1.6, 2.9]))
    write_recording(tmp_path / "r.json", Recording("r", tmp_path / "r.wav", words, 3.0, {}))
    src = DryRecordingsSource.from_dir(tmp_path, "train", A.AugmentConfig(), seed=5)
    e0, e1 = src.example(0, 0), src.example(0, 1)
    for e, epoch in ((e0, 0), (e1, 1)):
        speed = float(A._speed(A.recording_key(5, epoch, 0), src.cfg))
        np.testing.assert_allclose(e["word_start"], words.start / speed)
        np.testing.assert_allclose(e["word_end"], words.end / speed)
        assert e["num_frames"] == len(e["features"]) == num_frames(A.out_samples(3 * SR, speed))
    assert e0["word_end"][-1] != e1["word_end"][-1]
    assert list(e0["token_ids"]) == list(e1["token_ids"]) and len(e0["token_ids"]) >= 3
