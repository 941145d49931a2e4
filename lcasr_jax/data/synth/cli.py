"""`lcasr-jax data synth`: generate a synthetic long-form multi-speaker English corpus.

    lcasr-jax data synth --out DIR --hours H --split train|dev|test --seed S [--workers N]

The arguments are added to the `data` command's `synth` sub-parser (`add_arguments`) and
run by `command`; the work is `generate.generate`.
"""

from __future__ import annotations

import argparse
import os
import sys

from .generate import default_text, generate
from .voices import DEFAULT_ENGINES, ENGINE_WEIGHTS, SPLITS

DESCRIPTION = __doc__.split("\n")[0].split(": ", 1)[1]


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--hours", type=float, default=1.0, help="hours of audio to generate")
    ap.add_argument("--split", choices=SPLITS, default="train")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=10.0,
                    help="mean recording length in minutes (each is 0.8-1.2x this, "
                         "rounded up to whole paragraphs)")
    ap.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                    help=f"comma-separated synthesisers from {','.join(ENGINE_WEIGHTS)} "
                         "(festival: Debian festival festvox-kallpc16k festvox-kdlpc16k)")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                    help="processes (default: the usable cores)")
    ap.add_argument("--text", default=default_text(),
                    help="gzip JSON text cache; built from the janeaustenr package if missing")
    ap.add_argument("--prepare-text", action="store_true",
                    help="only build the text cache (to carry it elsewhere) and exit")
    ap.add_argument("--dry", action="store_true",
                    help="speech only (WAV, no speed/formant warp, gain, echo or noise): the "
                         "training pipeline draws those per epoch on the accelerator "
                         "(--config.augment); ~3x faster to make")
    ap.add_argument("--no-progress", action="store_true")


def command(args: argparse.Namespace) -> int:
    if args.prepare_text:
        from .text import load_corpus

        books = load_corpus(args.text)
        print(f"synth: text cache {args.text}: {', '.join(sorted(books))}")
        return 0
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    try:
        generate(args.out, args.hours, split=args.split, seed=args.seed, minutes=args.minutes,
                 engines=engines, workers=args.workers, text=args.text,
                 progress=not args.no_progress, dry=args.dry)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"synth: {e}", file=sys.stderr)
        return 1
    return 0
