"""`lcasr-jax eval`: long-form WER of a checkpoint on a test set (and `lcasr-jax transcribe`:
`TRANSCRIBE_HELP`); each `main` parses its flags and calls `eval.job` / `eval.transcribe`.

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
from lcasr_jax.decode import DECODERS, DecoderSettings
from lcasr_jax.eval.loss import LOSS_TARGETS
from lcasr_jax.eval.noise import add_noise_args
from lcasr_jax.eval.windows import MAX_SEQ_LEN, MODES

TRANSCRIBE_HELP = """`lcasr-jax transcribe AUDIO...`: transcripts with word times (txt, json, srt).

Each file is decoded whole with the moving-window mode (default: 2048-frame context,
87.5% overlap). Output goes to stdout, or to <out-dir>/<name>.<format>: the audio's stem,
or, for inputs whose stems collide (a/take.wav b/take.wav, take.wav take.flac), their paths
from the common folder joined with '__' (a__take.wav, b__take.wav).
"""


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
                   "eval/run.py (-seq -1), else 2048")
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


# The settings' fields (`EvalSettings`, `EvalJob`) as these commands' flags spell them.
FLAGS = {"context": "--seq-len", "overlap": "--overlap", "overlap_ratio": "--overlap-ratio",
         "batch_size": "--batch-size", "max_seq_len": "--max-seq-len"}


def flagged(error: BaseException) -> str:
    """An error's message, a setting's field named by its flag."""
    return error.named(FLAGS) if isinstance(error, validate.SettingError) else str(error)


def job(args: argparse.Namespace):
    """The `eval.job.EvalJob` of parsed `lcasr-jax eval` flags."""
    from lcasr_jax.eval.job import EvalJob

    return EvalJob(args.dataset, args.data_dir, args.split, args.checkpoint, args.dtype,
                   args.batch_size, args.resampler, decoder_settings(args), args.seq_len,
                   args.overlap, args.overlap_ratio, args.mode, args.max_seq_len, args.noise,
                   args.noise_seed, args.loss, args.limit, args.name, args.repeat, args.out,
                   args.results_table, progress=not args.quiet, noise_mode=args.noise_mode,
                   loss_targets=args.loss_targets)


def main(argv: list[str] | None = None) -> int:
    from lcasr_jax.eval.job import run_job

    args = validate.parse_args(parser(), argv)
    try:
        done = run_job(job(args), before_write=print_summary)
    except (OSError, ValueError, ImportError, RuntimeError) as e:
        print(f"lcasr-jax eval: error: {flagged(e)}", file=sys.stderr)
        return 1
    if done.csv_path is None:  # not process 0
        return 0
    print(f"wrote {done.csv_path} and appended to {done.table}")
    return 0


def print_summary(result) -> None:
    """The overall WER (and loss) of an evaluation, on stdout (before its files are
    written: a write that fails does not lose the numbers)."""
    o = result.overall
    print(f"WER {o.wer:.4f} (ins {o.ins_rate:.4f} del {o.del_rate:.4f} sub {o.sub_rate:.4f}) "
          f"over {o.words} words, {len(result.recordings)} recordings, "
          f"{result.wall_seconds:.1f} s", flush=True)
    if result.loss is not None:
        row = result.loss.as_row()
        print(f"CTC loss per token {row['loss']:.4f} over {row['loss_tokens']} reference tokens "
              f"(own greedy output: {row['self_loss']:.4f} over {row['self_loss_tokens']})",
              flush=True)


def transcribe_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lcasr-jax transcribe", description=TRANSCRIBE_HELP)
    p.add_argument("audio", nargs="+", help="audio files (wav, flac, mp3, ogg, sph)")
    add_model_args(p)
    p.add_argument("--format", choices=("txt", "json", "srt"), default="txt")
    p.add_argument("--out-dir", type=Path, help="write <stem>.<format> files here")
    p.add_argument("--seq-len", type=int, default=2048, help="context in frames (10 ms)")
    p.add_argument("--overlap-ratio", type=float, default=0.875)
    p.add_argument("--mode", choices=MODES, default="averaged_moving_window")
    p.add_argument("--quiet", action="store_true")
    return p


def transcribe_main(argv: list[str] | None = None) -> int:
    from lcasr_jax.checkpoints.load import load_model
    from lcasr_jax.eval import transcribe
    from lcasr_jax.eval.runner import EvalSettings
    from lcasr_jax.eval.windows import overlap_frames

    args = validate.parse_args(transcribe_parser(), argv)
    try:
        decoding = decoder_settings(args)
        transcribe.check_audio_paths(args.audio)
        if args.out_dir is not None:
            transcribe.check_out_dir(args.out_dir)
        model, variables, _ = load_model(args.checkpoint, args.dtype)
        overlap = overlap_frames(args.seq_len, None, args.overlap_ratio,
                                 model.config.subsampling_factor)
        EvalSettings(args.mode, args.seq_len, overlap, args.batch_size).validate(
            model.config.subsampling_factor)  # out-of-range settings: before any file
        transcribe.output_names(args.audio)  # distinct, or refused before any work
    except (OSError, ValueError, ImportError, RuntimeError) as e:
        print(f"lcasr-jax transcribe: error: {flagged(e)}", file=sys.stderr)
        return 1
    failed = transcribe.write_transcripts(
        args.audio, model, variables, args.format, args.out_dir, args.seq_len, overlap,
        args.mode, args.batch_size, progress=not args.quiet, resampler=args.resampler,
        decoding=decoding)
    if failed:
        print(f"lcasr-jax transcribe: {len(failed)} of {len(args.audio)} files not "
              f"transcribed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
