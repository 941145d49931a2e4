"""What every figure shares: names as the paper prints them, the context axis, the reduction
axis's limits, and writing PNG (200 dpi) with PDF and SVG beside it.

The context axis is in minutes on a log2 scale with a tick at every context of the data
(as the paper's figures); a tick's label is left out where it would overlap its neighbour
(measured on the drawn figure), the last (longest context) always kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from lcasr_jax.data.features import FRAME_SECONDS
from lcasr_jax.figures.summary import context_label

DPI = 200  # PNG resolution; PDF and SVG are vector
FORMATS = ("png", "pdf", "svg")
FONT_SIZE = 9

# Results-table dataset keys -> the paper's names.
DATASETS = {"earnings22_full": "Earnings-22", "earnings22": "Earnings-22 (dev/test subset)",
            "tedlium": "TED-LIUM", "tedlium_concat": "TED-LIUM (concatenated)",
            "rev16": "Rev16", "this_american_life": "This American Life",
            "spotify": "Spotify", "synth": "synthetic test set", "manifest": "manifest test set",
            "rev16_background_noise": "Rev16", "rev16_gaussian_noise": "Rev16"}
CONTEXT_LABEL = "context (minutes)"
WER_LABEL = "WER (%)"
REDUCTION_LABEL = "WER reduction (%) from 10 s"
SHORT_AXIS_S = 300  # contexts all up to this many seconds: the axis is in seconds
# The published figure 1 draws TED-LIUM only up to 21.8 min (131,072 frames): its talks
# are shorter, so longer contexts see the same audio (the original notebook's cut).
PUBLISHED_MAX_CONTEXT = {"tedlium": 131072}
# Figure 1's test sets (their test splits), drawn alone when a table holds them among others.
FIGURE1_DATASETS = ("earnings22_full", "tedlium", "rev16", "this_american_life")


def dataset_name(key: str) -> str:
    """'earnings22_full' -> 'Earnings-22'; 'tedlium/dev' -> 'TED-LIUM (dev)'; unknown keys
    are shown as they are."""
    base, _, split = key.partition("/")
    name = DATASETS.get(base, base)
    return f"{name} ({split})" if split else name


_ARCH = re.compile(r"(?:^|_)(\d+)l_(\d+)d_(\d+)h(?:_|$)")
_ARCH_LABEL = re.compile(r"^(\d+)L, (\d+)D, (\d+)H")


def model_name(key: str, labels: Mapping[str, str] | None = None) -> str:
    """A series' label: `labels[key]` if given, else '6L, 768D, 6H' (as the paper's
    legends) for keys naming an architecture (rb_6l_768d_6h), else the key itself."""
    if labels and key in labels:
        return labels[key]
    base = key.split(" ")[0]
    m = _ARCH.search(base)
    if m is None:
        return key
    kind = {"sine": ", sinusoidal", "nopos": ", no positions", "rotary10k": ", rotary 10k"}
    extra = next((v for k, v in kind.items() if base.startswith(k)), "")
    return f"{m[1]}L, {m[2]}D, {m[3]}H{extra}" + key[len(base):]


def architecture(key: str) -> tuple[int, int, int] | None:
    """(layers, d_model, heads) named in a model key or a '6L, 768D, 6H' label, or None."""
    m = _ARCH.search(key.split(" ")[0]) or _ARCH_LABEL.match(key)
    return None if m is None else (int(m[1]), int(m[2]), int(m[3]))


def seconds(seq_len: int) -> float:
    """Frames -> seconds (the x coordinate of every context axis)."""
    return seq_len * FRAME_SECONDS


def minutes_label(seq_len: int) -> str:
    """Tick label in minutes: 0.17, 0.34, 0.68, 1.4, 2.7, ..., 43.7, 60."""
    m = seconds(seq_len) / 60
    return f"{m:.2f}" if m < 1 else f"{m:.1f}".removesuffix(".0")


def seconds_label(seq_len: int) -> str:
    return f"{seconds(seq_len):.3g}"


def reduction_label(shortest: int) -> str:
    return f"WER reduction (%) from {context_label(shortest)}"


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": FONT_SIZE, "axes.titlesize": FONT_SIZE + 1,
                         "legend.fontsize": FONT_SIZE - 1, "svg.hashsalt": "lcasr-jax",
                         "svg.fonttype": "none", "pdf.fonttype": 42})  # text stays text
    return plt


def context_axis(ax, seq_lens: Iterable[int], label: bool = True) -> None:
    """Log2 axis (x in seconds) with a tick at each context, labelled in minutes, or in
    seconds when every context is up to SHORT_AXIS_S; limits padded by 0.4 octave."""
    ticks = sorted(set(seq_lens))
    short = seconds(ticks[-1]) <= SHORT_AXIS_S
    ax.set_xscale("log", base=2)
    ax.set_xticks([seconds(t) for t in ticks],
                  [seconds_label(t) if short else minutes_label(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlim(seconds(ticks[0]) / 2 ** 0.4, seconds(ticks[-1]) * 2 ** 0.4)
    if label:
        ax.set_xlabel("context (s)" if short else CONTEXT_LABEL)
    ax.grid(True, alpha=0.3)


def thin_tick_labels(fig, axes: Sequence, gap_px: float = 8.0) -> None:
    """Leave out x tick labels that would overlap (measured on the drawn figure): the last
    label (the longest context) is kept, then the nearest one left of it that clears it,
    then every k-th from there with the smallest k at which none overlap."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()

    def clear(boxes, keep) -> bool:
        order = sorted(keep)
        return all(boxes[a].x1 + gap_px <= boxes[b].x0
                   for a, b in zip(order, order[1:], strict=False))

    for ax in axes:
        labels = ax.get_xticklabels()
        boxes = [t.get_window_extent(renderer) for t in labels]
        texts = [t.get_text() for t in labels]
        named = [i for i, t in enumerate(texts) if t]
        if not named:
            continue
        last = named[-1]
        rest = [i for i in named[:-1] if clear(boxes, [i, last])]
        keep = [last]
        if rest:
            anchor = rest[-1]
            for k in range(1, len(rest) + 1):
                keep = [last, *(i for i in range(anchor, -1, -k) if texts[i])]
                if clear(boxes, keep):
                    break
        ax.set_xticks(ax.get_xticks(), [t if i in keep else "" for i, t in enumerate(texts)])


