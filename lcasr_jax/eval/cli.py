"""`lcasr-jax eval`: long-form WER of a checkpoint on a test set.

Example:
  lcasr-jax eval --checkpoint model.pt --dataset tedlium --data-dir ~/TEDLIUM_release1 \
      --split test --seq-len 360000 --overlap-ratio 0.875 --mode averaged_moving_window
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
from lcasr_jax.eval.windows import MAX_SEQ_LEN, MODES


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


def noise_tag(noise: str, seed: int) -> str:
    """A file-name-safe tag of a noise spec and seed (folders shortened to their name)."""
    from lcasr_jax.eval.noise import parse_noise

    spec = parse_noise(noise)
    snr = f"{spec.low_db:g}" if spec.low_db == spec.high_db else f"{spec.low_db:g}-{spec.high_db:g}"
    where = f"-{spec.folder.name}" if spec.folder is not None else ""
    return f"{spec.kind}{where}-{snr}dB-s{seed}"


def parser() -> argparse.ArgumentParser:
    from lcasr_jax.eval.datasets import READERS

    p = argparse.ArgumentParser(prog="lcasr-jax eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--dataset", required=True, choices=sorted(READERS))
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--split", default="test")
    p.add_argument("--seq-len", type=int, default=2048, help="context in frames (10 ms)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--overlap", type=int, help="overlap in frames")
    g.add_argument("--overlap-ratio", type=float, help="overlap as a fraction of seq-len")
    p.add_argument("--mode", choices=MODES, default="averaged_moving_window")
    p.add_argument("--max-seq-len", type=int, default=MAX_SEQ_LEN,
                   help="window length in windowed_attention mode (frames)")
    p.add_argument("--noise", default="none",
                   help="corrupt the audio: none | gaussian:SNR | gaussian:LOW:HIGH | "
                   "background:FOLDER:SNR[:HIGH] (dB; see lcasr_jax/eval/noise.py)")
    p.add_argument("--noise-seed", type=int, default=0,
                   help="with each recording id, seeds its noise (same audio for every model)")
    p.add_argument("--loss", action="store_true",
                   help="add per-token CTC loss columns (vs reference and own greedy output)")
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
    from lcasr_jax.eval.runner import EvalSettings, evaluate

    maybe_initialize_distributed()
    decoding = decoder_settings(args)
    noise_tag(args.noise, args.noise_seed)  # a bad spec fails before anything is loaded
    if Hosts.current().main:  # where the results go: writable, with room, before the work
        from lcasr_jax.files import check_writable_dir

        check_writable_dir(args.out, "--out")
        if args.results_table is not None:
            check_writable_dir(Path(args.results_table).absolute().parent,
                               "--results-table's folder")
    resolved = None if args.checkpoint is None else resolve_checkpoint(args.checkpoint)
    recordings = load_dataset(args.dataset, args.data_dir, args.split)[: args.limit]
    model, variables, checkpoint = load(resolved and str(resolved), args.dtype)
    checkpoint = args.checkpoint or checkpoint  # results name hub models by their hf:// name
    factor = model.config.subsampling_factor
    overlap = overlap_frames(args.seq_len, args.overlap, args.overlap_ratio, factor)
    settings = EvalSettings(args.mode, args.seq_len, overlap, args.batch_size,
                            args.max_seq_len, resampler=args.resampler, decoding=decoding,
                            noise=args.noise, noise_seed=args.noise_seed, loss=args.loss)
    result = evaluate(recordings, model, variables, settings, progress=not args.quiet)
    name = args.name or run_name(checkpoint)
    run_info = {"dataset": args.dataset, "split": args.split, "name": name,
                "checkpoint": str(checkpoint), "repeat": args.repeat, "seq_len": args.seq_len,
                "overlap_ratio": overlap / args.seq_len, "model_class": "SCConformerXL",
                "evaluation_mode": args.mode, "overlap": overlap, "noise": args.noise,
                "noise_seed": args.noise_seed}
    run_info["data_dir"] = str(Path(args.data_dir).absolute())
    tag = "" if decoding.kind != "beam" else (  # greedy and beam runs do not overwrite
        f"_beam{decoding.beam_width}" + ("_lm" if decoding.kenlm else ""))
    if settings.noise != "none":
        tag += "_" + noise_tag(settings.noise, settings.noise_seed)
    stem = run_stem(run_info, tag)
    if not Hosts.current().main:
        return result, None, None
    print_summary(result)  # before writing: a write that fails does not lose the numbers
    table = args.results_table or args.out / "results.csv"
    csv_path, _ = report.write_run(args.out, stem, result, run_info, table)
    return result, csv_path, table


def print_summary(result) -> None:
    """The overall WER (and loss) of an evaluation, on stdout."""
    o = result.overall
    print(f"WER {o.wer:.4f} (ins {o.ins_rate:.4f} del {o.del_rate:.4f} sub {o.sub_rate:.4f}) "
          f"over {o.words} words, {len(result.recordings)} recordings, "
          f"{result.wall_seconds:.1f} s", flush=True)
    if result.loss is not None:
        row = result.loss.as_row()
        print(f"CTC loss per token {row['loss']:.4f} over {row['loss_tokens']} reference tokens "
              f"(own greedy output: {row['self_loss']:.4f} over {row['self_loss_tokens']})",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    args = validate.parse_args(parser(), argv)
    try:
        result, csv_path, table = run(args)
    except (OSError, ValueError, ImportError, RuntimeError) as e:
        print(f"lcasr-jax eval: error: {e}", file=sys.stderr)
        return 1
    if csv_path is None:  # not process 0
        return 0
    print(f"wrote {csv_path} and appended to {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
