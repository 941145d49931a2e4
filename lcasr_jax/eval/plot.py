"""`lcasr-jax plot`: WER against context length (the paper's figure 1) from results tables.

Reads the overall rows (recording == 'all') of one or more results CSVs (ours or the
original's eval/results/*.csv), draws one line per (name, evaluation_mode), averaging
repeats, with context in seconds on a log axis. Writes a PNG (matplotlib Agg).
"""

from __future__ import annotations

import argparse
import collections
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from lcasr_jax.data.features import FRAME_SECONDS
from lcasr_jax.eval.report import read_table


def series(rows: Sequence[dict[str, str]], dataset: str | None = None,
           split: str | None = None) -> dict[str, list[tuple[float, float]]]:
    """{label: [(context seconds, mean WER)]} sorted by context."""
    acc: dict[str, dict[float, list[float]]] = collections.defaultdict(
        lambda: collections.defaultdict(list))
    for row in rows:
        if row.get("recording", "all") != "all":
            continue
        if dataset and row.get("dataset") != dataset or split and row.get("split") != split:
            continue
        label = row.get("name") or "run"
        if row.get("evaluation_mode"):
            label += f" ({row['evaluation_mode']})"
        if not dataset:
            label += f" [{row.get('dataset', '?')}]"
        wer, seq_len = float(row["wer"]), float(row["seq_len"])
        if not (math.isfinite(wer) and math.isfinite(seq_len) and seq_len > 0):
            raise ValueError(f"row {label!r} seq_len {row['seq_len']}: wer {row['wer']} "
                             "cannot be drawn (not a finite WER of a positive seq_len)")
        acc[label][seq_len * FRAME_SECONDS].append(wer)
    return {k: sorted((c, sum(w) / len(w)) for c, w in v.items()) for k, v in acc.items()}


def plot(lines: dict[str, list[tuple[float, float]]], out: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not lines:
        raise ValueError("nothing to plot (no overall rows match)")
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for label, points in sorted(lines.items()):
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, [100 * y for y in ys], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ticks = sorted({x for points in lines.values() for x, _ in points})
    ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
    ax.minorticks_off()
    ax.set_xlabel("context (seconds)")
    ax.set_ylabel("WER (%)")
    ax.set_title(title or "WER against context length")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lcasr-jax plot", description=__doc__)
    p.add_argument("tables", nargs="+", type=Path, help="results CSV files")
    p.add_argument("--dataset", help="only this dataset")
    p.add_argument("--split", help="only this split")
    p.add_argument("--title", default="")
    p.add_argument("--out", type=Path, default=Path("runs/eval/wer_vs_context.png"))
    args = p.parse_args(argv)
    try:
        rows = []
        for table in args.tables:
            if not table.is_file():
                raise FileNotFoundError(f"{table}: results table not found")
            table_rows = read_table(table)
            try:
                series(table_rows, args.dataset, args.split)  # validates the columns
            except KeyError as e:
                raise ValueError(f"{table}: not a results table (missing column {e})") from None
            except ValueError as e:
                raise ValueError(f"{table}: {e}") from None
            rows += table_rows
        out = plot(series(rows, args.dataset, args.split), args.out, args.title)
    except (ValueError, FileNotFoundError) as e:
        print(f"lcasr-jax plot: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
