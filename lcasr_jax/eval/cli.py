"""`lcasr-jax eval`: long-form WER of a checkpoint on a test set.

Example (the paper's setting: overlap 0.875 of the context):
  lcasr-jax eval --checkpoint model.pt --dataset tedlium --data-dir ~/TEDLIUM_release1 \
      --split test --seq-len 360000 --overlap-ratio 0.875 --mode averaged_moving_window
Defaults are those of the original's eval/run.py: the context the checkpoint was trained
at (its config's audio_chunking.size; `-seq -1` there) and no overlap; the paper's runs
(its eval_manager) used --overlap-ratio 0.875.
Writes <out>/<stem>.csv (the original's eval/results columns) and <stem>.json
(transcripts), and appends the rows to the results table (<out>/results.csv, locked while
appending). The stem names the dataset, split, run name, mode, seq-len, overlap and a tag
of the data dir, so runs on other data never replace each other's files.

Multi-host: run the same command on every host with LCASR_DISTRIBUTED=1 (or
JAX_COORDINATOR_ADDRESS) where jax.distributed.initialize() detects the cluster (SLURM,
Open MPI, ...); each process reads its share of the recordings and process 0 writes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lcasr_jax import validate
from lcasr_jax.data.audio import DEFAULT_RESAMPLER, RESAMPLERS
from lcasr_jax.decode import DECODERS, DecoderSettings, check_classes
from lcasr_jax.eval.loss import LOSS_TARGETS
from lcasr_jax.eval.windows import MAX_SEQ_LEN, MODES

DEFAULT_SEQ_LEN = 2048  # frames, when a checkpoint's config names no training context


def overlap_frames(seq_len: int, overlap: int | None, ratio: float | None, factor: int) -> int:
    """Overlap in frames: given directly, or int(seq_len * ratio) (as the original's
    eval_manager) rounded down to a multiple of the subsampling factor."""
    if overlap is not None:
        return overlap
    if ratio is None:
        return 0
    validate.check("--overlap-ratio", ratio, validate.fraction())
    return int(seq_len * ratio) // factor * factor


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="released .pt, converted model dir, a folder "
                   "holding one checkpoint, or hf://OWNER/REPO/FOLDER[@REVISION] "
                   "(default: the shipped model)")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--batch-size", type=int, default=8, help="windows per model call")
    p.add_argument("--resampler", choices=RESAMPLERS, default=DEFAULT_RESAMPLER,
                   help="for audio not at 16 kHz: torchaudio (the original's Resample, "
                   "default) or soxr")
    p.add_argument("--decoder", choices=DECODERS, default="greedy",
                   help="greedy (the original's eval/run.py) or beam (pyctcdecode, as its "
                   "per-dataset scripts)")
    p.add_argument("--beam-width", type=int, default=1, help="beam decoder's width (the "
                   "original's scripts: 1)")
    p.add_argument("--kenlm", help="KenLM n-gram (.arpa or binary) for the beam decoder")
    p.add_argument("--lm-alpha", type=float, help="LM weight (default: pyctcdecode's 0.5)")
    p.add_argument("--lm-beta", type=float, help="word insertion bonus (default: 1.5)")


def add_noise_args(p: argparse.ArgumentParser) -> None:
    """--noise, --noise-mode, --noise-seed (eval and analyze)."""
    from lcasr_jax.eval.noise import NOISE_MODES, ORIGINAL_SEED, SNR_RANGE_DB

    lo, hi = SNR_RANGE_DB
    p.add_argument("--noise", default="none",
                   help="corrupt the audio: none | gaussian:SNR | gaussian:LOW:HIGH | "
                   f"background:PATH:SNR[:HIGH] (dB in [{lo:g}, {hi:g}]; PATH a sound file "
                   "or folder; see lcasr_jax/eval/noise.py)")
    p.add_argument("--noise-mode", choices=NOISE_MODES, default="original",
                   help="original: audiomentations reseeded before every recording, as the "
                   "original's noise scripts (one SNR draw and noise sequence shared by all "
                   "recordings, SNR on all samples); exact: per-recording draws, SNR exact "
                   "on the valid samples")
    p.add_argument("--noise-seed", type=int,
                   help=f"noise seed (default: {ORIGINAL_SEED}, the original's, in original "
                   "mode; 0 in exact mode, where it seeds each recording with its id)")


def decoder_settings(args: argparse.Namespace) -> DecoderSettings:
    """DecoderSettings from --decoder/--beam-width/--kenlm/--lm-alpha/--lm-beta."""
    return DecoderSettings(args.decoder, args.beam_width, args.kenlm, args.lm_alpha,
                           args.lm_beta)


def run_name(checkpoint: str) -> str:
    """Default run name: the file's stem, or REPO_FOLDER for hub names."""
    from lcasr_jax.checkpoints.hub import is_hub_name, parse_hub_name

    if is_hub_name(checkpoint):
        ref = parse_hub_name(checkpoint)
        return "_".join([ref.repo_id.split("/")[1], *ref.path.split("/")]).strip("_")
    return Path(checkpoint).stem


