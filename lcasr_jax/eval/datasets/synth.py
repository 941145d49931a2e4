"""The synthetic corpus of `lcasr-jax data synth`: per recording `<id>.flac` and `<id>.json`
= {"audio", "sample_rate", "duration", "words": [{"word", "start", "end", "speaker"}]}
(plus a manifest.json, not needed here). `data_dir` or `data_dir/<split>` holds them.
The reference is the words joined by spaces."""

from __future__ import annotations

from pathlib import Path

from lcasr_jax.eval.datasets.base import DatasetError, Recording, check_rate, read_json
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


def read(data_dir: Path, split: str = "test") -> list[Recording]:
    data_dir = Path(data_dir)
    root = data_dir / split if (data_dir / split).is_dir() else data_dir
    metas = _listed(root) or sorted(p for p in root.glob("*.json") if p.name != "manifest.json")
    if not metas:
        raise DatasetError(f"{root}: no synthetic-corpus recordings (<id>.json + audio)")
    recordings = []
    for meta_path in metas:
        meta = read_json(meta_path)
        if not isinstance(meta, dict) or not isinstance(meta.get("words"), list):
            raise DatasetError(f"{meta_path}: expected an object with a 'words' list")
        audio = root / str(meta.get("audio", meta_path.stem + ".flac"))
        if not audio.is_file():
            raise DatasetError(f"{audio}: audio file not found ({meta_path.name})")
        check_rate(audio, meta.get("sample_rate"), meta_path)
        try:
            raw = " ".join(str(w["word"]) for w in meta["words"])
        except (TypeError, KeyError):
            raise DatasetError(f"{meta_path}: every word needs a 'word' field") from None
        rid = str(meta.get("id", meta_path.stem))
        recordings.append(Recording(rid, audio, normalize_reference(raw), raw,
                                    words=tuple(meta["words"])))
    return recordings
