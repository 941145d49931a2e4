"""A small deterministic corpus for replaying the original's training, in its data format.

`recordings(seed)` yields the recordings (pure numpy, no torch): features (80, T) float32,
smooth log-mel-like and normalised per mel bin as the original's `to_spectogram` does, and
word timings in integer milliseconds. `write_original_format(out)` writes them as the
original reads them:

- `<out>/audio/<id>.spec.pt`: a float32 tensor (1, 80, T) (`torch.load`, then `() f t -> t f`);
- `<out>/txt/<id>.json`: Google-STT-style `{"results": [{"alternatives": [{"transcript",
  "words": [{"startTime": "1.500s", "endTime": "1.800s", "word", "speakerTag"}]}]}]}`;
  the original reads `results[-1].alternatives[0].words` and parses the times with `[:-1]`;
- `<out>/audio_txt_pairs.json`: `{id: {"audio": path, "txt": path, "duration": seconds}}`.

Built in (checked by the replay's dump, see tests/fixtures/original_replay/README.md):
- most recordings have no word before 1.5 s, so a batch made only of them has no text in
  its first 128-frame chunk (the original skips that chunk);
- recording `INFEASIBLE_ID` has a burst of 40 words inside one 128-frame chunk
  (5.13-6.39 s): far more tokens than the 16 output frames, an infinite CTC loss.

    python scripts/original_replay/make_corpus.py --out DIR [--seed 0] [--n 20]
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

N_MELS = 80
FRAMES_PER_S = 100  # hop 160 at 16 kHz, the original's total_seconds
DEFAULT_SEED = 0
DEFAULT_N = 20
INFEASIBLE_ID = "rec07"
LATE_START_MS = 1500  # recordings whose index is not a multiple of 4 start speaking here
EARLY_START_MS = 300

WORDS = (
    "the", "of", "and", "to", "in", "is", "was", "that", "for", "it", "with", "as", "his",
    "on", "be", "at", "by", "had", "not", "are", "but", "from", "or", "have", "an", "they",
    "which", "one", "you", "were", "her", "all", "she", "there", "would", "their", "we", "him",
    "been", "has", "when", "who", "will", "more", "no", "if", "out", "so", "said", "what",
    "up", "its", "about", "into", "than", "them", "can", "only", "other", "new", "some",
    "could", "time", "these", "two", "may", "then", "do", "first", "any", "my", "now", "such",
    "like", "our", "over", "man", "me", "even", "most", "made", "after", "also", "did", "many",
    "before", "must", "through", "back", "years", "where", "much", "your", "way", "well",
    "down", "should", "because", "each", "just", "those", "people", "how", "too", "little",
    "state", "good", "very", "make", "world", "still", "own", "see", "men", "work", "long",
    "get", "here", "between", "both", "life", "being", "under", "never", "day", "same",
    "another", "know", "while", "last", "might", "us", "great", "old", "year", "off", "come",
    "since", "against", "go", "came", "right", "used", "take", "three", "small", "house",
    "water", "light", "morning", "garden", "letter", "window", "river", "music", "country",
    "family", "evening", "summer", "winter", "question", "answer", "reason", "story", "friend",
    "mother", "father", "sister", "brother", "doctor", "market", "village",
)
BURST_WORDS = (
    "red", "blue", "green", "black", "white", "brown", "grey", "pink", "gold", "silver",
    "apple", "bread", "cheese", "honey", "lemon", "orange", "peach", "pear", "plum", "grape",
    "cat", "dog", "horse", "sheep", "goat", "mouse", "bird", "fish", "frog", "duck", "north",
    "south", "east", "west", "spring", "autumn", "monday", "tuesday", "friday", "sunday",
)


@dataclass(frozen=True)
class Recording:
    """One recording: features (80, T) float32, 100 frames/s; words (word, start_ms, end_ms)."""

    rec_id: str
    features: np.ndarray
    words: tuple[tuple[str, int, int], ...]

    @property
    def frames(self) -> int:
        return int(self.features.shape[1])


def _lengths(rng: np.random.Generator, n: int) -> list[int]:
    """n distinct odd frame counts in 300..2500 (odd: never a multiple of a chunk size)."""
    pool = np.arange(301, 2500, 2)
    return [int(t) for t in rng.choice(pool, size=n, replace=False)]


def _features(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Smooth random (80, frames) float32, each mel bin normalised to mean 0, std 1 over time."""
    knots = max(frames // 8, 2) + 1
    coarse = rng.standard_normal((N_MELS, knots)).cumsum(axis=1) * 0.3
    coarse += np.linspace(2.0, -2.0, N_MELS)[:, None]  # a spectral tilt, like log-mel energies
    x = np.interp(np.arange(frames), np.linspace(0, frames - 1, knots), np.arange(knots))
    lo = np.floor(x).astype(int).clip(0, knots - 2)
    w = (x - lo)[None, :]
    spec = coarse[:, lo] * (1 - w) + coarse[:, lo + 1] * w
    spec += 0.1 * rng.standard_normal((N_MELS, frames))
    spec = (spec - spec.mean(-1, keepdims=True)) / spec.std(-1, keepdims=True, ddof=1)
    return spec.astype(np.float32)


def _words(rng: np.random.Generator, frames: int, start_ms: int) -> list[tuple[str, int, int]]:
    """Words of 250-600 ms with gaps of 50-400 ms from start_ms to 100 ms before the end."""
    end_limit = frames * 1000 // FRAMES_PER_S - 100
    out, t = [], start_ms
    while True:
        dur = int(rng.integers(250, 601))
        if t + dur > end_limit:
            return out
        out.append((WORDS[int(rng.integers(len(WORDS)))], t, t + dur))
        t += dur + int(rng.integers(50, 401))


def _burst() -> list[tuple[str, int, int]]:
    """40 distinct words of 30 ms each, 1 ms apart, inside 5.130-6.390 s."""
    return [(w, 5130 + 31 * i, 5130 + 31 * i + 30) for i, w in enumerate(BURST_WORDS[:40])]


def recordings(seed: int = DEFAULT_SEED, n: int = DEFAULT_N) -> list[Recording]:
    """The corpus, deterministically from `seed` (numpy PCG64); ids rec00.. in order."""
    rng = np.random.Generator(np.random.PCG64(seed))
    lengths = _lengths(rng, n)
    infeasible = int(INFEASIBLE_ID[3:])
    if n > infeasible:  # the burst needs >= 6.5 s: give that recording the longest length
        longest = int(np.argmax(lengths))
        lengths[infeasible], lengths[longest] = lengths[longest], lengths[infeasible]
    out = []
    for i, frames in enumerate(lengths):
        rec_id = f"rec{i:02d}"
        feats = _features(rng, frames)
        words = _words(rng, frames, EARLY_START_MS if i % 4 == 0 else LATE_START_MS)
        if rec_id == INFEASIBLE_ID:
            words = sorted([w for w in words if w[2] <= 5130 or w[1] >= 6390] + _burst(),
                           key=lambda w: w[1])
        out.append(Recording(rec_id, feats, tuple(words)))
    return out


def time_string(ms: int) -> str:
    """Milliseconds as the transcript's time string, e.g. 1500 -> '1.500s'."""
    return f"{ms // 1000}.{ms % 1000:03d}s"


def transcript_json(rec: Recording) -> dict:
    """The original's transcript JSON for one recording."""
    words = [{"startTime": time_string(s), "endTime": time_string(e), "word": w, "speakerTag": 1}
             for w, s, e in rec.words]
    alt = {"transcript": " ".join(w for w, _, _ in rec.words), "confidence": 1.0, "words": words}
    return {"results": [{"alternatives": [alt]}]}


def write_original_format(out: str | Path, recs: list[Recording]) -> Path:
    """Write recs in the original's format under out; returns the audio_txt_pairs.json path."""
    import torch  # only this writer needs torch

    out = Path(out).resolve()
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / "txt").mkdir(parents=True, exist_ok=True)
    pairs = {}
    for rec in recs:
        audio, txt = out / "audio" / f"{rec.rec_id}.spec.pt", out / "txt" / f"{rec.rec_id}.json"
        torch.save(torch.from_numpy(rec.features)[None], audio)
        txt.write_text(json.dumps(transcript_json(rec)))
        pairs[rec.rec_id] = {"audio": str(audio), "txt": str(txt),
                             "duration": rec.frames / FRAMES_PER_S}
    path = out / "audio_txt_pairs.json"
    path.write_text(json.dumps(pairs, indent=1))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--n", type=int, default=DEFAULT_N)
    args = ap.parse_args()
    print(write_original_format(args.out, recordings(args.seed, args.n)))


if __name__ == "__main__":
    main()
