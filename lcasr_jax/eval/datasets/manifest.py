"""Generic manifest: a JSON list (or JSON lines) of {"audio": path, "text": reference,
"id": optional, "words": optional [{"word", "start", "end"}]}; with no "text" the words
are joined. Audio paths are relative to the manifest's directory.

An optional "sample_rate" is checked against the audio file.

`data_dir` may be the manifest file itself or a directory holding `<split>.jsonl`,
`<split>.json`, `manifest.jsonl` or `manifest.json` (first found)."""

from __future__ import annotations

import json
from pathlib import Path

from lcasr_jax.eval.datasets.base import (
    DatasetError,
    EvalRecording,
    check_rate,
    read_json,
    read_text,
)
from lcasr_jax.eval.normalize import normalize_reference


def _entries(path: Path) -> list:
    if path.suffix == ".jsonl":
        out = []
        for n, line in enumerate(read_text(path).splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DatasetError(f"{path}:{n}: not valid JSON ({e})") from None
        return out
    data = read_json(path)
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of recordings")
    return data


def find_manifest(data_dir: Path, split: str) -> Path:
    if data_dir.is_file():
        return data_dir
    for name in (f"{split}.jsonl", f"{split}.json", "manifest.jsonl", "manifest.json"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise DatasetError(f"{data_dir}: no manifest ({split}.jsonl/.json or manifest.jsonl/.json)")


def recording_from_entry(entry, base: Path, where: str) -> EvalRecording:
    if not isinstance(entry, dict) or "audio" not in entry:
        raise DatasetError(f"{where}: entry needs an 'audio' path")
    words = entry.get("words")
    if "text" in entry:
        raw = entry["text"]
        if not isinstance(raw, str):
            raise DatasetError(f"{where}: 'text' must be a string (got {json.dumps(raw)})")
    elif isinstance(words, list):
        try:
            raw = " ".join(str(w["word"]) for w in words)
        except (KeyError, TypeError):
            raise DatasetError(f"{where}: every word needs a 'word' field") from None
    else:
        raise DatasetError(f"{where}: entry needs 'text' or 'words'")
    reference = normalize_reference(raw)
    if not reference.strip():
        raise DatasetError(f"{where}: empty reference text ({json.dumps(raw)}): WER needs "
                           "at least one reference word")
    audio = base / str(entry["audio"])
    if audio.is_dir():
        raise DatasetError(f"{audio}: is a directory, expected an audio file ({where})")
    if not audio.is_file():
        raise DatasetError(f"{audio}: audio file not found ({where})")
    check_rate(audio, entry.get("sample_rate"), where)
    rid = str(entry.get("id", audio.stem))
    return EvalRecording(rid, audio, reference, raw,
                     words=tuple(words) if isinstance(words, list) else None)


def read(data_dir: Path, split: str = "test") -> list[EvalRecording]:
    path = find_manifest(Path(data_dir), split)
    entries = _entries(path)
    if not entries:
        raise DatasetError(f"{path}: manifest has no recordings")
    return [recording_from_entry(e, path.parent, f"{path} entry {i}")
            for i, e in enumerate(entries)]
