"""Audio loading: any common format -> mono (left channel) float32 at 16 kHz.

wav/flac/ogg/mp3 and most other containers are decoded with soundfile (libsndfile >= 1.1
reads mp3). NIST SPHERE (.sph) is parsed here (pcm 8/16/24/32-bit and mu-law; shorten-
compressed files are rejected with a clear error: decompress them with `sph2pipe` first).
Like the original (`grab_left_channel`), multi-channel audio keeps channel 0 only.
Resampling is by default the original's torchaudio.transforms.Resample (Hann-windowed sinc,
6 zero crossings, rolloff 0.99) in numpy, for features identical to the original's on
non-16 kHz audio; `resampler="soxr"` (VHQ) is the alternative. The two differ mainly between
7.9 and 8 kHz (torchaudio's rolloff), i.e. in the top mel bins.
"""

from __future__ import annotations

import errno
import math
import os
import sys
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
RESAMPLERS = ("torchaudio", "soxr")
DEFAULT_RESAMPLER = "torchaudio"  # the original's (torchaudio.transforms.Resample defaults)
_CHUNK_ELEMENTS = 1 << 22

_SPHERE_MAGIC = b"NIST_1A"


class AudioError(ValueError):
    """Unreadable, empty or malformed audio; the message names the file."""


def _parse_sphere_header(path: Path, raw: bytes) -> tuple[dict[str, str | int | float], int]:
    """Return (fields, header_size) of a NIST SPHERE file."""
    lines = raw[:1024].split(b"\n")
    if len(lines) < 2 or lines[0].strip() != _SPHERE_MAGIC:
        raise AudioError(f"{path}: not a NIST SPHERE file (bad magic)")
    try:
        header_size = int(lines[1].strip())
    except ValueError:
        raise AudioError(f"{path}: bad SPHERE header size {lines[1]!r}") from None
    text = raw[:header_size].decode("latin-1").split("\n")[2:]
    fields: dict[str, str | int | float] = {}
    for line in text:
        parts = line.strip().split(None, 2)
        if not parts or parts[0] == "end_head":
            if parts:
                break
            continue
        if len(parts) < 3:
            continue
        name, typ, value = parts
        if typ == "-i":
            fields[name] = int(value)
        elif typ == "-r":
            fields[name] = float(value)
        else:  # -sN: string of N bytes
            n = int(typ[2:]) if typ.startswith("-s") and typ[2:].isdigit() else len(value)
            fields[name] = value[:n]
    return fields, header_size


def _ulaw_decode(codes: np.ndarray) -> np.ndarray:
    """G.711 mu-law bytes -> float32 in [-1, 1]."""
    u = ~codes.astype(np.uint8)
    sign = (u & 0x80) != 0
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    sample = magnitude - 0x84
    return (np.where(sign, -sample, sample) / 32768.0).astype(np.float32)


