"""Acoustic augmentation of dry speech on the accelerator, drawn fresh per (seed, epoch, recording).

One jitted function turns a dry recording (16 kHz, zero-padded to a static bucket length)
into training features, in this order (the physical chain: speaker, room, microphone/line):

1. speed: band-limited resampling by s (tempo and pitch together; word times scale by 1/s),
   a windowed-sinc interpolator of `SINC_TAPS` taps;
2. formant warp: the spectral envelope moved by a factor (vocal-tract length; pitch kept),
   as `synth/perturb.formant_warp` (cepstral envelope, STFT 512/256, overlap-add);
3. reverberation: convolution (FFT) with a synthetic impulse response: direct path 1 plus
   exponentially decaying noise (-60 dB after rt60), energy `wet`, as `synth/room`;
4. background noise: coloured Gaussian noise (power ~ f^-c, c in [0, 2]: white..brown) at an
   SNR over the recording's valid samples (whole-recording power, pauses included);
5. channel colouring: a random EQ (gains in dB at log-spaced frequencies, interpolated);
6. codec-like band limits: with probability p_band, a brick-wall band-pass [high-pass, low-pass];
7. level: peak-normalised gain in dB, then hard clipping at +-1 (gains above 0 dB clip);
8. features: `data.features.features_jax` (80 mel power bins, standardised over the valid
   frames, reflect padding at the valid end: equal to `compute_features(audio[:n])`).

Parameters come from `draw(key, cfg)`, key = `recording_key(seed, epoch, recording)`.
Shapes are static per bucket (`bucket`), so a corpus of 8-12-minute recordings compiles a
handful of times. float32 throughout.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from lcasr_jax.data.features import features_jax, num_frames

SR = 16000
SINC_TAPS = 32
RIR_TAPS = 1 << 14  # 1.02 s: holds rt60 up to 1 s
_BUCKET_UNIT = 1 << 16


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Ranges (uniform) and probabilities of each augmentation; a range (a, a) fixes it."""

    speed: tuple[float, float] = (0.9, 1.1)
    formant: tuple[float, float] = (0.88, 1.12)
    p_reverb: float = 0.8
    rt60: tuple[float, float] = (0.15, 0.8)
    wet: tuple[float, float] = (0.1, 0.7)
    p_noise: float = 0.9
    snr_db: tuple[float, float] = (5.0, 35.0)
    noise_colour: tuple[float, float] = (0.0, 2.0)
    eq_db: float = 6.0
    eq_points: int = 8
    p_band: float = 0.3
    lowpass_hz: tuple[float, float] = (3400.0, 7500.0)
    highpass_hz: tuple[float, float] = (50.0, 300.0)
    level_db: tuple[float, float] = (-20.0, 3.0)

    @classmethod
    def from_dict(cls, d: dict) -> AugmentConfig:
        """From a config group (`cfg.augment` without its `enabled` field)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names - {"enabled"}
        if unknown:
            raise ValueError(f"config.augment: unknown fields {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, (list, tuple)) else v
                      for k, v in d.items() if k in names})


def recording_key(seed: int, epoch: int, recording: int) -> jax.Array:
    """The PRNG key of one recording's augmentation in one epoch."""
    k = jax.random.fold_in(jax.random.key(int(seed)), int(epoch))
    return jax.random.fold_in(k, int(recording))


def draw(key: jax.Array, cfg: AugmentConfig) -> dict[str, jax.Array]:
    """Every random choice of one recording's augmentation except the noise samples."""
    ks = jax.random.split(key, 16)

    def u(i, r):
        return jax.random.uniform(ks[i], (), jnp.float32, r[0], r[1])

    def coin(i, p):
        return jax.random.uniform(ks[i], ()) < p

    return {
        "speed": u(0, cfg.speed), "formant": u(1, cfg.formant),
        "reverb": coin(2, cfg.p_reverb), "rt60": u(3, cfg.rt60), "wet": u(4, cfg.wet),
        "noise": coin(5, cfg.p_noise), "snr_db": u(6, cfg.snr_db),
        "colour": u(7, cfg.noise_colour),
        "eq_db": jax.random.uniform(ks[8], (cfg.eq_points,), jnp.float32, -cfg.eq_db, cfg.eq_db),
        "band": coin(9, cfg.p_band), "lowpass": u(10, cfg.lowpass_hz),
        "highpass": u(11, cfg.highpass_hz), "level_db": u(12, cfg.level_db),
        "rir_key": ks[13], "noise_key": ks[14],
    }


