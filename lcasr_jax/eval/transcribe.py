"""Transcripts with word timestamps (txt, json or srt): `lcasr-jax transcribe AUDIO...`.

Each file is decoded whole with the moving-window mode (default: 2048-frame context,
87.5% overlap). Output goes to stdout, or to <out-dir>/<name>.<format>: the audio's stem,
or, for inputs whose stems collide (a/take.wav b/take.wav, take.wav take.flac), their paths
from the common folder joined with '__' (a__take.wav, b__take.wav).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from lcasr_jax.data.audio import DEFAULT_RESAMPLER
from lcasr_jax.data.features import audio_to_features
from lcasr_jax.decode import DecoderSettings, Transcript, check_classes, make_decoder
from lcasr_jax.eval import engine, windows
from lcasr_jax.eval.runner import EvalSettings, model_for_mode
from lcasr_jax.files import atomic_write


def srt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def to_srt(transcript: Transcript, max_words: int = 12, max_gap: float = 1.0) -> str:
    """Subtitle cues of up to `max_words` words, split at pauses longer than `max_gap` s."""
    cues, current = [], []
    for word in transcript.words:
        if current and (len(current) >= max_words or word.start - current[-1].end > max_gap):
            cues.append(current)
            current = []
        current.append(word)
    if current:
        cues.append(current)
    lines = []
    for i, cue in enumerate(cues, 1):
        lines += [str(i), f"{srt_time(cue[0].start)} --> {srt_time(cue[-1].end)}",
                  " ".join(w.word for w in cue), ""]
    return "\n".join(lines)


def render(transcript: Transcript, fmt: str, audio: str) -> str:
    if fmt == "txt":
        return transcript.text.strip() + "\n"
    if fmt == "srt":
        return to_srt(transcript)
    doc = {"audio": audio, "text": transcript.text.strip(),
           "words": [{"word": w.word, "start": w.start, "end": w.end} for w in transcript.words]}
    return json.dumps(doc, indent=1) + "\n"


def output_names(paths: list[str]) -> list[str]:
    """A distinct file name (no format suffix) per input path (module docstring)."""

    full = [os.path.abspath(p) for p in paths]
    stems = [Path(p).stem for p in full]
    common = os.path.commonpath([os.path.dirname(p) for p in full])
    out = []
    for p, stem in zip(full, stems, strict=True):
        out.append(stem if stems.count(stem) == 1
                   else "__".join(Path(os.path.relpath(p, common)).parts))
    return out


def check_audio_paths(paths: list[str]) -> None:
    """Raise naming the first input that is missing, a folder, or given twice."""

    seen: set[str] = set()
    for path in paths:
        if Path(path).is_dir():
            raise IsADirectoryError(f"{path}: is a directory, expected an audio file")
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: audio file not found")
        if os.path.realpath(path) in seen:
            raise ValueError(f"{path}: given twice")
        seen.add(os.path.realpath(path))


def check_out_dir(out_dir: Path) -> None:
    """Create `out_dir` and make sure files can be written there (before any model work)."""

    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: --out-dir exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        tempfile.TemporaryFile(dir=out_dir).close()
    except OSError as e:
        raise PermissionError(f"{out_dir}: --out-dir is not writable ({e.strerror})") from None


def transcribe(paths, model, variables, context: int, overlap: int, mode: str,
               batch_size: int = 8, progress: bool = False,
               resampler: str = DEFAULT_RESAMPLER,
               decoding: DecoderSettings | None = None) -> list[Transcript]:
    """Transcripts (raw decoder text + word times) of audio files; `resampler` for audio
    not at 16 kHz ('torchaudio': the original's, or 'soxr'); `decoding`: greedy (None) or
    beam."""

    check_classes(model.config.num_classes)
    decoder = make_decoder(decoding or DecoderSettings())
    factor = model.config.subsampling_factor
    settings = EvalSettings(mode, context, overlap, batch_size).validate(factor)
    forward, n_dev = engine.make_forward(model_for_mode(model, settings), variables)
    out = []
    for path in paths:
        spec = audio_to_features(path, resampler)
        plan = windows.make_plan(mode, spec.shape[1], context, overlap, factor)
        merged = engine.run_plans(forward, [spec], [plan], batch_size=batch_size,
                                  n_devices=n_dev, progress=progress, output=decoder.wants)[0]
        out.append(decoder(merged, factor))
    return out


def write_transcripts(paths: list[str], model, variables, fmt: str, out_dir: Path | None,
                      context: int, overlap: int, mode: str, batch_size: int = 8,
                      progress: bool = False, resampler: str = DEFAULT_RESAMPLER,
                      decoding: DecoderSettings | None = None) -> None:
    """Transcribe each file in turn and write it as `fmt` ('txt', 'json' or 'srt') to
    stdout, or to <out_dir>/<name>.<fmt> (`output_names`), saying so on stderr."""
    for path, name in zip(paths, output_names(paths), strict=True):
        transcript = transcribe([path], model, variables, context, overlap, mode, batch_size,
                                progress=progress, resampler=resampler, decoding=decoding)[0]
        text = render(transcript, fmt, str(path))
        if out_dir is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            dest = atomic_write(out_dir / f"{name}.{fmt}", text)
            print(f"wrote {dest}", file=sys.stderr)
