"""`lcasr-jax plot`: the paper's figure and summary tables from results tables.

Reads one or more results CSVs (ours, a sweep's or the original's eval/results/*.csv),
aggregates their overall rows over repeats as the original's notebook does
(`eval.summary`) and writes, next to `--out` (PNG, matplotlib Agg):
  * the figure: one column per dataset; top, WER (%) against context (seconds, log axis),
    mean over repeats with a band of ± one sample standard deviation; bottom, the relative
    WER reduction (%) against the shortest context (the paper's figure 1);
  * summary.md and summary.csv: rows models, columns contexts, per dataset.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from lcasr_jax.data.features import FRAME_SECONDS
from lcasr_jax.eval import report
from lcasr_jax.figures import summary

PANELS_PER_ROW = 4  # datasets side by side before the figure wraps


def figure(points: Sequence[summary.Point], out: Path, title: str = "") -> Path:
    """Write the figure of `points` (see the module doc) to `out` atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not points:
        raise ValueError("nothing to plot (no overall rows match)")
    datasets = list(dict.fromkeys(p.dataset for p in points))
    red = summary.reductions(points)
    cols = min(len(datasets), PANELS_PER_ROW)
    blocks = -(-len(datasets) // cols)
    fig, axes = plt.subplots(2 * blocks, cols, figsize=(4.6 * cols, 6.4 * blocks), dpi=120,
                             squeeze=False)
    for i in range(len(datasets), blocks * cols):  # empty panels of the last row
        axes[2 * (i // cols)][i % cols].set_visible(False)
        axes[2 * (i // cols) + 1][i % cols].set_visible(False)
    for i, dataset in enumerate(datasets):
        top, bottom = axes[2 * (i // cols)][i % cols], axes[2 * (i // cols) + 1][i % cols]
        pts = [p for p in points if p.dataset == dataset]
        for series in sorted({p.series for p in pts}):
            line = [p for p in pts if p.series == series]
            xs = [p.seq_len * FRAME_SECONDS for p in line]
            mean = [100 * p.mean for p in line]
            (drawn,) = top.plot(xs, mean, marker="o", markersize=4, label=series)
            std = [100 * p.std for p in line]
            if not any(math.isnan(s) for s in std):
                top.fill_between(xs, [m - s for m, s in zip(mean, std, strict=True)],
                                 [m + s for m, s in zip(mean, std, strict=True)],
                                 color=drawn.get_color(), alpha=0.2, linewidth=0)
            keys = [(dataset, series, p.seq_len) for p in line]
            bottom.plot([x for x, k in zip(xs, keys, strict=True) if k in red],
                        [red[k] for k in keys if k in red], marker="o", markersize=4,
                        color=drawn.get_color())
        ticks = sorted({p.seq_len for p in pts})
        for ax in (top, bottom):
            ax.set_xscale("log", base=2)
            ax.set_xticks([t * FRAME_SECONDS for t in ticks],
                          [summary.context_label(t) for t in ticks], rotation=45, fontsize=7)
            ax.minorticks_off()
            ax.grid(True, alpha=0.3)
        top.set_title(dataset)
        top.set_ylabel("WER (%), mean ± std over repeats")
        bottom.set_ylabel("WER reduction (%) from shortest")
        bottom.set_xlabel("context")
        top.legend(fontsize=7)
    fig.suptitle(title or "WER against context length")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.png")
    fig.savefig(tmp, metadata={"Software": None})
    plt.close(fig)
    tmp.replace(out)
    return out


def write_report(rows: Sequence[Mapping[str, str]], png: Path, title: str = ""
                 ) -> tuple[Path, Path, Path]:
    """The figure at `png` plus summary.md and summary.csv beside it."""
    try:
        points = summary.aggregate(rows)
    except (KeyError, ValueError) as e:
        raise ValueError(f"not a results table (bad or missing column {e})") from None
    png = figure(points, png, title)
    md, csv_path = png.with_name("summary.md"), png.with_name("summary.csv")
    report.atomic_write(md, summary.to_markdown(points))
    report.atomic_write(csv_path, summary.to_csv(points))
    return png, md, csv_path


def read_rows(tables: Sequence[Path], dataset: str | None = None,
              split: str | None = None) -> list[dict[str, str]]:
    """Rows of the results tables (optionally one dataset / split)."""
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
        rows += table_rows
    return [r for r in rows if (not dataset or r.get("dataset") == dataset)
            and (not split or r.get("split") == split)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lcasr-jax plot", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tables", nargs="+", type=Path, help="results CSV files")
    p.add_argument("--dataset", help="only this dataset")
    p.add_argument("--split", help="only this split")
    p.add_argument("--title", default="")
    p.add_argument("--out", type=Path, default=Path("runs/eval/wer_vs_context.png"),
                   help="the figure (summary.md and summary.csv are written beside it)")
    args = p.parse_args(argv)
    try:
        written = write_report(read_rows(args.tables, args.dataset, args.split), args.out,
                               args.title)
    except (ValueError, FileNotFoundError) as e:
        print(f"lcasr-jax plot: error: {e}", file=sys.stderr)
        return 1
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
