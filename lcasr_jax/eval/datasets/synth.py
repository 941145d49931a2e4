"""The synthetic corpus of `lcasr-jax data synth`: per recording `<id>.flac` and `<id>.json`
in the recording format (`lcasr_jax.data.alignments`, read through its codec), plus a
manifest.json giving their order. `data_dir` or `data_dir/<split>` holds them.
The reference is the words joined by spaces."""

from __future__ import annotations

from pathlib import Path

from lcasr_jax.data.alignments import AlignmentError, read_recording
from lcasr_jax.eval.datasets.base import DatasetError, EvalRecording, check_rate, read_json
from lcasr_jax.eval.normalize import normalize_reference


def _listed(root: Path) -> list[Path]:
    """Word files in manifest order, when manifest.json lists them."""
    if not (root / "manifest.json").is_file():
        return []
    manifest = read_json(root / "manifest.json")
    entries = manifest.get("recordings") if isinstance(manifest, dict) else None
    if not isinstance(entries, list):
        return []
    return [root / str(e.get("words", f"{e['id']}.json")) for e in entries
            if isinstance(e, dict) and ("words" in e or "id" in e)]


def read(data_dir: Path, split: str = "test") -> list[EvalRecording]:
    data_dir = Path(data_dir)
    root = data_dir / split if (data_dir / split).is_dir() else data_dir
    metas = _listed(root) or sorted(p for p in root.glob("*.json") if p.name != "manifest.json")
    if not metas:
        raise DatasetError(f"{root}: no synthetic-corpus recordings (<id>.json + audio)")
    recordings = []
    for meta_path in metas:
        try:
            rec = read_recording(meta_path)
        except AlignmentError as e:
            raise DatasetError(str(e)) from None
        if not rec.audio.is_file():
            raise DatasetError(f"{rec.audio}: audio file not found ({meta_path.name})")
        check_rate(rec.audio, rec.meta.get("sample_rate"), meta_path)
        raw = " ".join(rec.words.text)
        recordings.append(EvalRecording(rec.id, rec.audio, normalize_reference(raw), raw,
                                    words=tuple(rec.words.to_dicts())))
    return recordings
