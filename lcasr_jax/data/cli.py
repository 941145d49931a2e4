"""`lcasr-jax data ...`: build the TFDS dataset, generate the synthetic corpus, convert
alignments, inspect recordings and datasets, precompute the training feature cache."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lcasr_jax.data.synth import cli as synth_cli


def _build(args) -> int:
    from lcasr_jax.data.tfds_builder import build_dataset, source_splits

    splits = source_splits(args.src)
    print(f"{args.src}: " + ", ".join(f"{k}: {len(v)} recordings" for k, v in splits.items()))
    built = build_dataset(args.src, args.out, overwrite=args.overwrite, workers=args.workers,
                          resampler=args.resampler)
    print(f"dataset written to {built}")
    return 0


def _convert(args) -> int:
    from lcasr_jax.data.alignments import convert

    rec = convert(args.alignment, args.audio, args.out, fmt=args.format, rec_id=args.id,
                  tier=args.tier)
    print(f"{args.out}: {len(rec.words)} words, {rec.duration:.2f} s")
    return 0


def _inspect(args) -> int:
    from lcasr_jax.data.describe import describe

    print(describe(Path(args.path), args.limit))
    return 0


def _cache(args) -> int:
    from lcasr_jax.data.sources.feature_cache import precompute

    if not Path(args.dir).is_dir():
        raise FileNotFoundError(f"{args.dir}: no such folder")
    n = precompute(args.dir, args.workers, args.resampler)
    print(f"encoded {n} recordings under {args.dir}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lcasr-jax data", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="make the TFDS dataset from a folder of recordings")
    b.add_argument("--src", required=True, help="folder of recordings (split sub-folders)")
    b.add_argument("--out", required=True, help="TFDS data_dir")
    b.add_argument("--workers", type=int, default=1)
    b.add_argument("--overwrite", action="store_true")
    b.add_argument("--resampler", choices=["soxr", "torchaudio"], default="soxr",
                   help="torchaudio: the original's resampler (identical features; use it "
                        "for the paper configs' data)")
    synth = sub.add_parser("synth", help="generate the synthetic long-form corpus",
                           description=synth_cli.DESCRIPTION)
    synth_cli.add_arguments(synth)
    c = sub.add_parser("convert", help="podcast JSON / CTM / TextGrid -> recording JSON")
    c.add_argument("alignment")
    c.add_argument("audio")
    c.add_argument("out")
    c.add_argument("--format", choices=["podcast", "ctm", "textgrid"])
    c.add_argument("--id")
    c.add_argument("--tier")
    i = sub.add_parser("inspect", help="summarise a recording JSON or a built dataset folder")
    i.add_argument("path")
    i.add_argument("--limit", type=int, default=1000)
    k = sub.add_parser("cache", help="encode every recording JSON's features beside it "
                       "(what the recordings source reads), skipping fresh ones")
    k.add_argument("dir", help="folder of recording JSONs + audio (searched recursively)")
    k.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    k.add_argument("--resampler", choices=["soxr", "torchaudio"], default="soxr",
                   help="torchaudio: the original's resampler (data.resampler of the paper "
                        "configs)")
    from lcasr_jax import validate

    args = validate.parse_args(p, argv)
    if args.cmd == "synth":
        return synth_cli.command(args)
    try:
        return {"build": _build, "convert": _convert, "inspect": _inspect,
                "cache": _cache}[args.cmd](args)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