def paper_points(points: Sequence) -> list:
    """The points of the paper's test sets (`FIGURE1_DATASETS`, test split; TED-LIUM to
    `PUBLISHED_MAX_CONTEXT`) when there are any, else all of them."""
    paper = [p for p in points if p.dataset.partition("/")[0] in FIGURE1_DATASETS
             and p.dataset.partition("/")[2] in ("", "test")
             and p.seq_len <= PUBLISHED_MAX_CONTEXT.get(p.dataset.partition("/")[0], p.seq_len)]
    return paper or list(points)


def dataset_order(datasets: Iterable[str]) -> list[str]:
    """The paper's test sets first, in its order (Earnings-22, TED-LIUM, Rev16), then the
    others as they come."""
    order = {d: i for i, d in enumerate(FIGURE1_DATASETS)}
    return sorted(dict.fromkeys(datasets), key=lambda d: order.get(d.partition("/")[0],
                                                                   len(order)))


def reduction_limits(ax, values: Iterable[float], min_span: float = 2.0) -> None:
    """y limits that include 0 and span at least `min_span` percentage points, so a
    one-point reduction of 0.01 % is not blown up to fill the panel."""
    values = [v for v in values if v == v]
    lo, hi = min([0.0, *values]), max([0.0, *values])
    pad = max((hi - lo) * 0.08, 0.1)
    lo, hi = lo - pad, hi + pad
    if hi - lo < min_span:
        mid = (hi + lo) / 2
        lo, hi = mid - min_span / 2, mid + min_span / 2
    ax.set_ylim(lo, hi)
    ax.axhline(0, color="0.4", lw=0.8)


def outputs(out: Path) -> list[Path]:
    """out.png (or whatever suffix) -> [X.png, X.pdf, X.svg]."""
    out = Path(out)
    return [out.with_suffix(f".{ext}") for ext in FORMATS]


def save(fig, out: Path) -> Path:
    """Write the figure as PNG (DPI), PDF and SVG beside `out` (each atomically, no
    timestamps in the files); returns the PNG's path."""
    plt = pyplot()
    paths = outputs(out)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    meta = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None},
            "svg": {"Date": None}}
    try:
        for path in paths:
            ext = path.suffix[1:]
            tmp = path.with_name(f".{path.stem}.tmp.{ext}")
            fig.savefig(tmp, dpi=DPI, metadata=meta[ext], bbox_inches="tight", pad_inches=0.05)
            tmp.replace(path)
    finally:
        plt.close(fig)
    return paths[0]
