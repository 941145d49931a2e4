"""This American Life (Mao et al. 2020): `{train,valid,test}-transcripts-aligned.json`
({episode id: [{"utterance", "speaker", ...}]}) and `audio/<number>.mp3` where number is
the part of the episode id after its last '-' (`eval/this_american_life/run.py`).
Split 'dev' reads the 'valid' file."""

from __future__ import annotations

from pathlib import Path

from lcasr_jax.eval.datasets.base import DatasetError, EvalRecording, check_split, read_json
from lcasr_jax.eval.normalize import normalize_reference


def read(data_dir: Path, split: str = "test") -> list[EvalRecording]:
    check_split("this_american_life", split, ("train", "dev", "test"))
    data_dir = Path(data_dir)
    path = data_dir / f"{'valid' if split == 'dev' else split}-transcripts-aligned.json"
    episodes = read_json(path)
    if not isinstance(episodes, dict):
        raise DatasetError(f"{path}: expected a JSON object {{episode id: utterances}}")
    recordings = []
    for episode, utterances in episodes.items():
        try:
            raw = " ".join(u["utterance"] for u in utterances)
        except (TypeError, KeyError):
            raise DatasetError(f"{path}: episode {episode} lacks 'utterance' entries") from None
        audio = data_dir / "audio" / f"{episode.split('-')[-1]}.mp3"
        if not audio.is_file():
            raise DatasetError(f"{audio}: audio file not found")
        recordings.append(EvalRecording(episode, audio, normalize_reference(raw), raw))
    return recordings
