"""The context-use analyses of `lcasr-jax analyze` as functions: attended distance
(`run_attention`), attribution matrices (`run_attribution`) and figures from results tables
(`run_figures`), each writing its files into `out` and returning their paths.
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
    noise_seed: int = 0
    progress: bool = True  # a line per recording on stderr

    def __post_init__(self):
        if not self.audio and not (self.dataset and self.data_dir):
            raise ValueError("give --audio FILE... or --dataset and --data-dir")
        parse_noise(self.noise)  # a bad spec fails before the model is loaded


def read_inputs(inputs: Inputs) -> Iterator[tuple[str, np.ndarray, str | None]]:
    """(id, features (80, frames), reference or None), from the audio corrupted by `noise`
    (seeded by (noise_seed, id), as `eval --noise`), cropped to `max_seconds` (the
    reference then keeps only the words that end inside; None without word times)."""
    noise = parse_noise(inputs.noise)
    if inputs.audio:
        recs = [EvalRecording(Path(a).stem, Path(a), "") for a in inputs.audio]
    else:
        recs = load_dataset(inputs.dataset, inputs.data_dir, inputs.split)[: inputs.limit]
    for rec in recs:
        spec, _ = recording_features(rec, noise, inputs.noise_seed)
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


def run_attention(inputs: Inputs, window: int, windows: int, full_max_tokens: int,
                  out: Path) -> list[Path]:
    """Attended distance per layer and head over up to `windows` windows of `window` input
    frames per recording; the full probabilities of the first window of at most
    `full_max_tokens` tokens. Writes attention.npz, attention.csv and figures into `out`."""
    model, variables, _ = load_model(inputs.checkpoint, inputs.dtype)
    cfg = model.config
    spt = cfg.subsampling_factor * FRAME_SECONDS
    summary = attention.DistanceSummary.empty(
        cfg.n_layers, cfg.n_heads, attention.default_edges(window // cfg.subsampling_factor),
        spt)
    probs = None
    for rid, spec, _ in read_inputs(inputs):
        starts = range(0, spec.shape[1], window)
        for w, start in enumerate(list(starts)[: windows]):
            chunk = spec[None, :, start:start + window]
            if w and chunk.shape[-1] < window // 2:
                break  # a short tail window says little about long distances
            cap = attention.capture(model, variables, chunk)
            summary.add(cap)
            tokens = cap.q[0].shape[1]
            if probs is None and tokens <= full_max_tokens:
                where = {"probs_recording": np.array(rid),
                         "probs_start_s": np.array(start * FRAME_SECONDS)}
                probs = np.stack([np.asarray(attention.probabilities(
                    q, k, cap.lengths, cap.window))[0] for q, k in zip(cap.q, cap.k,
                                                                     strict=True)])
            if inputs.progress:
                print(f"{rid} window {w}: {tokens} tokens", file=sys.stderr)
    if not summary.queries:
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
    written = [out / "attention.npz", out / "attention.csv",
               figures.attention_distance(arrays, out / "attention_distance.png")]
    if probs is not None:
        written.append(figures.attention_heatmaps(
            probs, spt, out / "attention_heatmaps.png", recording=str(where["probs_recording"]),
            start_s=float(where["probs_start_s"])))
    return written


def run_attribution(inputs: Inputs, segment: int, context: int | None,
                    out: Path) -> list[Path]:
    """Attribution matrices over segments of `segment` input frames, attention limited as
    in windowed_attention evaluation at `context` frames (None: full attention). Writes
    attribution.npz, attribution.csv and attribution.png into `out`."""
    model, variables, _ = load_model(inputs.checkpoint, inputs.dtype)
    factor = model.config.subsampling_factor
    forward, n_devices = engine.make_forward(
        model if context is None else windowed_model(model, context), variables)
    arrays, rows, curves = {}, [], []
    first = None
    for rid, spec, reference in read_inputs(inputs):
        res = attribution.attribute(forward, n_devices, spec, segment, factor=factor,
                                    batch_size=inputs.batch_size, reference=reference,
                                    recording_id=rid)
        first = first or res
        arrays |= {f"{rid}/{k}": v for k, v in res.arrays().items()}
        curves.append(attribution.by_distance(res.logp))
        n = res.logp.shape[0]
        for i in range(n):
            for j in range(n):
                rows.append({"recording": rid, "i": i, "j": j,
                             "distance_s": abs(i - j) * segment / FRAMES_PER_SECOND,
                             "logp": f"{res.logp[i, j]:.6g}", "changed": f"{res.changed[i, j]:.6g}",
                             "wer": "" if res.wer is None else f"{res.wer[i, j]:.4f}"})
        if inputs.progress:
            print(f"{rid}: {n} segments", file=sys.stderr)
    if first is None:
        raise ValueError("no recordings to analyse")
    longest = max(len(c) for c in curves)
    curve = np.array([np.mean([c[d] for c in curves if d < len(c)]) for d in range(longest)])
    arrays["curve_logp"] = curve
    _savez(out / "attribution.npz", arrays)
    atomic_write(out / "attribution.csv", _csv(rows))
    png = figures.attribution(first.logp, curve, segment / FRAMES_PER_SECOND,
                              out / "attribution.png", recording=first.id)
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
