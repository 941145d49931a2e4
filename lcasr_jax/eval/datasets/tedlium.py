"""TED-LIUM (release 1 or 3): `<split>/stm/*.stm` + `<split>/sph/*.sph`.

`data_dir` may be the split directory itself, the release root (`<root>/<split>`) or a
release-3 root (`<root>/legacy/<split>`). As `eval/tedlium/run.py`: the reference is the
stm text of every segment but `ignore_time_segment_in_scoring` ones, contractions joined;
ignored segments are zeroed in the features (shrunk by 0.5 s each side).
"""

from __future__ import annotations

from pathlib import Path

from lcasr_jax.eval.datasets.base import DatasetError, EvalRecording, check_split, read_text
from lcasr_jax.eval.normalize import normalize_reference, tedlium_join

IGNORE = "ignore_time_segment_in_scoring"


def parse_stm(text: str, where: str = "stm") -> tuple[str, list[tuple[float, float]]]:
    """stm lines -> (reference text (contractions joined), ignored (start, end) seconds).
    Fields are split on single spaces: id channel speaker start end <meta> words..."""
    words, ignore = [], []
    for number, line in enumerate(text.split("\n"), 1):
        fields = line.split(" ")
        if len(fields) < 6:
            continue
        try:
            start, end = float(fields[3]), float(fields[4])
        except ValueError:
            raise DatasetError(f"{where}:{number}: start/end times are not numbers") from None
        segment = " ".join(fields[6:])
        if segment == IGNORE:
            ignore.append((start, end))
            continue
        words.append(segment)
    return tedlium_join(" ".join(words).strip()), ignore


def _split_dir(data_dir: Path, split: str) -> Path:
    for cand in (data_dir / split, data_dir / "legacy" / split, data_dir):
        if (cand / "stm").is_dir() and (cand / "sph").is_dir():
            return cand
    raise DatasetError(f"{data_dir}: no TED-LIUM {split} split (expected stm/ and sph/ under "
                       f"{data_dir / split})")


def read(data_dir: Path, split: str = "test") -> list[EvalRecording]:
    check_split("tedlium", split, ("test", "dev", "train"))
    root = _split_dir(Path(data_dir), split)
    sph = {p.stem: p for p in (root / "sph").glob("*.sph")}
    stm = {p.stem: p for p in (root / "stm").glob("*.stm")}
    if not sph:
        raise DatasetError(f"{root / 'sph'}: no .sph files")
    if set(sph) != set(stm):
        odd = sorted(set(sph) ^ set(stm))[0]
        raise DatasetError(f"{root}: {odd} has no matching .sph/.stm pair")
    recordings = []
    for name in sorted(sph):
        raw, ignore = parse_stm(read_text(stm[name]), str(stm[name]))
        recordings.append(EvalRecording(name, sph[name], normalize_reference(raw), raw,
                                    tuple(ignore)))
    return recordings
