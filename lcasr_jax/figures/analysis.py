"""Figures of the analyses (matplotlib Agg, PNG written atomically).

  wer_vs_snr        WER against measured SNR, one line per context (results tables)
  loss_vs_context   per-token CTC loss against context (results tables of `eval --loss`)
  attention_distance  share of attention mass beyond a distance, per layer
  attention_heatmaps  head-averaged probabilities of one window, per layer
  attribution         attribution matrix and its curve against distance
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lcasr_jax.data.features import FRAME_SECONDS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.png")
    fig.savefig(tmp)
    _pyplot().close(fig)
    tmp.replace(out)
    return out


def _overall(rows: Sequence[Mapping[str, str]], column: str):
    """Overall rows with a non-empty `column`, grouped by (name, mode) label."""
    groups = collections.defaultdict(list)
    for r in rows:
        if r.get("recording", "all") == "all" and r.get(column, "") not in ("", "nan"):
            groups[f"{r.get('name', 'run')} ({r.get('evaluation_mode', '')})"].append(r)
    return groups


def wer_vs_snr(rows: Sequence[Mapping[str, str]], out: Path, title: str = "") -> Path:
    """One line per (name, context): WER % against the mean measured SNR of noisy runs."""
    lines = collections.defaultdict(dict)
    for label, group in _overall(rows, "snr_db").items():
        for r in group:
            context = float(r["seq_len"]) * FRAME_SECONDS
            lines[(label, context)].setdefault(float(r["snr_db"]), []).append(float(r["wer"]))
    if not lines:
        raise ValueError("no noisy overall rows (run eval with --noise)")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for (label, context), points in sorted(lines.items(), key=lambda kv: kv[0][1]):
        xs = sorted(points)
        ax.plot(xs, [100 * np.mean(points[x]) for x in xs], marker="o",
                label=f"{context:g} s" + ("" if len({k[0] for k in lines}) == 1 else f" {label}"))
    ax.set_xlabel("SNR (dB, measured)")
    ax.set_ylabel("WER (%)")
    ax.set_title(title or "WER against noise level, per context")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, title="context")
    fig.tight_layout()
    return save(fig, out)


def loss_vs_context(rows: Sequence[Mapping[str, str]], out: Path, title: str = "",
                    noise: str = "none") -> Path:
    """Per-token CTC loss (vs reference, and vs own greedy output) against context, of the
    runs with this noise spec ('none': clean audio)."""
    rows = [r for r in rows if (r.get("noise") or "none") == noise]
    groups = _overall(rows, "loss")
    if not groups:
        raise ValueError(f"no overall rows with a loss and noise {noise!r} (eval --loss)")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for label, group in sorted(groups.items()):
        for column, style in (("loss", "-o"), ("self_loss", "--s")):
            acc = collections.defaultdict(list)
            for r in group:
                acc[float(r["seq_len"]) * FRAME_SECONDS].append(float(r[column]))
            xs = sorted(acc)
            which = "reference" if column == "loss" else "own greedy output"
            ax.plot(xs, [np.mean(acc[x]) for x in xs], style, label=f"{label} vs {which}")
    ax.set_xscale("log", base=2)
    ticks = sorted({float(r["seq_len"]) * FRAME_SECONDS for g in groups.values() for r in g})
    ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
    ax.minorticks_off()
    ax.set_xlabel("context (seconds)")
    ax.set_ylabel("CTC loss per token (nats)")
    ax.set_title(title or "Loss against context" + ("" if noise == "none" else f" ({noise})"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, out)


def attention_distance(arrays: Mapping[str, np.ndarray], out: Path, title: str = "") -> Path:
    """Share of attention mass beyond each distance (head average), one line per layer."""
    edges, far = arrays["edges_s"], arrays["far_share"]  # (E,), (layers, heads, E)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    keep = edges > 0
    for i in range(far.shape[0]):
        ax.plot(edges[keep], far[i].mean(0)[keep], label=f"layer {i}")
    for s in (10, 30, 60):
        ax.axvline(s, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("distance d (seconds)")
    ax.set_ylabel("share of attention beyond d")
    ax.set_title(title or "Attended distance per layer")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, out)


def pool(x: np.ndarray, size: int) -> np.ndarray:
    """Mean-pool the last two axes of x into at most size x size cells (zero padded)."""
    f = -(-max(x.shape[-2:]) // size)
    if f == 1:
        return x
    pad = [(0, 0)] * (x.ndim - 2) + [(0, -n % f) for n in x.shape[-2:]]
    x = np.pad(x, pad)
    a, b = x.shape[-2] // f, x.shape[-1] // f
    return x.reshape(*x.shape[:-2], a, f, b, f).mean((-3, -1))


def attention_heatmaps(probs: np.ndarray, seconds_per_token: float, out: Path,
                       cells: int = 100) -> Path:
    """probs (layers, heads, tokens, tokens): head-averaged maps, log colour scale, pooled
    to at most `cells` x `cells` (a small PNG)."""
    from matplotlib.colors import LogNorm

    plt = _pyplot()
    layers = probs.shape[0]
    cols = min(layers, 3)
    rows = -(-layers // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols + 1, 2.9 * rows), dpi=72,
                             squeeze=False, layout="constrained")
    extent = (0, probs.shape[-1] * seconds_per_token, probs.shape[-2] * seconds_per_token, 0)
    for i, ax in enumerate(axes.flat):
        if i >= layers:
            ax.axis("off")
            continue
        mean = pool(probs[i].astype(np.float32).mean(0), cells)
        im = ax.imshow(np.maximum(mean, 1e-6), norm=LogNorm(1e-6, 1), extent=extent,
                       cmap="viridis", interpolation="nearest")
        ax.set_title(f"layer {i}", fontsize=9)
        ax.set_xlabel("key (s)", fontsize=8)
        ax.set_ylabel("query (s)", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.8, label="attention (head mean)")
    return save(fig, out)


def attribution(matrix: np.ndarray, curve: np.ndarray, window_s: float, out: Path,
                what: str = "log-prob drop of the unmasked path") -> Path:
    """Left: matrix[i, j] (output window i, masked window j); right: mean over |i - j|."""
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.6, 4.0), dpi=100)
    n = matrix.shape[0]
    im = a.imshow(matrix, cmap="magma", extent=(0, n * window_s, n * window_s, 0))
    a.set_xlabel("masked window (s)")
    a.set_ylabel("output window (s)")
    a.set_title("attribution", fontsize=10)
    fig.colorbar(im, ax=a, shrink=0.8, label=what)
    distance = np.arange(len(curve)) * window_s
    b.plot(distance, curve, marker="o")
    b.set_yscale("symlog", linthresh=1e-4)
    b.set_xlabel("distance between windows (s)")
    b.set_ylabel(what)
    b.set_title("attribution against distance", fontsize=10)
    b.grid(True, alpha=0.3)
    fig.tight_layout()
    return save(fig, out)
