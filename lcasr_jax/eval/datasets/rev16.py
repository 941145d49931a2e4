"""Rev16 (Whisper's long-form subset of the Rev podcast benchmark): `test.txt` (ids
separated by whitespace), `audio/<id>.mp3`, `transcripts/<id>.txt` (`eval/rev16/run.py`)."""

from __future__ import annotations

from pathlib import Path

from lcasr_jax.eval.datasets.base import DatasetError, EvalRecording, check_split, read_text
from lcasr_jax.eval.normalize import normalize_reference


def read(data_dir: Path, split: str = "test") -> list[EvalRecording]:
    check_split("rev16", split, ("test",))
    data_dir = Path(data_dir)
    ids = read_text(data_dir / "test.txt").split()
    if not ids:
        raise DatasetError(f"{data_dir / 'test.txt'}: no recording ids")
    recordings = []
    for rid in ids:
        audio = data_dir / "audio" / f"{rid}.mp3"
        if not audio.is_file():
            raise DatasetError(f"{audio}: audio file not found")
        raw = read_text(data_dir / "transcripts" / f"{rid}.txt").strip()
        recordings.append(EvalRecording(rid, audio, normalize_reference(raw), raw))
    return recordings