def read_sphere(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a NIST SPHERE file. Returns (audio (samples, channels) float32, sample_rate)."""
    path = Path(path)
    raw = path.read_bytes()
    fields, header_size = _parse_sphere_header(path, raw)
    coding = str(fields.get("sample_coding", "pcm")).lower()
    if "shorten" in coding or "wavpack" in coding or "shortpack" in coding:
        raise AudioError(f"{path}: SPHERE audio is compressed ({coding}); "
                         "decompress it first (e.g. `sph2pipe -f wav`)")
    rate = int(fields.get("sample_rate", 0))
    channels = int(fields.get("channel_count", 1))
    n_bytes = int(fields.get("sample_n_bytes", 1 if coding.startswith("ulaw") else 2))
    if rate <= 0 or channels <= 0:
        raise AudioError(f"{path}: SPHERE header lacks sample_rate/channel_count")
    body = raw[header_size:]
    if coding.startswith(("ulaw", "mu-law")):
        data = _ulaw_decode(np.frombuffer(body, np.uint8))
    elif coding.startswith("pcm"):
        order = str(fields.get("sample_byte_format", "01"))
        endian = ">" if order.startswith("10") or order == "1032" else "<"
        if n_bytes == 1:
            data = (np.frombuffer(body, np.int8).astype(np.float32)) / 128.0
        elif n_bytes in (2, 4):
            dt = np.dtype(f"{endian}i{n_bytes}")
            usable = len(body) - len(body) % n_bytes
            data = np.frombuffer(body[:usable], dt).astype(np.float64) / 2.0 ** (8 * n_bytes - 1)
            data = data.astype(np.float32)
        elif n_bytes == 3:
            b = np.frombuffer(body[: len(body) - len(body) % 3], np.uint8).reshape(-1, 3)
            if endian == ">":
                b = b[:, ::-1]
            v = b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8) | (
                b[:, 2].astype(np.int32) << 16)
            v = np.where(v >= 1 << 23, v - (1 << 24), v)
            data = (v / float(1 << 23)).astype(np.float32)
        else:
            raise AudioError(f"{path}: unsupported SPHERE sample_n_bytes {n_bytes}")
    else:
        raise AudioError(f"{path}: unsupported SPHERE sample_coding {coding!r}")
    count = int(fields.get("sample_count", len(data) // channels))
    data = data[: (min(count * channels, len(data)) // channels) * channels]
    return data.reshape(-1, channels), rate


def wav_data_bytes(path: Path) -> tuple[int, int] | None:
    """(bytes of audio data the header of a RIFF/WAVE file declares, bytes that follow the
    header in the file), or None for other files or a header without a data chunk."""
    import struct

    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"data":
                return size, path.stat().st_size - f.tell()
            f.seek(size + (size & 1), 1)


def _check_wav_length(path: Path, frames: int) -> None:
    """Say when a WAV file holds less audio than its header declares (cut off while it was
    copied or recorded): only the part present is used; 0 bytes declared is an error."""
    sizes = wav_data_bytes(path)
    if sizes is None:
        return
    declared, present = sizes
    if declared == 0:
        raise AudioError(f"{path}: the WAV header declares 0 bytes of audio data"
                         + (f" ({present:,} bytes follow it: a recording whose writer never "
                            "finished the header)" if present else " (an empty recording)"))
    if present < declared < 0xFFFFFFFF and frames:  # 0xFFFFFFFF: a streamed, unsized WAV
        print(f"warning: {path}: truncated: its header declares {declared:,} bytes of audio "
              f"data, the file holds {present:,}; using the {present / declared:.0%} present",
              file=sys.stderr)


def _read_any(path: Path) -> tuple[np.ndarray, int]:
    with open(path, "rb") as f:
        magic = f.read(7)
    if magic == _SPHERE_MAGIC:
        return read_sphere(path)
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(f"{path}: unreadable audio ({e})") from None
    return data, rate


def _torchaudio_kernel(orig: int, new: int) -> tuple[np.ndarray, int]:
    """torchaudio's sinc_interp_hann kernel (lowpass_filter_width 6, rolloff 0.99), computed
    as torchaudio.transforms.Resample does: float64 (the phase term in float32), cached as
    float32. orig/new are reduced by their gcd. Returns (kernel (new, taps), width)."""
    lowpass, base = 6, min(orig, new) * 0.99
    width = math.ceil(lowpass * orig / base)
    idx = np.arange(-width, width + orig, dtype=np.float64)[None] / orig
    phase = np.arange(0, -new, -1).astype(np.float32) / np.float32(new)
    t = np.clip((phase.astype(np.float64)[:, None] + idx) * base, -lowpass, lowpass)
    window = np.cos(t * math.pi / lowpass / 2) ** 2
    t *= math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        kernel = np.where(t == 0, 1.0, np.sin(t) / t)
    return (kernel * window * (base / orig)).astype(np.float32), width


def resample_torchaudio(audio: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """torchaudio.transforms.Resample(orig_sr, new_sr) (the original's resampler) in numpy.

    audio: (samples,) float32 -> (ceil(samples * new / orig),) float32.
    """
    if orig_sr == new_sr:
        return np.ascontiguousarray(audio, np.float32)
    g = math.gcd(int(orig_sr), int(new_sr))
    orig, new = int(orig_sr) // g, int(new_sr) // g
    kernel, width = _torchaudio_kernel(orig, new)
    x = np.pad(np.asarray(audio, np.float32), (width, width + orig))
    taps = kernel.shape[1]
    blocks = (len(x) - taps) // orig + 1
    frames = np.lib.stride_tricks.as_strided(
        x, (blocks, taps), (x.strides[0] * orig, x.strides[0]), writeable=False)
    out = np.empty((blocks, new), np.float32)
    step = max(1, _CHUNK_ELEMENTS // taps)  # bounds the copy matmul makes of the frames
    for b in range(0, blocks, step):
        np.matmul(frames[b:b + step], kernel.T, out=out[b:b + step])
    return out.reshape(-1)[: math.ceil(new * len(audio) / orig)]


def resample(audio: np.ndarray, orig_sr: int, new_sr: int = SAMPLE_RATE,
             method: str = DEFAULT_RESAMPLER) -> np.ndarray:
    """Resample (samples,) float32 audio: 'torchaudio' (the original's) or 'soxr' (VHQ)."""
    if method == "torchaudio":
        return resample_torchaudio(audio, orig_sr, new_sr)
    if method != "soxr":
        raise ValueError(f"unknown resampler {method!r} ({' or '.join(RESAMPLERS)})")
    if orig_sr == new_sr:
        return np.ascontiguousarray(audio, np.float32)
    import soxr

    return soxr.resample(np.ascontiguousarray(audio, np.float32), orig_sr, new_sr,
                         quality="VHQ").astype(np.float32, copy=False)


def check_audio_path(path: Path) -> None:
    """Raise AudioError naming `path` if it is a folder, missing, a broken symbolic link or
    a loop of them."""
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, expected an audio file")
    if path.is_file():
        return
    if path.is_symlink():
        try:
            os.stat(path)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise AudioError(f"{path}: a loop of symbolic links (it never reaches a "
                                 "file)") from None
        raise AudioError(f"{path}: broken symbolic link (to {os.readlink(path)}, which does "
                         "not exist)")
    raise AudioError(f"{path}: audio file not found")


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE,
               resampler: str = DEFAULT_RESAMPLER) -> np.ndarray:
    """Load an audio file as (samples,) float32 in [-1, 1]: left channel, at `sample_rate` Hz.

    resampler: 'torchaudio' (default: the original's chain) or 'soxr'.

    Raises AudioError (naming the file) for missing, unreadable, empty or non-finite audio.
    """
    path = Path(path)
    check_audio_path(path)
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file")
    data, rate = _read_any(path)
    _check_wav_length(path, data.shape[0])
    if data.size == 0 or data.shape[0] == 0:
        raise AudioError(f"{path}: audio has no samples")
    if rate <= 0:
        raise AudioError(f"{path}: invalid sample rate {rate}")
    mono = np.ascontiguousarray(data[:, 0], np.float32)
    if not np.isfinite(mono).all():
        raise AudioError(f"{path}: audio contains NaN or inf samples")
    return resample(mono, rate, sample_rate, resampler)


def write_sphere(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit little-endian pcm NIST SPHERE (for tests and conversions).

    audio: (samples,) or (samples, channels) float in [-1, 1].
    """
    a = np.asarray(audio, np.float64)
    a = a[:, None] if a.ndim == 1 else a
    pcm = np.clip(np.round(a * 32768.0), -32768, 32767).astype("<i2")
    fields = [
        f"sample_count -i {a.shape[0]}",
        f"sample_rate -i {sample_rate}",
        f"channel_count -i {a.shape[1]}",
        "sample_n_bytes -i 2",
        "sample_byte_format -s2 01",
        "sample_coding -s3 pcm",
        "end_head",
    ]
    header = ("NIST_1A\n   1024\n" + "\n".join(fields) + "\n").encode()
    header = header + b" " * (1024 - len(header))
    tmp = Path(str(path) + ".tmp")
    tmp.write_bytes(header + pcm.tobytes())
    tmp.replace(path)
