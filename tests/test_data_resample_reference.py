"""The default resampler equals torchaudio's Resample (sinc_interp_hann, lowpass_filter_width 6,
rolloff 0.99) against an independent float64 evaluation of its documented formula:

    y[j] = sum_i x[i] * (r * m / orig) * sinc(t) * cos(pi * t / (2 * L)) ** 2,
    t = r * m * (i / orig - j / new),  |t| <= L,  m = min(orig, new),  r = 0.99,  L = 6

(x zero outside the recording; output length ceil(n * new / orig)), evaluated here directly
per output sample in float64, with the rates not reduced by their gcd.
"""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lcasr_jax.data import audio as A
from lcasr_jax.data.features import audio_to_features, compute_features
from lcasr_jax.eval.datasets.base import EvalRecording

# The rates and test signal of scripts/check_resampler_torchaudio.py, which compares the
# same resampler with torchaudio itself on the GPU machine.
_spec = importlib.util.spec_from_file_location(
    "check_resampler_torchaudio",
    Path(__file__).resolve().parents[1] / "scripts" / "check_resampler_torchaudio.py")
_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_check)
RATES = _check.RATES


def _signal(rate: int, seconds: float = 0.3) -> np.ndarray:
    return _check.signal(rate, seconds)


def resample_reference(x: np.ndarray, orig: int, new: int, lowpass: int = 6,
                       rolloff: float = 0.99) -> np.ndarray:
    x = np.asarray(x, np.float64)
    band = rolloff * min(orig, new)
    reach = lowpass * orig / band  # input samples each side with |t| <= lowpass
    n_out = math.ceil(len(x) * new / orig)
    j = np.arange(n_out)[:, None]
    k = np.arange(-math.ceil(reach) - 1, math.ceil(reach) + 2)[None, :]
    i = (j * orig) // new + k  # input samples around each output's position
    t = band * (i * new - j * orig) / (orig * new)  # exact integers before the division
    inside = (np.abs(t) <= lowpass) & (i >= 0) & (i < len(x))
    weight = np.sinc(t) * np.cos(np.pi * t / (2 * lowpass)) ** 2 * (band / orig)
    return np.where(inside, weight * x[np.clip(i, 0, len(x) - 1)], 0.0).sum(1)


@pytest.mark.parametrize("rate", RATES)
def test_default_resampler_equals_float64_formula(rate):
    x = _signal(rate)
    got = A.resample(x, rate, 16000)  # the default method
    want = resample_reference(x, rate, 16000)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.max(np.abs(got - want)) < 1e-4, np.max(np.abs(got - want))


@pytest.mark.parametrize("rate, n", [(44100, 4409), (22050, 1), (8000, 7), (48000, 2)])
def test_odd_lengths(rate, n):
    x = _signal(rate)[:n]
    got = A.resample_torchaudio(x, rate, 16000)
    np.testing.assert_allclose(got, resample_reference(x, rate, 16000), atol=1e-5)


def test_reference_is_not_trivially_soxr():
    """soxr (the alternative) differs from torchaudio's filter near 8 kHz: the reference
    tells them apart, so the test above can fail."""
    x = _signal(44100)
    soxr = A.resample(x, 44100, 16000, method="soxr")
    assert np.max(np.abs(soxr - resample_reference(x, 44100, 16000))) > 1e-3


def test_eval_features_use_the_default_and_accept_soxr(tmp_path):
    x = _signal(22050, 1.0)
    path = tmp_path / "a.wav"
    sf.write(path, x, 22050, subtype="FLOAT")
    rec = EvalRecording("a", path, "ref")
    ours = compute_features(resample_reference(x, 22050, 16000).astype(np.float32))
    np.testing.assert_allclose(rec.features(), ours, atol=2e-3)
    np.testing.assert_array_equal(rec.features(), audio_to_features(path, "torchaudio"))
    soxr = compute_features(A.resample(x, 22050, 16000, method="soxr"))
    np.testing.assert_array_equal(rec.features("soxr"), soxr)
