"""WER against context, from results tables aggregated over repeats (`figures.summary`).

  panels    one column per dataset: WER (mean, band of ± one sample std over repeats) above,
            the relative WER reduction from the shortest context below, on one shared
            context axis (the sweep's figure; `lcasr-jax plot`'s default)
  figure1   the paper's figure 1: one axes, the reduction from 10 s against context, one
            line per dataset (only the paper's test sets where a table has others too;
            TED-LIUM to 21.8 min, as published)
  sizes / heads / positions
            the paper's comparisons: the panels layout with the paper's legend names;
            sizes coloured by parameter count (the released models' catalogue) with a
            colour bar, as the original notebook's model_sizes figures
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from lcasr_jax.checkpoints import catalogue
from lcasr_jax.eval import report
from lcasr_jax.figures import style, summary

PANELS_PER_ROW = 3  # datasets side by side before the figure wraps
POSITION_LABELS = {"rb_6l_768d_6h": "Rotary (θ = 1.5M)", "rotary10k_6l_768d_6h":
                   "Rotary (θ = 10k)", "sine_6l_768d_6h": "Sinusoidal",
                   "nopos_6l_768d_6h": "No positional encoding"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
KINDS = ("panels", "figure1", "sizes", "heads", "positions")


def _series(points: Sequence[summary.Point]) -> list[str]:
    return list(dict.fromkeys(p.series for p in sorted(points, key=lambda p: p.series)))


def _line(points: Sequence[summary.Point], dataset: str, series: str) -> list[summary.Point]:
    return sorted((p for p in points if p.dataset == dataset and p.series == series),
                  key=lambda p: p.seq_len)


def _params_m(key: str, label: str = "") -> float | None:
    """Parameters (millions) of a released model named by a config key or a legend label
    ('6L, 768D, 6H'), from the catalogue."""

    arch = style.architecture(key) or style.architecture(label)
    if arch is None:
        return None
    name = f"{arch[0]}L-{arch[1]}D-{arch[2]}H-RB-1p5M"
    try:
        return catalogue.find(name).params_m
    except KeyError:
        return None


def _colours(series: Sequence[str], kind: str, labels: Mapping[str, str]):
    """{series: colour} and a ScalarMappable for a colour bar (sizes) or None."""
    plt = style.pyplot()
    if kind == "sizes":
        params = {s: _params_m(s, labels.get(s, "")) for s in series}
        known = [v for v in params.values() if v]
        if known:
            from matplotlib.cm import ScalarMappable
            from matplotlib.colors import LogNorm

            norm = LogNorm(min(known) / 1.3, max(known) * 1.3)
            cmap = plt.get_cmap("turbo")
            return ({s: cmap(norm(v)) if v else "0.3" for s, v in params.items()},
                    ScalarMappable(norm, cmap))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {s: cycle[i % len(cycle)] for i, s in enumerate(series)}, None


def panels(points: Sequence[summary.Point], out: Path, title: str = "", kind: str = "panels",
           labels: Mapping[str, str] | None = None) -> Path:
    """WER above, reduction below, one column per dataset (see the module doc)."""
    if not points:
        raise ValueError("nothing to plot (no overall rows match)")
    if kind != "panels":  # the paper's comparisons: its test sets
        points = style.paper_points(points)
    plt = style.pyplot()
    labels = dict(POSITION_LABELS if kind == "positions" else {}) | dict(labels or {})
    datasets = style.dataset_order(p.dataset for p in points)
    series = _series(points)
    colours, mappable = _colours(series, kind, labels)
    red = summary.reductions(points)
    contexts = sorted({p.seq_len for p in points})
    cols = min(len(datasets), PANELS_PER_ROW)
    blocks = -(-len(datasets) // cols)
    fig, axes = plt.subplots(2 * blocks, cols, figsize=(3.4 * cols + 1.2, 5.0 * blocks),
                             squeeze=False, sharex=True, layout="constrained")
    for i in range(len(datasets), blocks * cols):  # empty panels of the last row
        axes[2 * (i // cols)][i % cols].set_visible(False)
        axes[2 * (i // cols) + 1][i % cols].set_visible(False)
    handles = {}
    for i, dataset in enumerate(datasets):
        top, bottom = axes[2 * (i // cols)][i % cols], axes[2 * (i // cols) + 1][i % cols]
        reductions = []
        for s in series:
            line = _line(points, dataset, s)
            if not line:
                continue
            xs = [style.seconds(p.seq_len) for p in line]
            mean = [100 * p.mean for p in line]
            marker = MARKERS[series.index(s) % len(MARKERS)]
            (h,) = top.plot(xs, mean, marker=marker, markersize=3.5, color=colours[s],
                            label=style.model_name(s, labels))
            handles.setdefault(h.get_label(), h)
            std = [100 * p.std for p in line]
            if not any(math.isnan(v) for v in std):
                top.fill_between(xs, [m - v for m, v in zip(mean, std, strict=True)],
                                 [m + v for m, v in zip(mean, std, strict=True)],
                                 color=colours[s], alpha=0.2, linewidth=0)
            keys = [(dataset, s, p.seq_len) for p in line]
            ys = [red[k] for k in keys if k in red]
            reductions += ys
            bottom.plot([x for x, k in zip(xs, keys, strict=True) if k in red], ys,
                        marker=marker, markersize=3.5, color=colours[s])
        for ax in (top, bottom):
            style.context_axis(ax, contexts, label=ax is bottom)
            ax.tick_params(labelbottom=True)
        style.reduction_limits(bottom, reductions)
        top.set_title(style.dataset_name(dataset.partition("/")[0] if kind != "panels"
                                         else dataset))
        top.set_ylabel(style.WER_LABEL + (", mean ± std" if any(
            len(p.wers) > 1 for p in points) else ""))
        bottom.set_ylabel(style.reduction_label(contexts[0]))
    if mappable is not None:
        fig.colorbar(mappable, ax=axes, shrink=0.6, label="parameters (millions)")
    fig.legend(handles.values(), handles.keys(), loc="outside lower center",
               ncols=min(len(handles), 3), frameon=False)
    if title:
        fig.suptitle(title)
    style.thin_tick_labels(fig, [a for row in axes for a in row if a.get_visible()])
    return style.save(fig, out)


def figure1(points: Sequence[summary.Point], out: Path, title: str = "",
            labels: Mapping[str, str] | None = None) -> Path:
    """The paper's figure 1 (see the module doc): one line per dataset (and per series
    where the tables hold several)."""
    if not points:
        raise ValueError("nothing to plot (no overall rows match)")
    paper = style.paper_points(points) != list(points)
    points = style.paper_points(points)
    plt = style.pyplot()
    red = summary.reductions(points)
    series = _series(points)
    datasets = style.dataset_order(p.dataset for p in points)
    fig, ax = plt.subplots(figsize=(5.2, 3.6), layout="constrained")
    values, contexts = [], set()
    for dataset in datasets:
        for s in series:
            line = [p for p in _line(points, dataset, s) if (dataset, s, p.seq_len) in red]
            if not line:
                continue
            contexts |= {p.seq_len for p in line}
            ys = [red[(dataset, s, p.seq_len)] for p in line]
            values += ys
            name = style.dataset_name(dataset.partition("/")[0] if paper else dataset) + (
                "" if len(series) == 1 else f", {style.model_name(s, labels)}")
            ax.plot([style.seconds(p.seq_len) for p in line], ys, marker="o",
                    markersize=3.5, label=name)
    if not values:
        raise ValueError("nothing to plot (one context per series: no reduction)")
    style.context_axis(ax, sorted(contexts))
    style.reduction_limits(ax, values)
    ax.set_ylabel(style.reduction_label(min(p.seq_len for p in points)))
    ax.legend()
    if title:
        ax.set_title(title)
    style.thin_tick_labels(fig, [ax])
    return style.save(fig, out)


def draw(kind: str, points: Sequence[summary.Point], out: Path, title: str = "",
         labels: Mapping[str, str] | None = None) -> Path:
    """One of KINDS."""
    if kind == "figure1":
        return figure1(points, out, title, labels)
    if kind not in KINDS:
        raise ValueError(f"unknown figure {kind!r} (choose from {', '.join(KINDS)})")
    return panels(points, out, title, kind, labels)


def write_report(rows: Sequence[Mapping[str, str]], png: Path, title: str = "",
                 kind: str = "panels", labels: Mapping[str, str] | None = None
                 ) -> tuple[Path, ...]:
    """The figure at `png` (with .pdf and .svg) plus summary.md and summary.csv beside it."""
    try:
        points = summary.aggregate(rows)
    except KeyError as e:
        raise ValueError(f"not a results table (missing column {e})") from None
    png = draw(kind, points, png, title, labels)
    md, csv_path = png.with_name("summary.md"), png.with_name("summary.csv")

    report.atomic_write(md, summary.to_markdown(points))
    report.atomic_write(csv_path, summary.to_csv(points))
    return (*style.outputs(png), md, csv_path)
