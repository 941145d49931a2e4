"""`lcasr-jax analyze`: how much context the model uses.

  analyze attention    attended distance per layer and head (npz, CSV, PNGs)
  analyze attribution  context attribution matrices (npz, CSV, PNG)
  analyze figures      WER against SNR and loss against context from results tables

Examples:
  lcasr-jax analyze attention --dataset synth --data-dir runs/demo/data --seq-len 4096
  lcasr-jax analyze attribution --audio talk.wav --segment 1000 --max-seconds 120
  lcasr-jax analyze figures runs/noise/results.csv --out runs/figures
Inputs are audio files (--audio) or a dataset (--dataset/--data-dir, e.g. 'manifest');
--noise SPEC corrupts their audio first, with eval --noise's specs (lcasr_jax/eval/noise.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
    p.add_argument("--noise", default="none", help="corrupt the audio first, as eval --noise: "
                   "none | gaussian:SNR[:HIGH] | background:FOLDER:SNR[:HIGH] (dB)")
    p.add_argument("--noise-seed", type=int, default=0,
                   help="with each recording id, seeds its noise (as eval --noise-seed)")
    p.add_argument("--quiet", action="store_true")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lcasr-jax analyze", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("attention", help="attended distance per layer and head")
    _add_inputs(a)
    a.add_argument("--seq-len", type=int, default=4096, help="window in frames (10 ms)")
    a.add_argument("--windows", type=int, default=1, help="windows per recording")
    a.add_argument("--full-max-tokens", type=int, default=512,
                   help="keep the full probabilities of the first window up to this length")
    a.add_argument("--out", type=Path, default=Path("runs/analysis/attention"))
    b = sub.add_parser("attribution", help="context attribution matrices")
    _add_inputs(b)
    b.add_argument("--segment", "--window", type=int, default=1000, dest="segment",
                   help="attribution segment in frames (the original's window)")
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
                  args.noise, args.noise_seed, progress=not args.quiet)


def main(argv: list[str] | None = None) -> int:
    from lcasr_jax.analysis import runs

    args = parser().parse_args(argv)
    try:
        if args.what == "attention":
            written = runs.run_attention(inputs(args), args.seq_len, args.windows,
                                         args.full_max_tokens, args.out)
        elif args.what == "attribution":
            written = runs.run_attribution(inputs(args), args.segment, args.seq_len, args.out)
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