def load(checkpoint: str | None, dtype: str):
    """(model, variables, checkpoint path) ; None -> the shipped default model. Raises
    (naming the checkpoint) if its output classes do not fit the shipped tokenizer."""
    import jax.numpy as jnp

    from lcasr_jax import load_pretrained

    if checkpoint is None:
        from lcasr_jax.checkpoints.shipped import resolve_default_model

        checkpoint = str(resolve_default_model())
    model, variables = load_pretrained(checkpoint, dtype=getattr(jnp, dtype))
    check_classes(model.config.num_classes, source=str(checkpoint))
    return model, variables, checkpoint


def noise_tag(noise: str, seed: int | None, mode: str = "original") -> str:
    """A file-name-safe tag of a noise spec, seed and mode (folders shortened to their
    name; seed None: the mode's default)."""
    from lcasr_jax.eval.noise import default_seed, parse_noise

    spec = parse_noise(noise)
    snr = f"{spec.low_db:g}" if spec.low_db == spec.high_db else f"{spec.low_db:g}-{spec.high_db:g}"
    where = f"-{spec.folder.name}" if spec.folder is not None else ""
    seed = default_seed(mode) if seed is None else seed
    return f"{spec.kind}{where}-{snr}dB-s{seed}" + ("-exact" if mode == "exact" else "")


def default_seq_len(checkpoint: str | None) -> tuple[int, str]:
    """(context in frames, where it came from) when --seq-len is not given: the resolved
    checkpoint's training context (`checkpoints.context`), as the original's eval/run.py;
    DEFAULT_SEQ_LEN if its config does not say."""
    from lcasr_jax.checkpoints.context import training_context

    if checkpoint is None:
        from lcasr_jax.checkpoints.shipped import resolve_default_model

        checkpoint = str(resolve_default_model())
    found = training_context(checkpoint)
    if found is None:
        return DEFAULT_SEQ_LEN, (f"{DEFAULT_SEQ_LEN} frames (the checkpoint's config names "
                                 "no context)")
    return found, f"{found} frames (the checkpoint's training context)"


def parser() -> argparse.ArgumentParser:
    from lcasr_jax.eval.datasets import READERS

    p = argparse.ArgumentParser(prog="lcasr-jax eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--dataset", required=True, choices=sorted(READERS))
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--split", default="test")
    p.add_argument("--seq-len", type=int, help="context in frames (10 ms); default: the "
                   "checkpoint's training context (audio_chunking.size), as the original's "
                   f"eval/run.py (-seq -1), else {DEFAULT_SEQ_LEN}")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--overlap", type=int, help="overlap in frames (default 0, as the "
                   "original's eval/run.py)")
    g.add_argument("--overlap-ratio", type=float, help="overlap as a fraction of seq-len "
                   "(the paper: 0.875, the original's eval_manager default)")
    p.add_argument("--mode", choices=MODES, default="averaged_moving_window")
    p.add_argument("--max-seq-len", type=int, default=MAX_SEQ_LEN,
                   help="window length in windowed_attention mode (frames)")
    add_noise_args(p)
    p.add_argument("--loss", action="store_true",
                   help="add per-token CTC loss columns (vs reference and own output)")
    p.add_argument("--loss-targets", choices=LOSS_TARGETS, default="original",
                   help="original: reference = raw lower-cased text (spotify_loss), "
                   "self = the tokenizer's encoding of the decoded text, unk removed "
                   "(rev16_loss); normalised: the normalised reference and the greedy "
                   "path's tokens")
    p.add_argument("--limit", type=int, help="evaluate only the first N recordings")
    p.add_argument("--name", help="run name in the results (default: checkpoint stem)")
    p.add_argument("--repeat", type=int, default=1, help="repeat id recorded in results")
    p.add_argument("--out", type=Path, default=Path("runs/eval"))
    p.add_argument("--results-table", type=Path, help="default: <out>/results.csv")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def run_stem(run_info: dict, tag: str = "") -> str:
    """File stem of a run's outputs: unique per (data dir, split, name, mode, seq_len,
    overlap, repeat, `tag` of the decoder and noise), so two data dirs evaluated into one
    --out keep both."""
    import hashlib

    data = Path(run_info["data_dir"])
    digest = hashlib.sha256(str(data).encode()).hexdigest()[:6]
    repeat = f"_r{run_info['repeat']}" if run_info["repeat"] != 1 else ""
    return (f"{run_info['dataset']}_{run_info['split']}_{run_info['name']}_"
            f"{run_info['evaluation_mode']}_{run_info['seq_len']}_{run_info['overlap']}"
            f"{repeat}{tag}_{data.stem}-{digest}")


