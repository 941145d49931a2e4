"""End-to-end long-form evaluation: features -> windows -> batched model -> merge ->
decode -> normalise -> WER per recording and overall (the original's `eval/run.py`).

With several processes (jax.distributed) each reads and decodes only its share of the
recordings (`hosts.owned`); the per-recording results are gathered, in order, on every
process.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from lcasr_jax import validate as v
from lcasr_jax.data.audio import DEFAULT_RESAMPLER, SAMPLE_RATE, load_audio
from lcasr_jax.data.features import FRAMES_PER_SECOND, MIN_SAMPLES, compute_features
from lcasr_jax.data.tokenizer import ctc_collapse, default_tokenizer
from lcasr_jax.decode import DecoderSettings, Transcript, check_classes, make_decoder
from lcasr_jax.eval import engine, loss, windows
from lcasr_jax.eval.datasets.base import EvalRecording, zero_regions
from lcasr_jax.eval.hosts import Hosts, owned, reassemble
from lcasr_jax.eval.loss import LossDetail
from lcasr_jax.eval.noise import NOISE_MODES, NoiseSpec, corrupt, parse_noise, valid_mask
from lcasr_jax.eval.normalize import normalize_hypothesis
from lcasr_jax.eval.wer import WERDetail, word_error_rate_detail
from lcasr_jax.model.lengths import output_lengths

# Recordings are run together until their merged outputs reach this many output frames
# (4096 float32 classes each: 40k frames = 650 MB of host memory).
GROUP_OUT_FRAMES = 40_000


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    mode: str = "averaged_moving_window"
    context: int = 2048  # frames (10 ms each)
    overlap: int = 0  # frames; a multiple of the subsampling factor
    batch_size: int = 8  # windows per model call
    max_seq_len: int = windows.MAX_SEQ_LEN
    resampler: str = DEFAULT_RESAMPLER  # non-16 kHz audio: 'torchaudio' (original) or 'soxr'
    decoding: DecoderSettings = DecoderSettings()  # greedy (eval/run.py) or pyctcdecode beam
    noise: str = "none"  # eval.noise spec: none | gaussian:SNR[:HIGH] | background:DIR:SNR[:HIGH]
    noise_seed: int | None = None  # None: the mode's default (17925 original, 0 exact)
    noise_mode: str = "original"  # eval.noise: 'original' (audiomentations) or 'exact'
    loss: bool = False  # also the CTC loss of the merged posteriors (eval.loss)
    loss_targets: str = "original"  # eval.loss.LOSS_TARGETS: the original's or normalised

    def __post_init__(self):
        parse_noise(self.noise)  # a bad noise spec is a ValueError naming it, before any run
        if self.loss_targets not in loss.LOSS_TARGETS:
            raise ValueError(f"--loss-targets must be one of {', '.join(loss.LOSS_TARGETS)} "
                             f"(got {self.loss_targets!r})")
        if self.noise_mode not in NOISE_MODES:
            raise ValueError(f"--noise-mode must be one of {', '.join(NOISE_MODES)} "
                             f"(got {self.noise_mode!r})")

    def validate(self, factor: int) -> EvalSettings:
        """Raise `validate.SettingError` naming the first field out of range for a model
        whose subsampling factor is `factor` (a window must hold one output frame)."""
        v.check("batch_size", self.batch_size, v.int_at_least(1))
        v.check("max_seq_len", self.max_seq_len, v.int_at_least(1))
        v.check("context", self.context, (lambda c: v.is_int(c) and c >= factor,
                                          f">= {factor} frames, one output frame of this model"))
        v.check("overlap", self.overlap, (lambda o: v.is_int(o) and 0 <= o < self.context,
                                          f"in [0, context={self.context}) frames"))
        return self


@dataclasses.dataclass(frozen=True)
class RecordingResult:
    id: str
    hypothesis: str  # normalised
    reference: str  # normalised
    transcript: Transcript  # raw decoder output with word times
    detail: WERDetail
    seconds: float  # audio duration
    snr_db: float | None = None  # measured SNR of the added noise (None: no noise)
    loss: LossDetail | None = None  # with settings.loss


@dataclasses.dataclass(frozen=True)
class EvalResult:
    recordings: list[RecordingResult]
    overall: WERDetail
    wall_seconds: float
    noise: str = "none"
    loss: LossDetail | None = None  # sums over recordings, with settings.loss


def model_for_mode(model, settings: EvalSettings):
    """In windowed_attention mode, the same weights with attention limited to
    (context // factor) // 2 output frames each side (`ModelConfig.attention_window`)."""
    if settings.mode != "windowed_attention":
        return model
    return windows.windowed_model(model, settings.context)


def recording_features(rec: EvalRecording, noise: NoiseSpec, seed: int | None = None,
                       resampler: str = DEFAULT_RESAMPLER, mode: str = "original"
                       ) -> tuple[np.ndarray, float | None]:
    """(features (80, frames), measured SNR in dB or None): the recording's features, from
    its audio corrupted by `noise` in `mode` (eval.noise.corrupt) when noise is active."""
    if not noise.active:
        return rec.features(resampler), None

    audio = load_audio(rec.audio, SAMPLE_RATE, resampler)
    if audio.shape[0] < MIN_SAMPLES:
        raise ValueError(f"{rec.audio}: audio too short ({audio.shape[0]} samples at 16 kHz)")
    valid = valid_mask(audio.shape[0], rec.ignore, SAMPLE_RATE)
    audio, snr = corrupt(audio, noise, mode, seed, rec.id, valid)
    return zero_regions(compute_features(audio), rec.ignore), snr


def _groups(recordings: Iterable[EvalRecording], factor: int, noise: NoiseSpec,
            seed: int | None, bar=None, resampler: str = DEFAULT_RESAMPLER,
            mode: str = "original"
            ) -> Iterator[list[tuple[EvalRecording, np.ndarray, float | None]]]:
    """(recording, features (80, frames), SNR) read one by one and grouped until the merged
    outputs of a group would pass GROUP_OUT_FRAMES (a longer recording goes alone). `bar`
    (tqdm) shows which recording is being read."""
    group: list[tuple[EvalRecording, np.ndarray, float | None]] = []
    size = 0
    for rec in recordings:
        if bar is not None:
            bar.set_postfix_str(f"reading {rec.id}")
        spec, snr = recording_features(rec, noise, seed, resampler, mode)
        out = output_lengths(spec.shape[1], factor)
        if group and size + out > GROUP_OUT_FRAMES:
            yield group
            group, size = [], 0
        group.append((rec, spec, snr))
        size += out
    if group:
        yield group


def evaluate(recordings: Sequence[EvalRecording], model, variables, settings: EvalSettings, *,
             mesh=None, progress: bool = True, tokenizer=None,
             hosts: Hosts | None = None) -> EvalResult:
    """Evaluate `recordings` with (model, variables) under `settings`. With several
    processes (`hosts`, default: jax's) every process calls this with the same arguments;
    all get the full result. Progress bars (recordings of process 0) on process 0 only."""
    t0 = time.perf_counter()
    noise = parse_noise(settings.noise)
    tokenizer = tokenizer or default_tokenizer()
    hosts = hosts if hosts is not None else Hosts.current()
    factor = model.config.subsampling_factor
    settings.validate(factor)
    check_classes(model.config.num_classes, tokenizer)
    forward, n_devices = engine.make_forward(model_for_mode(model, settings), variables, mesh)
    decoder = make_decoder(settings.decoding, tokenizer)
    mine = [recordings[i] for i in owned(len(recordings), hosts.index, hosts.count)]
    progress = progress and hosts.main
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(mine), unit="rec", desc="recordings")
    results: list[RecordingResult] = []
    groups = _groups(mine, factor, noise, settings.noise_seed, bar, settings.resampler,
                     settings.noise_mode)
    while True:  # every process runs the model until all have run out of recordings
        group = next(groups, [])
        if not hosts.allgather(np.array([len(group)])).any():
            break
        if bar is not None:
            bar.set_postfix_str(f"model on {len(group)} recording(s)")
        plans = [windows.make_plan(settings.mode, spec.shape[1], settings.context,
                                   settings.overlap, factor, settings.max_seq_len)
                 for _, spec, _ in group]
        wants = "log_probs" if settings.loss else decoder.wants  # the loss needs log-probs
        merged = engine.run_plans(forward, [spec for _, spec, _ in group], plans,
                                  batch_size=settings.batch_size, n_devices=n_devices,
                                  progress=progress, hosts=hosts, output=wants,
                                  names=[rec.id for rec, _, _ in group])
        for (rec, spec, snr), out in zip(group, merged, strict=True):
            ids = out if wants == "ids" else out.argmax(-1)
            transcript = decoder(ids if decoder.wants == "ids" else out, factor)
            hyp = normalize_hypothesis(transcript.text)
            detail = None
            if settings.loss:
                targets = loss.loss_targets(
                    settings.loss_targets, rec.raw_reference, rec.reference, transcript.text,
                    ctc_collapse(ids, tokenizer.blank_id), tokenizer)
                detail = loss.recording_loss(out, *targets, tokenizer.blank_id)
            results.append(RecordingResult(
                rec.id, hyp, rec.reference, transcript,
                word_error_rate_detail([hyp], [rec.reference]), spec.shape[1] / FRAMES_PER_SECOND,
                snr, detail))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    results = reassemble(hosts.gather_objects(results))
    overall = word_error_rate_detail([r.hypothesis for r in results],
                                     [r.reference for r in results])
    total = loss.total([r.loss for r in results]) if settings.loss else None
    return EvalResult(results, overall, time.perf_counter() - t0, settings.noise, total)
