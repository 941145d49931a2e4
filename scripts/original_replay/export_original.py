"""Export a corpus of this project into the original's data format, so that both trainers
train on the same features and word timings (issue 21 item 4).

The source is what `make_source` reads for training (`cfg.data.kind`): a built TFDS dataset
(`--kind corpus`, from `lcasr-jax data build`) or a folder of recording JSONs + audio
(`--kind recordings`, features computed by this project's front end). Each example's stored
features (frames, 80) become `<out>/audio/<id>.spec.pt` (float32 (1, 80, frames): the stored
float16 values exactly, so both trainers read identical inputs); its words become
`<out>/txt/<id>.json` with times written as Python's shortest round-trip repr + "s" (the
original parses `float(t[:-1])`, giving back the very float64 this project uses), and
`<out>/audio_txt_pairs.json` lists them with duration = frames / 100 s (the original sorts
by it; its own pairs carry ffprobe's audio duration, within one hop of this).

    python scripts/original_replay/export_original.py --src DIR --out OUT \
        [--kind corpus|recordings] [--split train] [--limit N]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def open_source(src: str, kind: str, split: str) -> Any:
    """Random-access examples (len, [i] -> dict) of a project corpus."""
    if kind == "recordings":
        from lcasr_jax.data.sources.recordings import RecordingsSource

        return RecordingsSource.from_dir(src, split)
    from lcasr_jax.data.sources.tfds import open_split

    return open_split(src, split)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def words_of(example: dict[str, Any]) -> list[dict[str, Any]]:
    """The example's words in the original's transcript format (Google STT words)."""
    text = _text(example["text"]).split()
    start, end = np.asarray(example["word_start"]), np.asarray(example["word_end"])
    if not len(text) == len(start) == len(end):
        raise ValueError(f"{_text(example['id'])}: {len(text)} words but {len(start)} timings")
    return [{"startTime": f"{float(s)!r}s", "endTime": f"{float(e)!r}s", "word": w,
             "speakerTag": 1} for w, s, e in zip(text, start, end, strict=True)]


def export(source: Any, out: str | Path, limit: int | None = None) -> Path:
    """Write source's examples in the original's format under out; returns the pairs path."""
    import torch

    out = Path(out).resolve()
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / "txt").mkdir(parents=True, exist_ok=True)
    pairs = {}
    n = len(source) if limit is None else min(limit, len(source))
    for i in range(n):
        ex = source[i]
        rec_id = _text(ex["id"])
        if rec_id in pairs:
            raise ValueError(f"example {i}: duplicate id {rec_id!r}")
        feats = np.asarray(ex["features"])[: int(ex["num_frames"])].astype(np.float32)
        audio, txt = out / "audio" / f"{rec_id}.spec.pt", out / "txt" / f"{rec_id}.json"
        torch.save(torch.from_numpy(np.ascontiguousarray(feats.T))[None], audio)
        alt = {"transcript": _text(ex["text"]), "confidence": 1.0, "words": words_of(ex)}
        txt.write_text(json.dumps({"results": [{"alternatives": [alt]}]}))
        pairs[rec_id] = {"audio": str(audio), "txt": str(txt), "duration": feats.shape[0] / 100}
    path = out / "audio_txt_pairs.json"
    path.write_text(json.dumps(pairs, indent=1))
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", required=True, help="TFDS data_dir or folder of recording JSONs")
    ap.add_argument("--out", required=True)
    ap.add_argument("--kind", choices=("corpus", "recordings"), default="corpus")
    ap.add_argument("--split", default="train")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args(argv)
    try:
        path = export(open_source(args.src, args.kind, args.split), args.out, args.limit)
    except ValueError as e:
        sys.exit(f"export_original: {e}")
    print(path)


if __name__ == "__main__":
    main()
