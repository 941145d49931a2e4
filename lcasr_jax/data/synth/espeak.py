"""espeak-ng through libespeak-ng (ctypes, synchronous mode) with per-word times.

Times are in samples at the engine's native rate (22050 Hz). A word event gives the
start; the end is the next pause phoneme or the next word's start. espeak can merge
short word pairs ("of the") into one event: such spans are split at phoneme boundaries.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

from .lib import load_library

_EVENT_WORD, _EVENT_END, _EVENT_MSG_TERMINATED, _EVENT_PHONEME = 1, 5, 6, 7
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS, _INIT_DONT_EXIT = 0x0001, 0x8000
_CHARS_UTF8 = 1


class _Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


def espeak_data_dir() -> str | None:
    """Folder holding `espeak-ng-data` ($ESPEAK_DATA_PATH, else the library default)."""
    return os.environ.get("ESPEAK_DATA_PATH") or None


class Espeak:
    """One libespeak-ng instance per process (the library keeps global state)."""

    def __init__(self) -> None:
        self.lib = load_library("libespeak-ng.so.1", "espeak-ng")
        path = espeak_data_dir()
        rate = self.lib.espeak_Initialize(_OUTPUT_SYNCHRONOUS, 2000,
                                          path.encode() if path else None,
                                          _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT)
        if rate <= 0:
            raise RuntimeError(f"espeak-ng: initialisation failed (data path {path!r})")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int, bytes]] = []
        self._count = 0
        self._cb = _CALLBACK(self._callback)
        self.lib.espeak_SetSynthCallback(self._cb)
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint,
                                          ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                          ctypes.c_void_p, ctypes.c_void_p]

    def _callback(self, wav, n, events) -> int:
        i = 0
        while events[i].type != 0:
            e = events[i]
            if e.type in (_EVENT_WORD, _EVENT_PHONEME, _EVENT_END):
                name = e.id.string if e.type == _EVENT_PHONEME else b""
                pos = int(round(e.audio_position * self.sample_rate / 1000.0))
                self._events.append((e.type, e.text_position, e.length, pos, name))
            i += 1
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            self._count += n
        return 0

    def set_voice(self, name: str, rate: int, pitch: int, pitch_range: int = 50) -> None:
        """name like 'en-us+m3' (accent+variant); rate in words/min, pitch 0-100."""
        if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise ValueError(f"espeak-ng: unknown voice {name!r}")
        for par, val in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range), (_VOLUME, 100)):
            self.lib.espeak_SetParameter(par, int(val), 0)

    def synth(self, text: str, spans: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        """Speak `text` (ASCII); spans are the (start, end) char offsets of its words.

        Returns (audio (samples,) float32 in [-1, 1], times (words, 2) int64 samples).
        """
        self._chunks, self._events, self._count = [], [], 0
        data = text.encode("ascii")
        rc = self.lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
        if rc != 0:
            raise RuntimeError(f"espeak-ng: synthesis failed ({rc})")
        audio = (np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16))
        audio = audio.astype(np.float32) / 32768.0
        return audio, word_times(self._events, spans, len(audio))


def word_times(events, spans, n_samples: int) -> np.ndarray:
    """Map word/phoneme events to (words, 2) sample times for the given char spans."""
    out = np.zeros((len(spans), 2), np.int64)
    # Zero-length word events (espeak emits them at clause ends, pointing backwards) and
    # any event not after the previous one in the text are dropped.
    words: list[tuple[int, int]] = []
    for t, tp, ln, pos, _ in events:
        if t == _EVENT_WORD and ln > 0 and (not words or tp - 1 > words[-1][0]):
            words.append((tp - 1, pos))
    if not words or not spans:
        return out
    phones = [(pos, name) for t, _, _, pos, name in events if t == _EVENT_PHONEME]
    ppos = np.array([p for p, _ in phones] + [n_samples], np.int64)
    pause = np.array([n.startswith(b"_") for _, n in phones] + [True])
    ev_char = np.array([w[0] for w in words], np.int64)
    ev_pos = np.array([w[1] for w in words] + [n_samples], np.int64)
    # The event that speaks a span: the last one starting at or before the span's start.
    owner = np.maximum(np.searchsorted(ev_char, [a for a, _ in spans], side="right") - 1, 0)
    for j in np.unique(owner):
        members = np.nonzero(owner == j)[0]
        s0, s1 = int(ev_pos[j]), int(max(ev_pos[j + 1], ev_pos[j]))
        # End: the first pause phoneme after the start, else the next word's start.
        lo = int(np.searchsorted(ppos, s0, side="right"))
        hi = int(np.searchsorted(ppos, s1, side="left"))
        pz = np.nonzero(pause[lo:hi])[0]
        e1 = int(ppos[lo + pz[0]]) if len(pz) else s1
        if len(members) == 1:
            out[members[0]] = (s0, e1)
            continue
        # Merged event ("of the"): split by characters, snapped to phoneme boundaries.
        lens = np.array([spans[i][1] - spans[i][0] for i in members], float)
        cuts = s0 + (e1 - s0) * np.cumsum(lens)[:-1] / lens.sum()
        inner = ppos[lo:hi][(ppos[lo:hi] > s0) & (ppos[lo:hi] < e1)]
        if len(inner):
            cuts = inner[np.abs(inner[None, :] - cuts[:, None]).argmin(1)]
        bounds = np.concatenate([[s0], np.maximum.accumulate(cuts), [e1]]).astype(np.int64)
        out[members, 0], out[members, 1] = bounds[:-1], bounds[1:]
    return out
