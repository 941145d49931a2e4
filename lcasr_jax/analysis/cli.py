"""`lcasr-jax analyze`: how much context the model uses.

  analyze attention    each recording's attention weights in one pass, every layer and
                       head (the original's get_attention_weights), and attended distance
  analyze attribution  context attribution: the original's WER matrix (run_context_
                       attribution.py, 2,048-frame segments) or log-prob drops
  analyze figures      WER against SNR and loss against context from results tables

Examples:
  lcasr-jax analyze attention --dataset synth --data-dir runs/demo/data --limit 1
  lcasr-jax analyze attention --audio talk.wav --capture chunked --seq-len 4096
  lcasr-jax analyze attribution --dataset synth --data-dir runs/demo/data --limit 1
  lcasr-jax analyze attribution --audio talk.wav --measure logp --max-seconds 120
  lcasr-jax analyze figures runs/noise/results.csv --out runs/figures
Inputs are audio files (--audio) or a dataset (--dataset/--data-dir, e.g. 'manifest');
--noise SPEC corrupts their audio first, with eval --noise's specs (lcasr_jax/eval/noise.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lcasr_jax import validate


def _add_inputs(p: argparse.ArgumentParser) -> None:
    from lcasr_jax.eval.datasets import READERS

    p.add_argument("--checkpoint", help="released .pt, converted model dir or "
                   "hf://OWNER/REPO/FOLDER (default: the shipped model)")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--batch-size", type=int, default=8, help="forwards per model call")
    p.add_argument("--audio", nargs="+", help="audio files (instead of a dataset)")
    p.add_argument("--dataset", choices=sorted(READERS))
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, help="only the first N recordings")
    p.add_argument("--max-seconds", type=float, help="crop each recording to this length")
    from lcasr_jax.eval.noise import add_noise_args

    add_noise_args(p)  # as eval's: corrupt the audio first
    p.add_argument("--quiet", action="store_true")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lcasr-jax analyze", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("attention", help="attention weights of every layer and head, and "
                       "attended distance")
    _add_inputs(a)
    a.add_argument("--capture", choices=("recording", "chunked"), default="recording",
                   help="recording: each whole recording in one pass, as the original's "
                   "get_attention_weights; chunked: up to --windows windows of --seq-len")
    a.add_argument("--weights", choices=("scores", "probs", "none"), default="scores",
                   help="per layer, write <out>/weights/<id>_<layer>.<fmt> (1, heads, tokens, "
                   "tokens): pre-softmax scaled scores (the original's), probabilities, or "
                   "nothing (recording capture only)")
    a.add_argument("--weights-format", choices=("pt", "npy"), default="pt",
                   help="pt: bfloat16 torch tensors as the original saves; npy: float32")
    a.add_argument("--seq-len", type=int, default=4096,
                   help="chunked capture: window in frames (10 ms)")
    a.add_argument("--windows", type=int, default=1, help="chunked capture: windows per "
                   "recording")
    a.add_argument("--full-max-tokens", type=int, default=512,
                   help="keep the full probabilities of the first window up to this length")
    a.add_argument("--out", type=Path, default=Path("runs/analysis/attention"))
    b = sub.add_parser("attribution", help="context attribution matrices")
    _add_inputs(b)
    b.add_argument("--segment", "--window", type=int, default=2048, dest="segment",
                   help="attribution segment in frames (the original's --window_size, 2,048)")
    b.add_argument("--measure", choices=("wer", "logp"), default="wer",
                   help="wer: the original's n x (n+1) WER matrix (needs references); logp: "
                   "the unmasked path's log-prob drop (no reference needed)")
    b.add_argument("--seq-len", type=int,
                   help="limit attention as windowed_attention at this context (frames)")
    b.add_argument("--out", type=Path, default=Path("runs/analysis/attribution"))
    f = sub.add_parser("figures", help="WER vs SNR and loss vs context from results tables")
    f.add_argument("tables", nargs="+", type=Path)
    f.add_argument("--noise", default="none", help="loss against context of runs with this "
                   "noise spec (default: clean)")
    f.add_argument("--out", type=Path, default=Path("runs/analysis/figures"))
    return p


def inputs(args: argparse.Namespace):
    """`analysis.runs.Inputs` of the parsed flags."""
    from lcasr_jax.analysis.runs import Inputs

    return Inputs(args.checkpoint, args.dtype, args.batch_size, tuple(args.audio or ()),
                  args.dataset, args.data_dir, args.split, args.limit, args.max_seconds,
                  args.noise, args.noise_seed, progress=not args.quiet,
                  noise_mode=args.noise_mode)


def _check(args) -> None:
    """Raise ValueError naming the first option out of range (beyond validate.CLI_OPTIONS)."""
    rules = {"segment": validate.int_at_least(1), "windows": validate.int_at_least(1),
             "full_max_tokens": validate.int_at_least(0),
             "max_seconds": validate.optional(validate.number_above(0))}
    names = {"segment": "--segment"}
    for dest, rule in rules.items():
        if hasattr(args, dest):
            validate.check(names.get(dest, "--" + dest.replace("_", "-")), getattr(args, dest),
                           rule)


def main(argv: list[str] | None = None) -> int:
    from lcasr_jax.analysis import runs

    args = validate.parse_args(parser(), argv)
    try:
        _check(args)
        if args.what == "attention":
            written = runs.run_attention(inputs(args), args.seq_len, args.windows,
                                         args.full_max_tokens, args.out, args.capture,
                                         args.weights, args.weights_format)
        elif args.what == "attribution":
            written = runs.run_attribution(inputs(args), args.segment, args.seq_len, args.out,
                                           args.measure)
        else:
            written = runs.run_figures(args.tables, args.noise, args.out)
    except (ValueError, FileNotFoundError, ImportError, RuntimeError) as e:
        print(f"lcasr-jax analyze: error: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
