"""The context-use analyses of `lcasr-jax analyze` as functions: attention weights and
attended distance (`run_attention`), attribution matrices (`run_attribution`) and figures
from results tables (`run_figures`), each writing its files into `out` and returning their
paths. By default each runs as the original's script did (get_attention_weights.py,
run_context_attribution.py); this project's variants are arguments.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lcasr_jax.analysis import attention, attribution
from lcasr_jax.checkpoints.load import load_model
from lcasr_jax.data.features import FRAME_SECONDS, FRAMES_PER_SECOND
from lcasr_jax.eval import engine
from lcasr_jax.eval.datasets import load_dataset
from lcasr_jax.eval.datasets.base import EvalRecording
from lcasr_jax.eval.noise import parse_noise
from lcasr_jax.eval.normalize import normalize_hypothesis
from lcasr_jax.eval.report import atomic_write, read_table
from lcasr_jax.eval.runner import recording_features
from lcasr_jax.eval.windows import windowed_model
from lcasr_jax.figures import analysis as figures


@dataclasses.dataclass(frozen=True)
class Inputs:
    """The model and the recordings an analysis reads: audio files, or a dataset."""

    checkpoint: str | None = None  # path or hf:// name; None: the shipped model
    dtype: str = "float32"
    batch_size: int = 8  # forwards per model call
    audio: tuple[str, ...] = ()  # audio files (instead of a dataset)
    dataset: str | None = None
    data_dir: Path | None = None
    split: str = "test"
    limit: int | None = None  # only the first N recordings
    max_seconds: float | None = None  # crop each recording to this length
    noise: str = "none"  # eval.noise spec, applied before the features
    noise_seed: int | None = None  # None: the noise mode's default
    progress: bool = True  # a line per recording on stderr
    noise_mode: str = "original"  # eval.noise: the original's (audiomentations) or 'exact'

    def __post_init__(self):
        if not self.audio and not (self.dataset and self.data_dir):
            raise ValueError("give --audio FILE... or --dataset and --data-dir")
        parse_noise(self.noise)  # a bad spec fails before the model is loaded


def read_inputs(inputs: Inputs) -> Iterator[tuple[str, np.ndarray, str | None]]:
    """(id, features (80, frames), reference or None), from the audio corrupted by `noise`
    (in `noise_mode` with `noise_seed`, as `eval --noise`), cropped to `max_seconds` (the
    reference then keeps only the words that end inside; None without word times)."""
    noise = parse_noise(inputs.noise)
    if inputs.audio:
        recs = [EvalRecording(Path(a).stem, Path(a), "") for a in inputs.audio]
    else:
        recs = load_dataset(inputs.dataset, inputs.data_dir, inputs.split)[: inputs.limit]
    for rec in recs:
        spec, _ = recording_features(rec, noise, inputs.noise_seed, mode=inputs.noise_mode)
        reference = None if inputs.audio else rec.reference
        if inputs.max_seconds and spec.shape[1] > inputs.max_seconds * FRAMES_PER_SECOND:
            spec = spec[:, : int(inputs.max_seconds * FRAMES_PER_SECOND)]
            if reference is not None:
                reference = None if rec.words is None else normalize_hypothesis(" ".join(
                    w["word"] for w in rec.words if w["end"] <= inputs.max_seconds))
        yield rec.id, np.ascontiguousarray(spec), reference


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed to a temporary file, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


CAPTURES = ("recording", "chunked")  # the original's whole-recording pass; ours
WEIGHT_FORMATS = ("pt", "npy")  # bfloat16 torch tensors (the original's); float32 numpy


def save_weights(path: Path, weights: np.ndarray, fmt: str) -> Path:
    """One layer's (1, heads, tokens, tokens) weights at `path` + '.pt' (a bfloat16 torch
    tensor, as the original's `{id}_{layer}.pt`) or '.npy' (float32); written then renamed."""
    if fmt not in WEIGHT_FORMATS:
        raise ValueError(f"weights format must be one of {', '.join(WEIGHT_FORMATS)}")
    path = path.with_name(f"{path.name}.{fmt}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "pt":
        import torch

        torch.save(torch.from_numpy(weights).to(torch.bfloat16), tmp)
    else:
        with open(tmp, "wb") as f:
            np.save(f, weights.astype(np.float32))
    tmp.replace(path)
    return path


def _pieces(spec: np.ndarray, capture: str, window: int, windows: int) -> Iterator[np.ndarray]:
    """The inputs (1, feat, frames) captured for one recording: the whole recording
    ('recording', the original's) or up to `windows` windows of `window` frames."""
    if capture == "recording":
        yield spec[None]
        return
    for w, start in enumerate(list(range(0, spec.shape[1], window))[:windows]):
        chunk = spec[None, :, start:start + window]
        if w and chunk.shape[-1] < window // 2:
            return  # a short tail window says little about long distances
        yield chunk


def run_attention(inputs: Inputs, window: int, windows: int, full_max_tokens: int,
                  out: Path, capture: str = "recording", weights: str = "scores",
                  weights_format: str = "pt") -> list[Path]:
    """Attention of every layer and head. capture 'recording' (the original's
    get_attention_weights): each whole recording in one pass, writing per layer
    out/weights/<id>_<layer>.<weights_format> of `weights` ('scores': pre-softmax scaled,
    as the original saves; 'probs'; 'none': nothing); 'chunked': up to `windows` windows of
    `window` input frames per recording. Both: attended distance per layer and head
    (attention.npz, attention.csv, figures) and the full probabilities of the first input of
    at most `full_max_tokens` tokens."""
    if capture not in CAPTURES:
        raise ValueError(f"attention capture must be one of {', '.join(CAPTURES)}")
    model, variables, _ = load_model(inputs.checkpoint, inputs.dtype)
    cfg = model.config
    spt = cfg.subsampling_factor * FRAME_SECONDS
    summary, probs, written = None, None, []
    for rid, spec, _ in read_inputs(inputs):
        for w, chunk in enumerate(_pieces(spec, capture, window, windows)):
            cap = attention.capture(model, variables, chunk)
            tokens = cap.q[0].shape[1]
            if summary is None:  # distance edges up to the longest input's tokens
                span = (window if capture == "chunked" else spec.shape[1])
                summary = attention.DistanceSummary.empty(
                    cfg.n_layers, cfg.n_heads,
                    attention.default_edges(span // cfg.subsampling_factor), spt)
            summary.add(cap)
            if capture == "recording" and weights != "none":
                for i, layer in enumerate(attention.layer_weights(cap, weights)):
                    written.append(save_weights(out / "weights" / f"{rid}_{i}", layer,
                                                weights_format))
            if probs is None and tokens <= full_max_tokens:
                start = 0 if capture == "recording" else w * window
                where = {"probs_recording": np.array(rid),
                         "probs_start_s": np.array(start * FRAME_SECONDS)}
                probs = np.stack([np.asarray(attention.probabilities(
                    q, k, cap.lengths, cap.window))[0] for q, k in zip(cap.q, cap.k,
                                                                     strict=True)])
            if inputs.progress:
                label = "recording" if capture == "recording" else f"window {w}"
                print(f"{rid} {label}: {tokens} tokens", file=sys.stderr)
    if summary is None or not summary.queries:
        raise ValueError("no recordings to analyse")
    arrays = summary.arrays()
    if probs is not None:
        arrays |= {"probs": probs.astype(np.float16), **where}
    _savez(out / "attention.npz", arrays)
    rows = [{"layer": i, "head": h,
             "mean_distance_s": round(float(arrays["mean_distance_s"][i, h]), 4),
             **{f"beyond_{s:g}s": f"{arrays[f'beyond_{s:g}s'][i, h]:.6f}"
                for s in attention.THRESHOLDS_S}}
            for i in range(cfg.n_layers) for h in range(cfg.n_heads)]
    atomic_write(out / "attention.csv", _csv(rows))
    written += [out / "attention.npz", out / "attention.csv",
                figures.attention_distance(arrays, out / "attention_distance.png")]
    if probs is not None:
        written.append(figures.attention_heatmaps(
            probs, spt, out / "attention_heatmaps.png", recording=str(where["probs_recording"]),
            start_s=float(where["probs_start_s"])))
    return written


def run_attribution(inputs: Inputs, segment: int, context: int | None,
                    out: Path, measure: str = "wer") -> list[Path]:
    """Attribution matrices over segments of `segment` input frames, attention limited as
    in windowed_attention evaluation at `context` frames (None: full attention). `measure`
    'wer' (the original's n x (n + 1) WER matrix, needs references) or 'logp' heads the
    curve and figure; both are written. Writes attribution.npz, attribution.csv and
    attribution.png into `out`."""
    if measure not in attribution.MEASURES:
        raise ValueError(f"attribution measure must be one of {', '.join(attribution.MEASURES)}")
    if measure == "wer" and inputs.audio:
        raise ValueError("--measure wer (the original's WER matrix) needs references: give "
                         "--dataset and --data-dir, or use --measure logp with --audio")
    model, variables, _ = load_model(inputs.checkpoint, inputs.dtype)
    factor = model.config.subsampling_factor
    forward, n_devices = engine.make_forward(
        model if context is None else windowed_model(model, context), variables)
    arrays, rows, curves = {}, [], []
    first = None
    for rid, spec, reference in read_inputs(inputs):
        if measure == "wer" and reference is None:
            raise ValueError(f"{rid}: no reference for --measure wer (cropped by --max-seconds "
                             "without word times?); use --measure logp")
        res = attribution.attribute(forward, n_devices, spec, segment, factor=factor,
                                    batch_size=inputs.batch_size, reference=reference,
                                    recording_id=rid)
        first = first or res
        arrays |= {f"{rid}/{k}": v for k, v in res.arrays().items()}
        curves.append(attribution.by_distance(  # WER: change from the unmasked run
            res.wer - res.wer_base if measure == "wer" else res.logp))
        n = res.logp.shape[0]
        for i in range(n):
            for j in range(n):
                rows.append({"recording": rid, "i": i, "j": j,
                             "distance_s": abs(i - j) * segment / FRAMES_PER_SECOND,
                             "wer": "" if res.wer is None else f"{res.wer[i, j]:.4f}",
                             "wer_unmasked": "" if res.wer is None else f"{res.wer_base:.4f}",
                             "logp": f"{res.logp[i, j]:.6g}",
                             "changed": f"{res.changed[i, j]:.6g}"})
        if inputs.progress:
            print(f"{rid}: {n} segments", file=sys.stderr)
    if first is None:
        raise ValueError("no recordings to analyse")
    longest = max(len(c) for c in curves)
    curve = np.array([np.mean([c[d] for c in curves if d < len(c)]) for d in range(longest)])
    arrays[f"curve_{measure}"] = curve
    _savez(out / "attribution.npz", arrays)
    atomic_write(out / "attribution.csv", _csv(rows))
    matrix = first.wer[:, :-1] - first.wer_base if measure == "wer" else first.logp
    png = figures.attribution(matrix, curve, segment / FRAMES_PER_SECOND,
                              out / "attribution.png", figures.ATTRIBUTION_UNITS[measure],
                              recording=first.id)
    return [out / "attribution.npz", out / "attribution.csv", png]


def run_figures(tables: list[Path], noise: str, out: Path) -> list[Path]:
    """WER against SNR, and loss against context of the runs with `noise`, from results
    tables, as PNGs in `out`; a figure without rows is skipped with a line on stderr."""
    rows = []
    for table in tables:
        if not table.is_file():
            raise FileNotFoundError(f"{table}: results table not found")
        rows += read_table(table)
    written = []
    draw = {"wer_vs_snr": figures.wer_vs_snr,
            "loss_vs_context": lambda rows, out: figures.loss_vs_context(rows, out,
                                                                        noise=noise)}
    for name, fn in draw.items():
        try:
            written.append(fn(rows, out / f"{name}.png"))
        except ValueError as e:
            print(f"skipped {name}: {e}", file=sys.stderr)
    if not written:
        raise ValueError("no noisy or loss rows in the tables: nothing to draw")
    return written
