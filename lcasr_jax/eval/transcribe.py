"""Transcripts with word timestamps (txt, json or srt): `lcasr-jax transcribe AUDIO...`.

Each file is decoded whole with the moving-window mode (default: 2048-frame context,
87.5% overlap). Output goes to stdout, or to <out-dir>/<name>.<format>: the audio's stem,
or, for inputs whose stems collide (a/take.wav b/take.wav, take.wav take.flac), their paths
from the common folder joined with '__' (a__take.wav, b__take.wav); names that still
collide get -1, -2, ... (every input gets its own file). A file that fails is reported and
the others are still transcribed; the command then lists the files not done and exits 1.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

from lcasr_jax.data.audio import DEFAULT_RESAMPLER, check_audio_path
from lcasr_jax.data.features import audio_to_features
from lcasr_jax.decode import DecoderSettings, Transcript, check_classes, make_decoder
from lcasr_jax.eval import engine, windows
from lcasr_jax.eval.runner import EvalSettings, model_for_mode
from lcasr_jax.files import atomic_write, check_writable_dir


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
    common = os.path.commonpath([os.path.dirname(p) for p in full])
    by_path = ["__".join(Path(os.path.relpath(p, common)).parts) for p in full]
    names = [Path(p).stem for p in full]
    for rename in (by_path.__getitem__, by_path.__getitem__, None):  # a stem may collide
        count = Counter(names)  # with a path-based name (a/take.wav, a__take.wav.wav)
        names = [(rename(i) if rename else f"{n}-{i + 1}") if count[n] > 1 else n
                 for i, n in enumerate(names)]
    if len(set(names)) != len(names):  # cannot happen with distinct inputs; never overwrite
        raise ValueError("inputs whose output names collide: " + ", ".join(paths))
    return names


def check_audio_paths(paths: list[str]) -> None:
    """Raise naming the first input that is missing, a folder, or given twice."""


    seen: set[str] = set()
    for path in paths:
        check_audio_path(Path(path))
        if os.path.realpath(path) in seen:
            raise ValueError(f"{path}: given twice")
        seen.add(os.path.realpath(path))


def check_out_dir(out_dir: Path) -> None:
    """Make sure files can be written in `out_dir`: writable, with room (before any model
    work; it is created when the first transcript is written)."""

    check_writable_dir(out_dir, "--out-dir")


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
                                  n_devices=n_dev, progress=progress, output=decoder.wants,
                                  names=[str(path)])[0]
        out.append(decoder(merged, factor))
    return out


def write_transcripts(paths: list[str], model, variables, fmt: str, out_dir: Path | None,
                      context: int, overlap: int, mode: str, batch_size: int = 8,
                      progress: bool = False, resampler: str = DEFAULT_RESAMPLER,
                      decoding: DecoderSettings | None = None) -> list[str]:
    """Transcribe each file in turn and write it as `fmt` ('txt', 'json' or 'srt') to
    stdout, or to <out_dir>/<name>.<fmt> (`output_names`), saying so on stderr. A file that
    fails is reported on stderr (one line naming it) and the others are still done; returns
    the paths that were not transcribed."""
    failed = []
    for path, name in zip(paths, output_names(paths), strict=True):
        try:
            transcript = transcribe([path], model, variables, context, overlap, mode,
                                    batch_size, progress=progress, resampler=resampler,
                                    decoding=decoding)[0]
            text = render(transcript, fmt, str(path))
            if out_dir is None:
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                dest = atomic_write(out_dir / f"{name}.{fmt}", text)
                print(f"wrote {dest}", file=sys.stderr)
        except BrokenPipeError:
            raise  # the reader went away: `lcasr_jax.cli` exits quietly
        except (OSError, ValueError, RuntimeError) as e:  # this file only: go on
            print(f"lcasr-jax transcribe: error: {e}", file=sys.stderr)
            failed.append(str(path))
    return failed