def bucket(n: int) -> int:
    """Static padded length for n samples: the next of 2^k x {1, 1.25, 1.5, 1.75}, in whole
    units of 2^16 samples (at most 4 lengths per octave)."""
    units = max(1, -(-n // _BUCKET_UNIT))
    p = 1 << max(0, units.bit_length() - 3)
    return -(-units // p) * p * _BUCKET_UNIT


def out_samples(n: int, speed: float) -> int:
    """Valid samples after the speed change of n samples by `speed`."""
    return max(1, int(math.floor(n / float(np.float32(speed)))))


# ------------------------------------------------------------------ audio stages
def resample_speed(x: jax.Array, n: jax.Array, speed: jax.Array, out_len: int,
                   block: int = 1 << 16) -> jax.Array:
    """y[m] = x(m * speed) band-limited (Hann-windowed sinc, SINC_TAPS taps, cutoff
    0.9 x min(1, 1/speed) of Nyquist; speed 1 is the identity); x (L,) valid in [0, n);
    -> (out_len,), zero where m * speed >= n."""
    half = SINC_TAPS // 2
    cut = jnp.where(speed == 1.0, 1.0, 0.9 * jnp.minimum(1.0, 1.0 / speed))
    xp = jnp.pad(x, (half, half + SINC_TAPS))
    n_blocks = -(-out_len // block)

    def one(b):
        m = b * block + jnp.arange(block)
        t = m.astype(jnp.float32) * speed
        base = jnp.floor(t).astype(jnp.int32)
        j = jnp.arange(-half + 1, half + 1)
        idx = base[:, None] + j[None, :]
        d = t[:, None] - idx.astype(jnp.float32)
        w = cut * jnp.sinc(cut * d) * (0.5 + 0.5 * jnp.cos(jnp.pi * d / half))
        taps = jnp.take(xp, jnp.clip(idx + half, 0, xp.shape[0] - 1))
        valid = (idx >= 0) & (idx < n)
        return jnp.sum(jnp.where(valid, taps * w, 0.0), axis=1) * (t < n)

    return jax.lax.map(one, jnp.arange(n_blocks)).reshape(-1)[:out_len]


def formant_warp(x: jax.Array, alpha: jax.Array, n_fft: int = 512, hop: int = 256,
                 lifter: int = 30) -> jax.Array:
    """JAX version of `synth.perturb.formant_warp` (same frames, envelope and overlap-add):
    x (L,) -> (L,), the cepstral envelope moved by alpha, harmonics and length kept."""
    n = x.shape[0]
    r = n_fft // hop
    pad = jnp.pad(x, (n_fft, n_fft + hop + (-(n + 2 * n_fft + hop)) % hop))
    blocks = pad.reshape(-1, hop)
    n_frames = blocks.shape[0] - r + 1
    frames = jnp.concatenate([blocks[j:j + n_frames] for j in range(r)], axis=1)
    win = jnp.asarray(np.hanning(n_fft + 1)[:-1], jnp.float32)
    spec = jnp.fft.rfft(frames * win, axis=-1)
    cep = jnp.fft.irfft(jnp.log(jnp.abs(spec) + 1e-6), n_fft, axis=-1)
    keep = (jnp.arange(n_fft) < lifter) | (jnp.arange(n_fft) > n_fft - lifter)
    env = jnp.fft.rfft(jnp.where(keep, cep, 0.0), axis=-1).real
    nb = env.shape[1]
    src = jnp.clip(jnp.arange(nb) / alpha, 0, nb - 1)
    lo = jnp.floor(src).astype(jnp.int32)
    hi = jnp.minimum(lo + 1, nb - 1)
    frac = src - lo
    warped = env[:, lo] * (1 - frac) + env[:, hi] * frac
    gain = jnp.exp(jnp.clip(warped - env, -6.0, 6.0))
    out_frames = jnp.fft.irfft(spec * gain, n_fft, axis=-1) * win
    # overlap-add: frame f's j-th hop lands on output hop f + j (pads, not scatters: XLA
    # would constant-fold a scatter of the window for minutes)
    out = sum(jnp.pad(out_frames[:, j * hop:(j + 1) * hop], ((j, r - 1 - j), (0, 0)))
              for j in range(r)).reshape(-1)
    # every output hop inside [n_fft, n_fft + n) is covered by all r frames: the window
    # power there is the same per-hop sum
    norm = sum(win[j * hop:(j + 1) * hop] ** 2 for j in range(r))
    norm = jnp.tile(norm, out.shape[0] // hop)
    y = out[n_fft:n_fft + n] / jnp.maximum(norm[n_fft:n_fft + n], 1e-6)
    return jnp.where(alpha == 1.0, x, y)


def impulse_response(key: jax.Array, rt60: jax.Array, wet: jax.Array) -> jax.Array:
    """(RIR_TAPS,) as `synth.room.impulse_response`: 1 at tap 0, then decaying noise from 3 ms
    to rt60 with energy wet**2."""
    t = jnp.arange(RIR_TAPS) / SR
    tail = jax.random.normal(key, (RIR_TAPS,)) * jnp.exp(-6.9078 * t / rt60)
    tail = jnp.where((t >= 0.003) & (t < rt60), tail, 0.0)
    tail = tail * wet / jnp.maximum(jnp.sqrt(jnp.sum(tail ** 2)), 1e-9)
    return tail.at[0].set(1.0)


def _bins(n_fft: int) -> jax.Array:
    return jnp.fft.rfftfreq(n_fft, 1.0 / SR).astype(jnp.float32)


def eq_curve(freqs: jax.Array, gains_db: jax.Array) -> jax.Array:
    """Amplitude per frequency: gains_db at log-spaced points 100 Hz..8 kHz, interpolated
    linearly in dB over log frequency (held beyond the ends)."""
    pts = jnp.log(jnp.geomspace(100.0, 8000.0, gains_db.shape[0]))
    db = jnp.interp(jnp.log(jnp.maximum(freqs, 1.0)), pts, gains_db)
    return 10.0 ** (db / 20.0)


def reverberate(x: jax.Array, rir: jax.Array) -> jax.Array:
    """x (L,) convolved with rir (RIR_TAPS,) by FFT, the first L samples."""
    nfft = x.shape[0] + RIR_TAPS
    return jnp.fft.irfft(jnp.fft.rfft(x, nfft) * jnp.fft.rfft(rir, nfft), nfft)[:x.shape[0]]


def add_noise(speech: jax.Array, n: jax.Array, key: jax.Array, colour: jax.Array,
              snr_db: jax.Array) -> jax.Array:
    """speech (L,) + Gaussian noise of power ~ f^-colour on [0, n), scaled so that the power
    ratio over [0, n) is snr_db exactly."""
    length = speech.shape[0]
    valid = jnp.arange(length) < n
    z = jax.random.normal(key, (length,)) * valid
    shape = jnp.maximum(_bins(length), 20.0) ** (-colour / 2)
    noise = jnp.fft.irfft(jnp.fft.rfft(z) * shape, length) * valid
    p_speech = jnp.sum(jnp.where(valid, speech, 0.0) ** 2)
    p_noise = jnp.maximum(jnp.sum(noise ** 2), 1e-20)
    return speech + jnp.sqrt(p_speech / p_noise / 10.0 ** (snr_db / 10.0)) * noise


def channel(x: jax.Array, gains_db: jax.Array, band: jax.Array, highpass: jax.Array,
            lowpass: jax.Array) -> jax.Array:
    """x (L,) through the EQ `eq_curve(gains_db)` and, where `band`, a brick-wall band-pass
    [highpass, lowpass] Hz (circular FFT filter over the padded length)."""
    length = x.shape[0]
    f = _bins(length)
    keep = (f >= highpass) & (f <= lowpass)
    h = eq_curve(f, gains_db) * jnp.where(band, keep, True)
    return jnp.fft.irfft(jnp.fft.rfft(x) * h, length)


def level(x: jax.Array, level_db: jax.Array) -> jax.Array:
    """x scaled to a peak of level_db dBFS, then clipped to [-1, 1]."""
    return jnp.clip(x * 10.0 ** (level_db / 20.0) / jnp.maximum(jnp.max(jnp.abs(x)), 1e-9),
                    -1.0, 1.0)


def room_and_channel(x: jax.Array, n: jax.Array, p: dict[str, jax.Array]) -> jax.Array:
    """Stages 3-7 on x (L,) valid in [0, n) -> (L,) (zero beyond n)."""
    valid = jnp.arange(x.shape[0]) < n
    rir = impulse_response(p["rir_key"], p["rt60"], p["wet"])
    y = jnp.where(p["reverb"], reverberate(x, rir), x) * valid
    y = jnp.where(p["noise"], add_noise(y, n, p["noise_key"], p["colour"], p["snr_db"]), y)
    y = channel(y, p["eq_db"], p["band"], p["highpass"], p["lowpass"]) * valid
    return level(y, p["level_db"])


# ------------------------------------------------------------------ the whole chain
@functools.partial(jax.jit, static_argnames=("cfg", "out_len"))
def augment_features(x: jax.Array, n: jax.Array, n_out: jax.Array, key: jax.Array,
                     cfg: AugmentConfig, out_len: int) -> jax.Array:
    """Dry audio x (L,) valid in [0, n) -> features (num_frames(out_len), 80) float32 of the
    augmented audio, valid rows [0, num_frames(n_out)); n_out = out_samples(n, speed)."""
    p = draw(key, cfg)
    y = resample_speed(x, n, p["speed"], out_len)
    y = formant_warp(y, p["formant"] / p["speed"]) * (jnp.arange(out_len) < n_out)
    y = room_and_channel(y, n_out, p)
    return features_jax(y, n_out)


@functools.partial(jax.jit, static_argnames=("cfg",))
def _speed(key: jax.Array, cfg: AugmentConfig) -> jax.Array:
    return draw(key, cfg)["speed"]


def augment_recording(audio: np.ndarray, seed: int, epoch: int, recording: int,
                      cfg: AugmentConfig) -> tuple[np.ndarray, float]:
    """Host entry: dry audio (samples,) float32 16 kHz -> (features (frames, 80) float16 of
    this epoch's augmented version, speed: word times scale by 1 / speed)."""
    n = len(audio)
    key = recording_key(seed, epoch, recording)
    speed = float(_speed(key, cfg))
    n_out = out_samples(n, speed)
    length = bucket(max(n, out_samples(n, min(cfg.speed))))
    x = np.zeros(length, np.float32)
    x[:n] = audio
    feats = augment_features(jnp.asarray(x), n, n_out, key, cfg, length)
    return np.asarray(feats[:num_frames(n_out)].astype(jnp.float16)), speed
