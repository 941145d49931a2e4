"""Features vs an independent float64 reference (explicit DFT) and vs torch.stft."""

import numpy as np
import pytest

from lcasr_jax.data import features as F


def _signal(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    x = env * (0.3 * rng.standard_normal(n) + 0.5 * np.sin(2 * np.pi * 440 * t))
    return (x / np.abs(x).max() * 0.9).astype(np.float32)


def _reference_f64(audio: np.ndarray) -> np.ndarray:
    """Textbook float64: reflect pad 256, 512-sample frames with a centred periodic Hann(400),
    explicit DFT matrix, |X|^2, HTK triangles, per-bin (x - mean) / std(ddof=1)."""
    x = np.pad(audio.astype(np.float64), 256, mode="reflect")
    n_frames = 1 + len(audio) // 160
    win = np.zeros(512)
    win[56:456] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    idx = np.arange(n_frames)[:, None] * 160 + np.arange(512)[None]
    frames = x[idx] * win
    k = np.arange(257)[:, None] * np.arange(512)[None]
    re = frames @ np.cos(2 * np.pi * k / 512).T
    im = frames @ np.sin(2 * np.pi * k / 512).T
    power = re**2 + im**2  # (frames, 257)
    mel = lambda f: 2595 * np.log10(1 + f / 700)
    pts = 700 * (10 ** (np.linspace(0, mel(8000.0), 82) / 2595) - 1)
    freqs = np.arange(257) * 8000 / 256
    fb = np.zeros((257, 80))
    for m in range(80):
        lo, c, hi = pts[m], pts[m + 1], pts[m + 2]
        fb[:, m] = np.clip(np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)), 0, None)
    spec = (power @ fb).T
    return (spec - spec.mean(1, keepdims=True)) / spec.std(1, ddof=1, keepdims=True)


@pytest.mark.parametrize("n", [16000, 16000 + 77, 4000])
def test_numpy_matches_float64_reference(n):
    audio = _signal(n, seed=n)
    got = F.compute_features(audio)
    ref = _reference_f64(audio)
    assert got.dtype == np.float32 and got.shape == (80, 1 + n // 160)
    np.testing.assert_allclose(got, ref, atol=2e-5, rtol=1e-4)


def test_mel_power_not_logged_matches_reference_scale():
    audio = _signal(8000)
    power = F.mel_power(audio)
    assert power.min() >= 0  # power, no log
    # unnormalised power equals the float64 mel power to float32 rounding
    x = np.pad(audio.astype(np.float64), 256, mode="reflect")
    win = np.zeros(512)
    win[56:456] = np.hanning(401)[:400]  # periodic Hann(400)
    frame = x[160 * 10:160 * 10 + 512] * win
    ref = np.abs(np.fft.rfft(frame)) ** 2 @ F.mel_filterbank()
    np.testing.assert_allclose(power[:, 10], ref, rtol=2e-5, atol=1e-6 * ref.max())


def test_matches_torch_stft_chain():
    torch = pytest.importorskip("torch")
    audio = _signal(24000, seed=3)
    wav = torch.from_numpy(audio)[None]
    stft = torch.stft(wav, n_fft=512, hop_length=160, win_length=400,
                      window=torch.hann_window(400), center=True, pad_mode="reflect",
                      normalized=False, onesided=True, return_complex=True)
    power = stft.abs().pow(2.0)  # (1, 257, frames)
    fb = torch.from_numpy(F.mel_filterbank().astype(np.float32))
    spec = torch.matmul(power.transpose(-1, -2), fb).transpose(-1, -2)
    spec = (spec - spec.mean(-1, keepdim=True)) / spec.std(-1, keepdim=True)
    np.testing.assert_allclose(F.compute_features(audio), spec[0].numpy(), atol=3e-5, rtol=1e-4)


def test_jax_matches_numpy():
    audio = _signal(16000 + 33, seed=5)
    got = np.asarray(F.compute_features_jax(audio))
    np.testing.assert_allclose(got, _reference_f64(audio), atol=5e-5, rtol=1e-4)


def test_filterbank_properties():
    fb = F.mel_filterbank()
    assert fb.shape == (257, 80)
    assert fb[0].sum() == 0 and np.all(fb.max(0) > 0.3)  # no normalisation: peaks near 1
    np.testing.assert_allclose(F.hz_to_mel(F.mel_to_hz(np.array([0.0, 1000.0, 2840.0]))),
                               [0.0, 1000.0, 2840.0])


def test_silent_bin_gives_zeros_not_nan():
    audio = np.zeros(3200, np.float32)
    out = F.compute_features(audio)
    assert np.all(out == 0)
    out_jax = np.asarray(F.compute_features_jax(audio))
    assert np.all(out_jax == 0)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="16000 Hz"):
        F.compute_features(np.zeros(16000, np.float32), sample_rate=8000)
    with pytest.raises(ValueError, match="too short"):
        F.compute_features(np.zeros(100, np.float32))
    with pytest.raises(ValueError, match="1-D"):
        F.compute_features(np.zeros((2, 16000), np.float32))


def test_frame_rate_constants_have_one_home():
    """Frames <-> seconds conversions use the hop/sample-rate constants defined here; no
    other module defines its own."""
    import inspect
    import re

    from lcasr_jax import decode, demo
    from lcasr_jax.data.sources import synthetic
    from lcasr_jax.eval import runner
    from lcasr_jax.eval.datasets import base
    from lcasr_jax.figures import style as plot
    from lcasr_jax.train import loop

    assert F.FRAMES_PER_SECOND == 100 and F.FRAME_SECONDS == 0.01
    assert F.FRAME_SECONDS == F.HOP_LENGTH / F.SAMPLE_RATE == 1 / F.FRAMES_PER_SECOND
    assert decode.FRAME_SECONDS is plot.FRAME_SECONDS is F.FRAME_SECONDS
    defines = re.compile(r"^(FRAMES?_\w*|HOP_\w*|SAMPLE_RATE) = ", re.M)
    for module in (demo, decode, plot, runner, base, loop, synthetic):
        source = inspect.getsource(module)
        assert not defines.search(source), module.__name__
        assert not re.search(r"(/|\*) 100\b", source), module.__name__
