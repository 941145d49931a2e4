"""Audio loading: formats, left channel, resampling, SPHERE, clear errors."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lcasr_jax.data import audio as A
from lcasr_jax.data.features import audio_to_features

REAL_WAV = Path("/usr/share/sounds/alsa/Front_Center.wav")


def _tone(sr: int, seconds: float = 0.5, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("fmt,ext,subtype", [("WAV", "wav", "PCM_16"), ("FLAC", "flac", "PCM_16"),
                                              ("OGG", "ogg", "VORBIS"), ("WAV", "wav", "FLOAT")])
def test_formats_left_channel(tmp_path, fmt, ext, subtype):
    left, right = _tone(16000), np.zeros(8000, np.float32)
    path = tmp_path / f"x.{ext}"
    sf.write(path, np.stack([left, right], 1), 16000, format=fmt, subtype=subtype)
    got = A.load_audio(path)
    assert got.dtype == np.float32 and got.ndim == 1
    tol = 0.05 if subtype == "VORBIS" else 1e-4
    n = min(len(got), len(left))
    assert abs(n - len(left)) <= 0 and np.sqrt(np.mean((got[:n] - left[:n]) ** 2)) < tol


def test_mp3_if_supported(tmp_path):
    if "MP3" not in sf.available_formats():
        pytest.skip("libsndfile without mp3")
    path = tmp_path / "x.mp3"
    sf.write(path, _tone(16000, 1.0), 16000, format="MP3")
    got = A.load_audio(path)
    assert abs(len(got) - 16000) < 2000 and 0.2 < np.abs(got).max() < 0.7


def test_resample_48k_tone_keeps_frequency_and_length(tmp_path):
    path = tmp_path / "x.wav"
    sf.write(path, _tone(48000, 1.0, 1000.0), 48000, subtype="FLOAT")
    got = A.load_audio(path)
    assert len(got) == 16000
    spec = np.abs(np.fft.rfft(got[1000:15000] * np.hanning(14000)))
    assert abs(np.argmax(spec) * 16000 / 14000 - 1000) < 2
    ref = _tone(16000, 1.0, 1000.0)
    assert np.max(np.abs(got[200:-200] - ref[200:-200])) < 1e-3


def test_torchaudio_resampler_matches_torchaudio_values():
    """Values produced by torchaudio 2.11's Resample code (_get_sinc_resample_kernel +
    _apply_sinc_resample_kernel, default settings) on this 44.1 kHz signal."""
    t = np.arange(4410) / 44100
    sig = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.25 * np.sin(2 * np.pi * 7950 * t)).astype(
        np.float32)
    got = A.resample(sig, 44100, 16000, method="torchaudio")
    assert got.shape == (1600,) and got.dtype == np.float32
    ref = [0.13382963836193085, 0.0482785701751709, -0.612978458404541, 0.4232115149497986,
           -0.048277560621500015]
    np.testing.assert_allclose(got[[0, 1, 100, 777, 1599]], ref, atol=5e-7)
    assert np.sum(got.astype(np.float64) ** 2) == pytest.approx(212.04324656185605, rel=1e-6)
    assert len(A.resample(sig[:4409], 44100, 16000, method="torchaudio")) == 1600  # ceil
    with pytest.raises(ValueError, match="unknown resampler"):
        A.resample(sig, 44100, 16000, method="sinc")


@pytest.mark.parametrize("channels", [1, 2])
def test_sphere_roundtrip_and_matches_libsndfile(tmp_path, channels):
    data = np.stack([_tone(8000), _tone(8000, freq=200.0)], 1)[:, :channels]
    path = tmp_path / "x.sph"
    A.write_sphere(path, data, 8000)
    raw, sr = A.read_sphere(path)
    assert sr == 8000 and raw.shape == data.shape
    np.testing.assert_allclose(raw, data, atol=1 / 32768)
    ref, sr2 = sf.read(path, dtype="float32", always_2d=True)  # libsndfile's NIST reader
    np.testing.assert_allclose(raw, ref, atol=1e-6)
    assert len(A.load_audio(path)) == 2 * len(data)


def test_sphere_big_endian_and_ulaw(tmp_path):
    vals = np.array([0, 1000, -1000, 32767, -32768], ">i2")
    header = (b"NIST_1A\n   1024\nsample_count -i 5\nsample_rate -i 16000\nchannel_count -i 1\n"
              b"sample_n_bytes -i 2\nsample_byte_format -s2 10\nsample_coding -s3 pcm\nend_head\n")
    p = tmp_path / "be.sph"
    p.write_bytes(header.ljust(1024) + vals.tobytes())
    np.testing.assert_allclose(A.read_sphere(p)[0][:, 0], vals.astype(np.float64) / 32768)
    header_u = (b"NIST_1A\n   1024\nsample_count -i 2\nsample_rate -i 8000\nchannel_count -i 1\n"
                b"sample_n_bytes -i 1\nsample_coding -s4 ulaw\nend_head\n")
    p2 = tmp_path / "u.sph"
    p2.write_bytes(header_u.ljust(1024) + bytes([0xFF, 0x00]))  # G.711: 0xFF = 0, 0x00 = -max
    got = A.read_sphere(p2)[0][:, 0]
    assert got[0] == 0 and got[1] == pytest.approx(-32124 / 32768)


def test_sphere_shorten_rejected(tmp_path):
    header = (b"NIST_1A\n   1024\nsample_count -i 5\nsample_rate -i 16000\nchannel_count -i 1\n"
              b"sample_coding -s26 pcm,embedded-shorten-v2.00\nend_head\n")
    p = tmp_path / "c.sph"
    p.write_bytes(header.ljust(1024) + b"\x00" * 10)
    with pytest.raises(A.AudioError, match=r"c\.sph.*compressed"):
        A.load_audio(p)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(A.AudioError, match="missing.wav.*not found"):
        A.load_audio(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(A.AudioError, match="empty.wav.*empty"):
        A.load_audio(empty)
    junk = tmp_path / "junk.flac"
    junk.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(A.AudioError, match="junk.flac.*unreadable"):
        A.load_audio(junk)
    nosamples = tmp_path / "zero.wav"
    sf.write(nosamples, np.zeros((0,), np.float32), 16000)
    with pytest.raises(A.AudioError, match="zero.wav: the WAV header declares 0 bytes of audio"):
        A.load_audio(nosamples)
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros((50,), np.float32), 16000)
    with pytest.raises(ValueError, match="short.wav.*too short"):
        audio_to_features(short)


@pytest.mark.skipif(not REAL_WAV.is_file(), reason="alsa-utils sample not installed")
def test_real_speech_front_center(tmp_path):
    """Real 48 kHz speech: resampled to 16 kHz; flac copy gives the same features."""
    info = sf.info(REAL_WAV)
    audio = A.load_audio(REAL_WAV)
    assert abs(len(audio) - round(info.frames * 16000 / info.samplerate)) <= 1
    assert np.abs(audio).max() > 0.05
    feats = audio_to_features(REAL_WAV)
    assert feats.shape == (80, 1 + len(audio) // 160) and np.isfinite(feats).all()
    data, sr = sf.read(REAL_WAV, dtype="float32", always_2d=True)
    flac = tmp_path / "fc.flac"
    sf.write(flac, data, sr, subtype="PCM_16")
    np.testing.assert_allclose(audio_to_features(flac), feats, atol=1e-2)
    # soxr against an independent polyphase resampler (scipy, float64): same speech in-band
    signal = pytest.importorskip("scipy.signal")
    ref = signal.resample_poly(data[:, 0].astype(np.float64), 1, 3, window=("kaiser", 12.0))
    n = min(len(ref), len(audio))
    b, a = signal.butter(8, 6500, fs=16000)  # the filters differ only in the transition band
    diff = signal.filtfilt(b, a, audio[:n]) - signal.filtfilt(b, a, ref[:n])
    assert np.sqrt(np.mean(diff**2)) < 0.01 * np.sqrt(np.mean(ref**2))
    # the original's resampler: same length, same speech below 7 kHz
    ta = A.load_audio(REAL_WAV, resampler="torchaudio")
    assert len(ta) == -(-info.frames // 3)  # ceil, as torchaudio
    n = min(len(ta), len(audio))
    diff = signal.filtfilt(b, a, ta[:n].astype(np.float64)) - signal.filtfilt(b, a, audio[:n])
    assert np.sqrt(np.mean(diff**2)) < 0.01 * np.sqrt(np.mean(ref**2))
    # lossy copies (ogg, and mp3 when libsndfile has it) give nearly the same features
    formats = [("ogg", "OGG", "VORBIS")] + ([("mp3", "MP3", "MPEG_LAYER_III")]
                                            if "MP3" in sf.available_formats() else [])
    for ext, fmt, subtype in formats:
        lossy = tmp_path / f"fc.{ext}"
        sf.write(lossy, data, sr, format=fmt, subtype=subtype)
        other = audio_to_features(lossy)
        m = min(other.shape[1], feats.shape[1])
        corr = np.corrcoef(other[:, :m].ravel(), feats[:, :m].ravel())[0, 1]
        assert corr > 0.9, (ext, corr)
