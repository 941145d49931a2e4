"""End-to-end long-form evaluation: features -> windows -> batched model -> merge ->
decode -> normalise -> WER per recording and overall (the original's `eval/run.py`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np

from lcasr_jax.eval import engine, windows
from lcasr_jax.eval.datasets.base import Recording
from lcasr_jax.eval.decode import Transcript, greedy_ids
from lcasr_jax.eval.normalize import normalize_hypothesis
from lcasr_jax.eval.wer import WERDetail, word_error_rate_detail

# Recordings are run together until their merged outputs reach this many output frames
# (4096 float32 classes each: 40k frames = 650 MB of host memory).
GROUP_OUT_FRAMES = 40_000


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    mode: str = "averaged_moving_window"
    seq_len: int = 2048  # frames (10 ms each)
    overlap: int = 0  # frames; a multiple of the subsampling factor
    batch_size: int = 8  # windows per model call
    max_seq_len: int = windows.MAX_SEQ_LEN
    beam_width: int = 0  # 0: greedy; > 0: pyctcdecode beam search
    kenlm: str | None = None


@dataclasses.dataclass(frozen=True)
class RecordingResult:
    id: str
    hypothesis: str  # normalised
    reference: str  # normalised
    transcript: Transcript  # raw decoder output with word times
    detail: WERDetail
    seconds: float  # audio duration


@dataclasses.dataclass(frozen=True)
class EvalResult:
    recordings: list[RecordingResult]
    overall: WERDetail
    wall_seconds: float


def model_for_mode(model, settings: EvalSettings):
    """In windowed_attention mode, the same weights with attention limited to
    (seq_len // factor) // 2 output frames each side (`ModelConfig.attention_window`)."""
    if settings.mode != "windowed_attention":
        return model
    cfg = model.config
    window = windows.attention_window(settings.seq_len, cfg.subsampling_factor)
    return model.clone(config=cfg.replace(attention_window=window))


def evaluate(recordings: Sequence[Recording], model, variables, settings: EvalSettings, *,
             mesh=None, progress: bool = True, tokenizer=None) -> EvalResult:
    """Evaluate `recordings` with (model, variables) under `settings`."""
    from lcasr_jax.eval.decode import BeamDecoder, check_classes

    t0 = time.perf_counter()
    factor = model.config.subsampling_factor
    check_classes(model.config.num_classes, tokenizer)
    forward, n_devices = engine.make_forward(model_for_mode(model, settings), variables, mesh)
    beam = BeamDecoder(tokenizer, settings.kenlm) if settings.beam_width > 0 else None

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(recordings), unit="rec", desc="recordings")
    results: list[RecordingResult] = []

    def flush(group: list[tuple[int, np.ndarray]]) -> None:
        specs = [spec for _, spec in group]
        plans = [windows.make_plan(settings.mode, s.shape[1], settings.seq_len, settings.overlap,
                                   factor, settings.max_seq_len) for s in specs]
        merged = engine.run_plans(forward, specs, plans, batch_size=settings.batch_size,
                                  n_devices=n_devices, progress=progress and len(group) == 1,
                                  output="log_probs" if beam is not None else "ids")
        for (i, spec), out in zip(group, merged, strict=True):
            rec = recordings[i]
            if beam is not None:
                transcript = beam(out, settings.beam_width, factor)
            else:
                transcript = greedy_ids(out, tokenizer, factor)
            hyp = normalize_hypothesis(transcript.text)
            results.append(RecordingResult(
                rec.id, hyp, rec.reference, transcript,
                word_error_rate_detail([hyp], [rec.reference]), spec.shape[1] / 100))
            if bar is not None:
                bar.update(1)

    # Recordings run together until their merged outputs would pass GROUP_OUT_FRAMES.
    group: list[tuple[int, np.ndarray]] = []
    size = 0
    for i, rec in enumerate(recordings):
        spec = rec.features()
        out = windows.frames_out(spec.shape[1], factor)
        if group and size + out > GROUP_OUT_FRAMES:
            flush(group)
            group, size = [], 0
        group.append((i, spec))
        size += out
    if group:
        flush(group)
    if bar is not None:
        bar.close()
    overall = word_error_rate_detail([r.hypothesis for r in results],
                                     [r.reference for r in results])
    return EvalResult(results, overall, time.perf_counter() - t0)
