"""A recording as one dataset example: what the TFDS builder stores, the recordings source
yields and the feature cache keeps (the fields the data loader reads, plus id and text)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lcasr_jax.data.alignments import read_recording, validate_words
from lcasr_jax.data.audio import load_audio
from lcasr_jax.data.chunking import word_tokens
from lcasr_jax.data.features import compute_features


def encode_recording(json_path: str | Path, resampler: str = "soxr") -> dict[str, Any]:
    """Recording JSON -> one dataset example (audio loaded, features computed, tokenised).

    Fields: id, features (frames, 80) float16, num_frames, word_start / word_end (words,)
    float64 seconds, token_offsets (words + 1,) int64, token_ids (tokens,) int32, text.
    """

    rec = read_recording(json_path)
    audio = load_audio(rec.audio, resampler=resampler)
    duration = len(audio) / 16000
    words = validate_words(rec.words, duration, source=str(json_path))
    feats = compute_features(audio)
    offsets, ids = word_tokens(words.text)
    return {
        "id": rec.id,
        "features": np.ascontiguousarray(feats.T).astype(np.float16),
        "num_frames": np.int32(feats.shape[1]),
        "word_start": words.start.astype(np.float64),
        "word_end": words.end.astype(np.float64),
        "token_offsets": offsets.astype(np.int64),
        "token_ids": ids.astype(np.int32),
        "text": " ".join(words.text),
    }


def example_from_words(rec_id: str, features: np.ndarray, words: Any,
                       tokenizer: Any = None) -> dict[str, Any]:
    """A dataset example from features (frames, 80) and `alignments.Words` (taken as they
    are: no repairs, as the original reads its transcripts; starts must be sorted)."""
    offsets, ids = word_tokens(list(words.text), tokenizer)
    return {
        "id": rec_id,
        "features": np.ascontiguousarray(features),
        "num_frames": np.int32(features.shape[0]),
        "word_start": np.asarray(words.start, np.float64),
        "word_end": np.asarray(words.end, np.float64),
        "token_offsets": offsets.astype(np.int64),
        "token_ids": ids.astype(np.int32),
        "text": " ".join(words.text),
    }
