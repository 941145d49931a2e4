"""`lcasr-jax plot`: the paper's figures from results tables and analysis arrays.

Results tables (ours, a sweep's or the original's eval/results/*.csv; overall rows, repeats
averaged as the original's notebook does, `figures.summary`):
  --figure panels      WER and its reduction against context, one column per dataset, with
                       summary.md and summary.csv beside the figure (the default)
  --figure figure1     the paper's figure 1: reduction from 10 s, datasets as lines
  --figure sizes | heads | positions   the paper's comparisons (panels, the paper's names)
  --figure noise       reduction from 10 s against context, one line per SNR
  --figure loss        per-token CTC loss against context (tables of `eval --loss`)
Analysis arrays (`lcasr-jax analyze`):
  --figure attention   attention.npz: attended distance per layer, and heat maps
  --figure attribution attribution.npz: matrix of one recording and the curve by distance
Every figure is written as PNG (200 dpi) with PDF and SVG beside it.

Examples:
  lcasr-jax plot runs/paper/figure1/results.csv --figure figure1 --out figs/figure1.png
  lcasr-jax plot runs/noise/*.csv --figure noise --dataset rev16 --out figs/noise.png
  lcasr-jax plot runs/analysis/attribution.npz --figure attribution --out figs/attr.png
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lcasr_jax import validate
from lcasr_jax.eval import report
from lcasr_jax.figures import context, summary

TABLE_FIGURES = (*context.KINDS, "noise", "loss")
ARRAY_FIGURES = ("attention", "attribution")


def read_rows(tables: Sequence[Path], dataset: str | None = None,
              split: str | None = None) -> list[dict[str, str]]:
    """Rows of the results tables (optionally one dataset / split); each row also gets
    `table`, its file's stem, where it has none."""
    rows = []
    for table in tables:
        if not Path(table).is_file():
            raise FileNotFoundError(f"{table}: results table not found")
        table_rows = report.read_table(table)
        try:
            summary.aggregate(table_rows)  # validates the columns and values
        except KeyError as e:
            raise ValueError(f"{table}: not a results table (missing column {e})") from None
        except ValueError as e:
            raise ValueError(f"{table}: {e}") from None
        rows += [{"table": Path(table).stem, **r} for r in table_rows]
    return [r for r in rows if (not dataset or r.get("dataset") == dataset)
            and (not split or r.get("split") == split)]


def _labels(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--label {pair!r}: expected NAME=LABEL")
        out[key] = value
    return out


def _arrays(path: Path) -> dict:
    import numpy as np

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: arrays not found")
    try:
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not an .npz of an analysis ({e})") from None


def draw(args) -> tuple[Path, ...]:
    from lcasr_jax.figures import analysis, noise, style

    labels = _labels(args.label)
    if args.figure in ARRAY_FIGURES:
        if len(args.inputs) != 1:
            raise ValueError(f"--figure {args.figure}: give one .npz file")
        arrays = _arrays(args.inputs[0])
        if args.figure == "attention":
            return tuple(analysis.attention_figures(arrays, args.out, args.title))
        return tuple(style.outputs(analysis.attribution_figure(arrays, args.out,
                                                               args.recording, args.title)))
    rows = read_rows(args.inputs, args.dataset, args.split)
    if args.figure in context.KINDS:
        return context.write_report(rows, args.out, args.title, args.figure, labels)
    if args.figure == "noise":
        return tuple(style.outputs(noise.reduction_per_snr(rows, args.out, args.title,
                                                          labels)))
    return tuple(style.outputs(analysis.loss_vs_context(rows, args.out, args.title)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lcasr-jax plot", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", type=Path, help="results CSV files, or one .npz")
    p.add_argument("--figure", choices=TABLE_FIGURES + ARRAY_FIGURES, default="panels")
    p.add_argument("--dataset", help="only this dataset (results tables)")
    p.add_argument("--split", help="only this split (results tables)")
    p.add_argument("--label", action="append", default=[], metavar="NAME=LABEL",
                   help="legend label of a run name (repeatable)")
    p.add_argument("--recording", help="attribution: the recording to draw (default: first)")
    p.add_argument("--title", default="")
    p.add_argument("--out", type=Path, default=Path("runs/eval/wer_vs_context.png"),
                   help="the figure's PNG (PDF and SVG beside it)")
    args = p.parse_args(argv)
    return validate.report("lcasr-jax plot", lambda: draw(args),
                           (ValueError, FileNotFoundError, KeyError))


if __name__ == "__main__":
    sys.exit(main())
