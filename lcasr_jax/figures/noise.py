"""The paper's noise figure: WER reduction from 10 s against context, one line per SNR,
coloured by SNR with a colour bar (the original notebook's werr_rev16_bnoise), the clean
runs as a black line.

A line is the rows of one noise spec (`noise` column: 'background:PATH:5', 'gaussian:0:20',
'none'); rows of tables without a noise column (the original's, one table per SNR) are told
apart by their table's name, whose SNR is read from '..._m7p5_SNR' (-7.5 dB) and whose
dataset key loses its '_background_noise' / '_gaussian_noise' suffix, so the original's
evals_rb.csv and evals_rb_rev16_bnoise_*_SNR.csv draw one figure.
"""

from __future__ import annotations

import collections
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from lcasr_jax.figures import style, summary

_TABLE_SNR = re.compile(r"_(m?)(\d+)(?:p(\d+))?_SNR")
_SUFFIXES = ("_background_noise", "_gaussian_noise")


def snr_of(spec: str) -> tuple[float, float] | None:
    """(low, high) dB of a noise spec or an original table name; None for clean audio or
    when the name says no SNR."""
    if not spec or spec == "none":
        return None
    m = _TABLE_SNR.search(spec)
    if m:
        value = float(m[2] + (f".{m[3]}" if m[3] else ""))
        value = -value if m[1] else value
        return value, value
    numbers = []
    for part in reversed(spec.split(":")):
        try:
            numbers.append(float(part))
        except ValueError:
            break
    if not numbers:
        return None
    return min(numbers), max(numbers)


def _group(row: Mapping[str, str]) -> str:
    if "noise" in row:
        return row.get("noise") or "none"
    table = row.get("table", "")
    return table if ("noise" in table or "SNR" in table) else "none"


def reduction_per_snr(rows: Sequence[Mapping[str, str]], out: Path, title: str = "",
                      labels: Mapping[str, str] | None = None) -> Path:
    """The figure (see the module doc); one panel per dataset that has noisy rows.
    `labels` gives the SNR (dB) of a noise spec or table name that does not say it."""
    groups: dict[str, list[dict]] = collections.defaultdict(list)
    for r in rows:
        row = dict(r)
        for suffix in _SUFFIXES:
            row["dataset"] = row["dataset"].removesuffix(suffix)
        groups[_group(row)].append({**row, "noise": _group(row)})
    noisy = {g: snr_of(g) for g in groups if g != "none"}
    for g, text in (labels or {}).items():
        if g in noisy:
            try:
                value = float(text.lower().removesuffix("db").strip())
            except ValueError:
                raise ValueError(f"--label {g}={text}: an SNR in dB expected") from None
            noisy[g] = (value, value)
    if not any(v is not None for v in noisy.values()):
        raise ValueError("no rows with a noise SNR (eval --noise, or the original's "
                         "*_SNR.csv tables)")
    points = {g: summary.aggregate(rs) for g, rs in groups.items()}
    datasets = style.dataset_order(p.dataset for g, ps in points.items() if g != "none"
                                   for p in ps)
    plt = style.pyplot()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    known = [v for v in noisy.values() if v is not None]
    lo, hi = min(v[0] for v in known), max(v[1] for v in known)
    norm = Normalize(lo - 1, hi + 1)
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 3.8),
                             squeeze=False, layout="constrained")
    order = sorted(groups, key=lambda g: (g != "none", (noisy.get(g) or (math.inf,))[0]))
    for ax, dataset in zip(axes[0], datasets, strict=True):
        values, contexts = [], set()
        for g in order:
            pts = [p for p in points[g] if p.dataset == dataset]
            red = summary.reductions(pts)
            for series in dict.fromkeys(p.series for p in pts):
                line = [p for p in pts if p.series == series
                        and (dataset, series, p.seq_len) in red]
                if not line:
                    continue
                contexts |= {p.seq_len for p in line}
                ys = [red[(dataset, series, p.seq_len)] for p in line]
                values += ys
                snr = noisy.get(g)
                colour = "black" if g == "none" else (
                    "0.5" if snr is None else cmap(norm(sum(snr) / 2)))
                label = "no noise" if g == "none" else g  # SNRs: the colour bar
                ax.plot([style.seconds(p.seq_len) for p in line], ys, marker="o",
                        markersize=3.5, color=colour, ls="--" if g == "none" else "-",
                        label=label if g == "none" or snr is None else None)
        if not values:
            raise ValueError(f"{dataset}: one context per line, no reduction to draw")
        style.context_axis(ax, sorted(contexts))
        style.reduction_limits(ax, values)
        ax.set_ylabel(style.reduction_label(min(p.seq_len for ps in points.values()
                                                for p in ps if p.dataset == dataset)))
        ax.set_title(style.dataset_name(dataset))
        ax.legend(loc="lower right")
    fig.colorbar(ScalarMappable(norm, cmap), ax=axes, shrink=0.9, label="SNR (dB)")
    if title:
        fig.suptitle(title)
    style.thin_tick_labels(fig, list(axes[0]))
    return style.save(fig, out)
