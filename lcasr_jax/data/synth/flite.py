"""flite through libflite (ctypes) with per-word times from the utterance's relations.

Word start = end of the segment before the word's first segment; word end = end of its
last segment (seconds in the utterance, converted to samples at the voice's rate:
16 kHz, kal 8 kHz).
"""

from __future__ import annotations

import ctypes

import numpy as np

from .lib import load_library

_START = b"R:SylStructure.daughter1.daughter1.R:Segment.p.end"
_END = b"R:SylStructure.daughtern.daughtern.R:Segment.end"


class _Wave(ctypes.Structure):
    _fields_ = [("type", ctypes.c_char_p), ("sample_rate", ctypes.c_int),
                ("num_samples", ctypes.c_int), ("num_channels", ctypes.c_int),
                ("samples", ctypes.POINTER(ctypes.c_short))]


class _Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("features", ctypes.c_void_p)]


class Flite:
    """libflite with lazily registered voices (kal, kal16, rms, awb)."""

    def __init__(self) -> None:
        lib = load_library("libflite.so.1", "libflite1")
        lib.flite_init()
        vp = ctypes.c_void_p
        for fn, res, args in (
            ("flite_synth_text", vp, [ctypes.c_char_p, vp]),
            ("utt_wave", ctypes.POINTER(_Wave), [vp]),
            ("utt_relation", vp, [vp, ctypes.c_char_p]),
            ("relation_head", vp, [vp]),
            ("item_next", vp, [vp]),
            ("item_feat_string", ctypes.c_char_p, [vp, ctypes.c_char_p]),
            ("ffeature_float", ctypes.c_float, [vp, ctypes.c_char_p]),
            ("delete_utterance", None, [vp]),
            ("flite_feat_set_float", None, [vp, ctypes.c_char_p, ctypes.c_float]),
            ("get_param_float", ctypes.c_float, [vp, ctypes.c_char_p, ctypes.c_float]),
        ):
            getattr(lib, fn).restype = res
            getattr(lib, fn).argtypes = args
        self.lib = lib
        self._voices: dict[str, tuple[int, float]] = {}
        self._voice = None

    def set_voice(self, name: str, stretch: float, pitch: float) -> None:
        """name in kal, kal16, rms, awb; stretch > 1 is slower; pitch scales the mean F0."""
        if name not in self._voices:
            vlib = load_library(f"libflite_cmu_us_{name}.so.1", "libflite1")
            reg = getattr(vlib, f"register_cmu_us_{name}")
            reg.restype, reg.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
            v = reg(None)
            if not v:
                raise RuntimeError(f"flite: cannot register voice {name}")
            feats = ctypes.cast(v, ctypes.POINTER(_Voice)).contents.features
            self._voices[name] = (v, self.lib.get_param_float(feats, b"int_f0_target_mean", 100.0))
        v, f0 = self._voices[name]
        feats = ctypes.cast(v, ctypes.POINTER(_Voice)).contents.features
        self.lib.flite_feat_set_float(feats, b"duration_stretch", float(stretch))
        self.lib.flite_feat_set_float(feats, b"int_f0_target_mean", float(f0 * pitch))
        self.lib.flite_feat_set_float(feats, b"f0_shift", float(pitch))
        self._voice = v

    def synth(self, text: str) -> tuple[np.ndarray, int, list[str], np.ndarray]:
        """Speak `text`: (audio float32, rate Hz, words as flite read them, (words, 2) samples)."""
        lib = self.lib
        utt = lib.flite_synth_text(text.encode("ascii"), self._voice)
        if not utt:
            raise RuntimeError(f"flite: synthesis failed for {text[:40]!r}")
        try:
            w = lib.utt_wave(utt).contents
            sr = w.sample_rate
            audio = np.ctypeslib.as_array(w.samples, shape=(w.num_samples,)).astype(np.float32)
            audio /= 32768.0
            words, times = [], []
            item = lib.relation_head(lib.utt_relation(utt, b"Word"))
            while item:
                words.append(lib.item_feat_string(item, b"name").decode("ascii", "replace"))
                times.append((lib.ffeature_float(item, _START), lib.ffeature_float(item, _END)))
                item = lib.item_next(item)
        finally:
            lib.delete_utterance(utt)
        t = np.round(np.array(times, np.float64).reshape(-1, 2) * sr).astype(np.int64)
        return audio, sr, words, np.clip(t, 0, len(audio))
