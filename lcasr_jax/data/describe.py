"""A short summary of a recording JSON or a built dataset folder (`lcasr-jax data inspect`)."""

from __future__ import annotations

import json
from pathlib import Path

from lcasr_jax.data.alignments import read_recording
from lcasr_jax.data.sources.tfds import open_split


def describe(path: Path, limit: int = 1000) -> str:
    """A recording JSON: its id, audio, duration, words and speakers (JSON); a built TFDS
    dataset: per split, recordings, hours and longest of the first `limit`, and an example."""
    if path.suffix == ".json":
        rec = read_recording(path, check_audio=True)
        w = rec.words
        return json.dumps({"id": rec.id, "audio": str(rec.audio), "duration_s": rec.duration,
                           "words": len(w), "speakers": sorted({s for s in w.speaker or () if s}),
                           "first": " ".join(w.text[:12])}, indent=1)
    import tensorflow_datasets as tfds  # heavy and optional: only for dataset folders

    lines = []
    info = tfds.builder_from_directory(str(path)).info
    for split in info.splits:
        src = open_split(path, split)
        frames = [int(src[i]["num_frames"]) for i in range(min(len(src), limit))]
        hours = sum(frames) / 360000
        lines.append(f"{split}: {len(src)} recordings; first {len(frames)}: {hours:.2f} h, "
                     f"longest {max(frames) / 6000:.1f} min")
        ex = {k: v.decode() if isinstance(v, bytes) else v for k, v in src[0].items()}
        text = ex["text"]
        lines.append(f"  e.g. {ex['id']}: features {ex['features'].shape} "
                     f"{ex['features'].dtype}, {len(ex['word_start'])} words, "
                     f"{len(ex['token_ids'])} tokens: {text[:80]!r}")
    return "\n".join(lines)