def run(args: argparse.Namespace):
    """Evaluate; returns (result, csv path, results table), paths None except on process 0."""
    from lcasr_jax.checkpoints.hub import resolve_checkpoint
    from lcasr_jax.distributed import maybe_initialize_distributed
    from lcasr_jax.eval import report
    from lcasr_jax.eval.datasets import load_dataset
    from lcasr_jax.eval.hosts import Hosts
    from lcasr_jax.eval.noise import default_seed
    from lcasr_jax.eval.runner import EvalSettings, evaluate

    maybe_initialize_distributed()
    decoding = decoder_settings(args)
    noise_tag(args.noise, args.noise_seed, args.noise_mode)  # a bad spec fails first
    resolved = None if args.checkpoint is None else resolve_checkpoint(args.checkpoint)
    recordings = load_dataset(args.dataset, args.data_dir, args.split)[: args.limit]
    if args.seq_len is None:
        args.seq_len, source = default_seq_len(resolved and str(resolved))
        if not args.quiet:
            print(f"--seq-len not given: {source}", file=sys.stderr)
    model, variables, checkpoint = load(resolved and str(resolved), args.dtype)
    checkpoint = args.checkpoint or checkpoint  # results name hub models by their hf:// name
    factor = model.config.subsampling_factor
    overlap = overlap_frames(args.seq_len, args.overlap, args.overlap_ratio, factor)
    noise_seed = default_seed(args.noise_mode) if args.noise_seed is None else args.noise_seed
    settings = EvalSettings(args.mode, args.seq_len, overlap, args.batch_size,
                            args.max_seq_len, resampler=args.resampler, decoding=decoding,
                            noise=args.noise, noise_seed=noise_seed, loss=args.loss,
                            noise_mode=args.noise_mode, loss_targets=args.loss_targets)
    result = evaluate(recordings, model, variables, settings, progress=not args.quiet)
    name = args.name or run_name(checkpoint)
    run_info = {"dataset": args.dataset, "split": args.split, "name": name,
                "checkpoint": str(checkpoint), "repeat": args.repeat, "seq_len": args.seq_len,
                "overlap_ratio": overlap / args.seq_len, "model_class": "SCConformerXL",
                "evaluation_mode": args.mode, "overlap": overlap, "noise": args.noise,
                "noise_seed": noise_seed if args.noise != "none" else None,
                "noise_mode": args.noise_mode if args.noise != "none" else None,
                "loss_targets": args.loss_targets if args.loss else None}
    run_info["data_dir"] = str(Path(args.data_dir).absolute())
    tag = "" if decoding.kind != "beam" else (  # greedy and beam runs do not overwrite
        f"_beam{decoding.beam_width}" + ("_lm" if decoding.kenlm else ""))
    if settings.noise != "none":
        tag += "_" + noise_tag(settings.noise, settings.noise_seed, settings.noise_mode)
    if settings.loss and settings.loss_targets != "original":
        tag += f"_loss-{settings.loss_targets}"
    stem = run_stem(run_info, tag)
    if not Hosts.current().main:
        return result, None, None
    table = args.results_table or args.out / "results.csv"
    csv_path, _ = report.write_run(args.out, stem, result, run_info, table)
    return result, csv_path, table


def main(argv: list[str] | None = None) -> int:
    args = validate.parse_args(parser(), argv)
    try:
        result, csv_path, table = run(args)
    except (OSError, ValueError, ImportError, RuntimeError) as e:
        print(f"lcasr-jax eval: error: {e}", file=sys.stderr)
        return 1
    if csv_path is None:  # not process 0
        return 0
    o = result.overall
    print(f"WER {o.wer:.4f} (ins {o.ins_rate:.4f} del {o.del_rate:.4f} sub {o.sub_rate:.4f}) "
          f"over {o.words} words, {len(result.recordings)} recordings, "
          f"{result.wall_seconds:.1f} s")
    if result.loss is not None:
        row = result.loss.as_row()
        print(f"CTC loss per token {row['loss']:.4f} over {row['loss_tokens']} reference tokens "
              f"(own greedy output: {row['self_loss']:.4f} over {row['self_loss_tokens']})")
    print(f"wrote {csv_path} and appended to {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
