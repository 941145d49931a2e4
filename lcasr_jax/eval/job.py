"""One evaluation run as `lcasr-jax eval` does it: load the dataset and model, evaluate,
name the run and write its files (`report.write_run`) on process 0.

The stem of a run's files names the dataset, split, run name, mode, seq-len, overlap and a
tag of the data dir and checkpoint, so runs on other data or models never replace each
other's files; it is also the rows' `run` identity in the results table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

from lcasr_jax.checkpoints.hub import is_hub_name, parse_hub_name, resolve_checkpoint
from lcasr_jax.checkpoints.load import load_model
from lcasr_jax.data.audio import DEFAULT_RESAMPLER
from lcasr_jax.decode import DecoderSettings
from lcasr_jax.distributed import maybe_initialize_distributed
from lcasr_jax.eval import report
from lcasr_jax.eval.datasets import load_dataset
from lcasr_jax.eval.hosts import Hosts
from lcasr_jax.eval.noise import default_seed, parse_noise
from lcasr_jax.eval.runner import EvalResult, EvalSettings, evaluate
from lcasr_jax.eval.windows import MAX_SEQ_LEN, overlap_frames
from lcasr_jax.files import check_writable_dir


@dataclasses.dataclass(frozen=True)
class EvalJob:
    """What to evaluate and where the results go (the fields of `lcasr-jax eval`)."""

    dataset: str
    data_dir: Path
    split: str = "test"
    checkpoint: str | None = None  # None: the shipped model
    dtype: str = "float32"
    batch_size: int = 8  # windows per model call
    resampler: str = DEFAULT_RESAMPLER
    decoding: DecoderSettings = DecoderSettings()
    context: int | None = None  # input frames (10 ms) the model sees: the results' seq_len;
    #                             None: the checkpoint's training context (`default_context`)
    overlap: int | None = None  # frames; or
    overlap_ratio: float | None = None  # a fraction of context (neither: no overlap)
    mode: str = "averaged_moving_window"
    max_seq_len: int = MAX_SEQ_LEN
    noise: str = "none"
    noise_seed: int | None = None  # None: the noise mode's default (eval.noise.default_seed)
    loss: bool = False
    limit: int | None = None  # only the first N recordings
    name: str | None = None  # run name (default: `run_name(checkpoint)`)
    repeat: int = 1
    out: Path = Path("runs/eval")
    results_table: Path | None = None  # default: <out>/results.csv
    progress: bool = True
    noise_mode: str = "original"  # eval.noise: the original's (audiomentations) or 'exact'
    loss_targets: str = "original"  # eval.loss.LOSS_TARGETS


@dataclasses.dataclass(frozen=True)
class JobResult:
    result: EvalResult
    csv_path: Path | None  # None except on process 0
    table: Path | None


def run_name(checkpoint: str) -> str:
    """Default run name: REPO_FOLDER for hub names; for a path, its stem and a tag of its
    absolute real path (runA/model and runB/model are two models, never two repeats of
    one)."""
    if is_hub_name(checkpoint):
        ref = parse_hub_name(checkpoint)
        return "_".join([ref.repo_id.split("/")[1], *ref.path.split("/")]).strip("_")
    where = str(Path(checkpoint).expanduser().resolve())
    return f"{Path(checkpoint).stem}-{hashlib.sha256(where.encode()).hexdigest()[:6]}"


def configured_ratio(context: int, overlap: int | None, ratio: float | None) -> float:
    """The overlap ratio as configured (the original's `overlap_ratio` column): the ratio
    itself, else overlap / context. The overlap used, after rounding to the subsampling
    factor, is the `overlap` column (frames)."""
    if ratio is not None:
        return ratio
    return (overlap or 0) / context


def noise_tag(noise: str, seed: int | None, mode: str = "original") -> str:
    """A file-name-safe tag of a noise spec, seed and mode (folders shortened to their
    name; seed None: the mode's default)."""
    spec = parse_noise(noise)
    snr = f"{spec.low_db:g}" if spec.low_db == spec.high_db else f"{spec.low_db:g}-{spec.high_db:g}"
    where = f"-{spec.folder.name}" if spec.folder is not None else ""
    seed = default_seed(mode) if seed is None else seed
    return f"{spec.kind}{where}-{snr}dB-s{seed}" + ("-exact" if mode == "exact" else "")


DEFAULT_CONTEXT = 2048  # frames, when a checkpoint's config names no training context


def default_context(checkpoint: str | None) -> tuple[int, str]:
    """(context in frames, where it came from) when none is given: the resolved
    checkpoint's training context (`checkpoints.context`), as the original's eval/run.py
    (`-seq -1`); DEFAULT_CONTEXT if its config does not say."""
    from lcasr_jax.checkpoints.context import training_context

    if checkpoint is None:
        from lcasr_jax.checkpoints.shipped import resolve_default_model

        checkpoint = str(resolve_default_model())
    found = training_context(checkpoint)
    if found is None:
        return DEFAULT_CONTEXT, (f"{DEFAULT_CONTEXT} frames (the checkpoint's config names "
                                 "no context)")
    return found, f"{found} frames (the checkpoint's training context)"


def run_stem(run_info: dict, tag: str = "") -> str:
    """File stem of a run's outputs: unique per (data dir, split, name, mode, seq_len,
    overlap, repeat, `tag` of the decoder and noise, checkpoint), so two data dirs or two
    checkpoints evaluated into one --out keep both. It is the rows' `run` identity."""
    data = Path(run_info["data_dir"])
    digest = hashlib.sha256(f"{data}\0{run_info['checkpoint']}".encode()).hexdigest()[:6]
    repeat = f"_r{run_info['repeat']}" if run_info["repeat"] != 1 else ""
    return (f"{run_info['dataset']}_{run_info['split']}_{run_info['name']}_"
            f"{run_info['evaluation_mode']}_{run_info['seq_len']}_{run_info['overlap']}"
            f"{repeat}{tag}_{data.stem}-{digest}")


def run_job(job: EvalJob, before_write: Callable[[EvalResult], None] | None = None
            ) -> JobResult:
    """Evaluate `job`; its files are written (and paths returned) on process 0 only, after
    `before_write(result)` (the command prints the WER there: a write that fails, e.g. on a
    full disk, does not lose it). The output folders are checked for being writable and
    having room before anything is loaded."""
    maybe_initialize_distributed()
    noise_tag(job.noise, job.noise_seed, job.noise_mode)  # a bad spec fails first
    if Hosts.current().main:
        check_writable_dir(job.out, "--out")
        if job.results_table is not None:
            check_writable_dir(Path(job.results_table).absolute().parent,
                               "--results-table's folder")
    resolved = None if job.checkpoint is None else resolve_checkpoint(job.checkpoint)
    recordings = load_dataset(job.dataset, job.data_dir, job.split)[: job.limit]
    context = job.context
    if context is None:
        context, source = default_context(resolved and str(resolved))
        if job.progress:
            print(f"--seq-len not given: {source}", file=sys.stderr)
    model, variables, checkpoint = load_model(resolved and str(resolved), job.dtype)
    checkpoint = job.checkpoint or checkpoint  # results name hub models by their hf:// name
    factor = model.config.subsampling_factor
    overlap = overlap_frames(context, job.overlap, job.overlap_ratio, factor)
    seed = default_seed(job.noise_mode) if job.noise_seed is None else job.noise_seed
    settings = EvalSettings(job.mode, context, overlap, job.batch_size, job.max_seq_len,
                            resampler=job.resampler, decoding=job.decoding, noise=job.noise,
                            noise_seed=seed, loss=job.loss, noise_mode=job.noise_mode,
                            loss_targets=job.loss_targets)
    result = evaluate(recordings, model, variables, settings, progress=job.progress)
    name = job.name or run_name(checkpoint)
    noisy = job.noise != "none"
    run_info = {"dataset": job.dataset, "split": job.split, "name": name,
                "checkpoint": str(checkpoint), "repeat": job.repeat, "seq_len": context,
                "overlap_ratio": configured_ratio(context, job.overlap, job.overlap_ratio),
                "model_class": "SCConformerXL",
                "evaluation_mode": job.mode, "overlap": overlap, "noise": job.noise,
                "noise_seed": seed if noisy else None,
                "noise_mode": job.noise_mode if noisy else None,
                "loss_targets": job.loss_targets if job.loss else None}
    run_info["data_dir"] = str(Path(job.data_dir).absolute())
    decoding = job.decoding
    tag = "" if decoding.kind != "beam" else (  # greedy and beam runs do not overwrite
        f"_beam{decoding.beam_width}" + ("_lm" if decoding.kenlm else ""))
    if settings.noise != "none":
        tag += "_" + noise_tag(settings.noise, settings.noise_seed, settings.noise_mode)
    if settings.loss and settings.loss_targets != "original":
        tag += f"_loss-{settings.loss_targets}"
    stem = run_stem(run_info, tag)
    if not Hosts.current().main:
        return JobResult(result, None, None)
    if before_write is not None:
        before_write(result)
    table = job.results_table or Path(job.out) / "results.csv"
    csv_path, _ = report.write_run(Path(job.out), stem, result, run_info, table)
    return JobResult(result, csv_path, table)
