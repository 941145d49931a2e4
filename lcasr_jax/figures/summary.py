"""WER against context aggregated over repeats, as the original's notebook does it
(`eval/results/eval.ipynb`, `get_data` and `get_percentage_decrease_json`):

  * a cell's WER is its overall row (recording 'all'; tables without a `recording` column
    hold only overall rows): total errors / total reference words over the test set
    (`word_error_rate_detail` of every recording at once), NOT a mean of per-recording WERs;
  * for each (dataset, split, model, context) the mean over repeats, and the spread as the
    sample standard deviation (pandas' `std`, ddof=1; undefined for one repeat);
  * the relative reduction against the shortest context of the same series:
    100 * (mean[shortest] - mean[context]) / mean[shortest].

Checked on the original's own `eval/results/IS_paper/evals_rb.csv` (2026-12-03): the means
and stds equal the notebook's stored `get_data` outputs (earnings22_full, tedlium test) to
1e-14, and the reductions are the paper's figure 1 (Earnings-22: 5.4 % at 20 s, 12.2 % at
1 h).

A series (one line of the figure, one row of the tables) is a model name, with its
evaluation mode, overlap ratio and noise added to the label where a table has several of
them for one model and context. A run's row found twice (one run appended twice to a
table, or two tables read together) counts once (`eval.report.row_key`); two different
checkpoints under one name and repeat id are refused, not averaged as repeats.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import math
import statistics
from collections.abc import Mapping, Sequence

from lcasr_jax.data.features import FRAME_SECONDS
from lcasr_jax.eval.report import row_key


@dataclasses.dataclass(frozen=True)
class Point:
    """Mean WER (fraction) over the repeats of one series at one context."""

    dataset: str  # "dataset/split" when the table has several splits of it
    series: str
    seq_len: int  # frames
    wers: tuple[float, ...]  # one per repeat, in table order

    @property
    def seconds(self) -> float:
        return self.seq_len * FRAME_SECONDS

    @property
    def mean(self) -> float:
        return statistics.fmean(self.wers)

    @property
    def std(self) -> float:
        """Sample standard deviation over repeats (ddof=1); nan for one repeat."""
        return statistics.stdev(self.wers) if len(self.wers) > 1 else math.nan


def _label(row: Mapping[str, str], mixed: Mapping[str, bool]) -> str:
    label = row.get("name") or "run"
    if mixed["evaluation_mode"]:
        label += f" ({row.get('evaluation_mode') or 'averaged_moving_window'})"
    if mixed["overlap_ratio"]:
        label += f" ov {float(row['overlap_ratio']):g}"
    if mixed.get("noise"):
        label += f" [{row.get('noise') or 'none'}]"
    return label


def _varies(rows: Sequence[Mapping[str, str]], column: str, *within: str) -> bool:
    """Whether some (dataset, split, name, context, *within) has rows with several values
    of `column` (then it must tell series apart; an overlap ratio that only varies with the
    context, from rounding the overlap to the subsampling factor, does not)."""
    seen: dict[tuple, set[str]] = collections.defaultdict(set)
    for r in rows:
        key = tuple(r.get(c) for c in ("dataset", "split", "name", "seq_len", *within))
        seen[key].add(str(r.get(column) or ""))
    return any(len(values) > 1 for values in seen.values())


def _one_model(models: dict[tuple, str], key: tuple, row: Mapping[str, str]) -> None:
    """Refuse a second checkpoint for one (dataset, series, context, repeat)."""
    where = (*key, str(row.get("repeat", "")))
    checkpoint = str(row.get("checkpoint", ""))
    if models.setdefault(where, checkpoint) != checkpoint:
        raise ValueError(f"{key[1]!r} at {key[2]} frames on {key[0]}, repeat {where[-1]}: two "
                         f"checkpoints ({models[where]}, {checkpoint}); name the runs apart "
                         "(eval --name) or give them repeat ids")


def aggregate(rows: Sequence[Mapping[str, str]]) -> list[Point]:
    """Points of every series of a results table (ours or the original's), sorted by
    dataset, series, context. Raises KeyError/ValueError on missing or bad columns."""
    overall = list({row_key(r): r for r in rows
                    if (r.get("recording") or "all") == "all"}.values())
    mixed = {"evaluation_mode": _varies(overall, "evaluation_mode"),
             "overlap_ratio": _varies(overall, "overlap_ratio", "evaluation_mode"),
             "noise": _varies(overall, "noise", "evaluation_mode", "overlap_ratio")}
    splits = collections.defaultdict(set)
    for r in overall:
        splits[r["dataset"]].add(r["split"])
    acc: dict[tuple[str, str, int], list[float]] = collections.defaultdict(list)
    models: dict[tuple, str] = {}
    for r in overall:
        dataset = r["dataset"] + (f"/{r['split']}" if len(splits[r["dataset"]]) > 1 else "")
        wer, seq_len = float(r["wer"]), float(r["seq_len"])
        if not (math.isfinite(wer) and math.isfinite(seq_len) and seq_len > 0):
            raise ValueError(f"row {r.get('name', '')!r} seq_len {r['seq_len']}: wer "
                             f"{r['wer']} is not a finite WER of a positive context")
        key = (dataset, _label(r, mixed), int(seq_len))
        _one_model(models, key, r)
        acc[key].append(wer)
    return [Point(d, s, n, tuple(w)) for (d, s, n), w in sorted(acc.items())]


def reductions(points: Sequence[Point]) -> dict[tuple[str, str, int], float]:
    """{(dataset, series, seq_len): reduction %} against each series' shortest context
    (the shortest itself is left out, as in the notebook)."""
    first: dict[tuple[str, str], Point] = {}
    for p in points:  # sorted: the first point of a series is its shortest context
        first.setdefault((p.dataset, p.series), p)
    out = {}
    for p in points:
        base = first[(p.dataset, p.series)]
        if p is not base and base.mean > 0:
            out[(p.dataset, p.series, p.seq_len)] = 100 * (base.mean - p.mean) / base.mean
    return out


def context_label(seq_len: int) -> str:
    """'10.24 s', '2.7 min', '1 h' (as the paper's axes)."""
    s = seq_len * FRAME_SECONDS
    if s < 120:
        return f"{s:g} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.3g} h"


def _by_dataset(points: Sequence[Point]) -> dict[str, list[Point]]:
    out: dict[str, list[Point]] = collections.defaultdict(list)
    for p in points:
        out[p.dataset].append(p)
    return dict(out)


def to_markdown(points: Sequence[Point]) -> str:
    """Per dataset: rows models, columns contexts, 'mean ± std' WER % over repeats; then the
    same layout with the relative reduction (%) against the shortest context."""
    red = reductions(points)
    lines = ["# WER against context", "",
             "WER (%) = total errors / total reference words of the test set; mean ± sample "
             "standard deviation (ddof=1) over repeats (n = repeats). Reduction (%) = "
             "100 (WER at the shortest context - WER) / WER at the shortest context, of the "
             "means."]
    for dataset, pts in _by_dataset(points).items():
        contexts = sorted({p.seq_len for p in pts})
        series = sorted({p.series for p in pts})
        at = {(p.series, p.seq_len): p for p in pts}
        head = "| model | " + " | ".join(context_label(c) for c in contexts) + " |"
        rule = "|---|" + "---:|" * len(contexts)
        lines += ["", f"## {dataset}", "", "WER (%)", "", head, rule]
        for s in series:
            cells = []
            for c in contexts:
                p = at.get((s, c))
                cells.append("" if p is None else f"{100 * p.mean:.2f}" + (
                    "" if math.isnan(p.std) else f" ± {100 * p.std:.2f}") + f" (n={len(p.wers)})")
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        lines += ["", "Reduction (%) against the shortest context", "", head, rule]
        for s in series:
            cells = [f"{red[(dataset, s, c)]:.1f}" if (dataset, s, c) in red else ""
                     for c in contexts]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


QUANTITIES = ("wer_mean", "wer_std", "repeats", "reduction_pct")


def _quantity(q: str, p: Point, reduction: float | None) -> str:
    if q == "wer_mean":
        return f"{100 * p.mean:.4f}"
    if q == "wer_std":
        return "" if math.isnan(p.std) else f"{100 * p.std:.4f}"
    if q == "repeats":
        return str(len(p.wers))
    return "" if reduction is None else f"{reduction:.4f}"


def to_csv(points: Sequence[Point]) -> str:
    """Paper layout as CSV: one row per (dataset, model, quantity), one column per context
    (frames); quantities: wer_mean and wer_std in %, repeats, reduction_pct."""
    red = reductions(points)
    contexts = sorted({p.seq_len for p in points})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["dataset", "model", "quantity"] + [str(c) for c in contexts])
    for dataset, pts in _by_dataset(points).items():
        at = {(p.series, p.seq_len): p for p in pts}
        for s in sorted({p.series for p in pts}):
            for q in QUANTITIES:
                writer.writerow([dataset, s, q] + [
                    _quantity(q, at[(s, c)], red.get((dataset, s, c))) if (s, c) in at else ""
                    for c in contexts])
    return buf.getvalue()
