"""Figures of the analyses (`lcasr-jax analyze`), from their arrays and results tables.

  attention_distance   share of attention mass beyond a distance, one line per layer (head
                       mean), and each head's mean attended distance
  attention_heatmaps   head-averaged attention of one window per layer, log colour scale,
                       naming the recording and window
  attribution          an attribution matrix (colour scale set by the off-diagonal values,
                       the diagonal marked over the top) and its mean against distance
  wer_vs_snr           WER against measured SNR, one line per context (results tables)
  loss_vs_context      per-token CTC loss against context (results tables of `eval --loss`)
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lcasr_jax.data.features import FRAME_SECONDS
from lcasr_jax.figures import style

# Attribution quantities: npz key -> (colour bar / axis label with unit).
ATTRIBUTION_UNITS = {"logp": "log-prob drop (nats per frame)",
                     "changed": "share of frames whose argmax changes",
                     "wer": "WER change (points) from the unmasked run"}


def _overall(rows: Sequence[Mapping[str, str]], column: str):
    """Overall rows with a non-empty `column`, grouped by (name, mode) label."""
    groups = collections.defaultdict(list)
    for r in rows:
        if (r.get("recording") or "all") == "all" and r.get(column, "") not in ("", "nan"):
            groups[f"{r.get('name', 'run')} ({r.get('evaluation_mode', '')})"].append(r)
    return groups


def wer_vs_snr(rows: Sequence[Mapping[str, str]], out: Path, title: str = "") -> Path:
    """One line per (name, context): WER % against the mean measured SNR of noisy runs."""
    lines = collections.defaultdict(dict)
    for label, group in _overall(rows, "snr_db").items():
        for r in group:
            lines[(label, int(float(r["seq_len"])))].setdefault(
                float(r["snr_db"]), []).append(float(r["wer"]))
    if not lines:
        raise ValueError("no noisy overall rows (run eval with --noise)")
    plt = style.pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.6), layout="constrained")
    several = len({k[0] for k in lines}) > 1
    for (label, seq_len), points in sorted(lines.items(), key=lambda kv: kv[0][1]):
        xs = sorted(points)
        ax.plot(xs, [100 * np.mean(points[x]) for x in xs], marker="o", markersize=3.5,
                label=style.context_label(seq_len) + (f", {label}" if several else ""))
    ax.set_xlabel("SNR (dB, measured)")
    ax.set_ylabel(style.WER_LABEL)
    ax.set_title(title or "WER against noise level, per context")
    ax.grid(True, alpha=0.3)
    ax.legend(title="context")
    return style.save(fig, out)


def loss_vs_context(rows: Sequence[Mapping[str, str]], out: Path, title: str = "",
                    noise: str = "none") -> Path:
    """Per-token CTC loss (vs reference, and vs own output) against context, of the runs
    with this noise spec ('none': clean audio)."""
    rows = [r for r in rows if (r.get("noise") or "none") == noise]
    groups = _overall(rows, "loss")
    if not groups:
        raise ValueError(f"no overall rows with a loss and noise {noise!r} (eval --loss)")
    plt = style.pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.6), layout="constrained")
    contexts = set()
    for label, group in sorted(groups.items()):
        for column, style_, which in (("loss", "-o", "reference"),
                                      ("self_loss", "--s", "own output")):
            acc = collections.defaultdict(list)
            for r in group:
                if r.get(column, "") not in ("", "nan"):
                    acc[int(float(r["seq_len"]))].append(float(r[column]))
            contexts |= set(acc)
            xs = sorted(acc)
            ax.plot([style.seconds(x) for x in xs], [np.mean(acc[x]) for x in xs], style_,
                    markersize=3.5, label=f"{label} vs {which}")
    style.context_axis(ax, sorted(contexts))
    ax.set_ylabel("CTC loss per token (nats)")
    ax.set_title(title or "Loss against context" + ("" if noise == "none" else f" ({noise})"))
    ax.legend()
    style.thin_tick_labels(fig, [ax])
    return style.save(fig, out)


def attention_distance(arrays: Mapping[str, np.ndarray], out: Path, title: str = "") -> Path:
    """Left: share of attention mass beyond each distance (head mean), one line per layer;
    right: each head's mean attended distance per layer."""
    edges, far = np.asarray(arrays["edges_s"]), np.asarray(arrays["far_share"])  # (E,), (L,H,E)
    plt = style.pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.6, 3.6), layout="constrained",
                               width_ratios=(3, 2))
    keep = edges > 0
    cmap = plt.get_cmap("viridis")
    layers = far.shape[0]
    for i in range(layers):
        share = far[i].mean(0)
        ok = keep & (share > 0)  # past the window's length nothing is attended: no point
        a.plot(edges[ok], share[ok], color=cmap(i / max(layers - 1, 1)), label=f"layer {i + 1}")
    for s in (10, 30, 60):
        if edges[(far.mean(1) > 0).any(0)].max(initial=0) >= s:
            a.axvline(s, color="grey", lw=0.8, ls=":")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("distance d (s)")
    a.set_ylabel("share of attention beyond d")
    a.grid(True, which="major", alpha=0.3)
    a.legend(ncols=2 if layers > 6 else 1)
    if "mean_distance_s" in arrays:
        mean = np.asarray(arrays["mean_distance_s"])  # (layers, heads)
        for i in range(layers):
            b.scatter(np.full(mean.shape[1], i + 1), mean[i], s=12,
                      color=cmap(i / max(layers - 1, 1)))
        b.set_xticks(range(1, layers + 1))
        b.set_xlabel("layer")
        b.set_ylabel("mean attended distance (s), per head")
        b.set_ylim(0, None)
        b.grid(True, alpha=0.3)
    else:
        b.set_visible(False)
    fig.suptitle(title or "Attended distance per layer")
    return style.save(fig, out)


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
                       cells: int = 160, recording: str = "", start_s: float = 0.0) -> Path:
    """probs (layers, heads, tokens, tokens): head-averaged maps, log colour scale, pooled
    to at most `cells` x `cells`; axes in seconds from the recording's start."""
    from matplotlib.colors import LogNorm

    plt = style.pyplot()
    layers, tokens = probs.shape[0], probs.shape[-1]
    cols = min(layers, 3)
    rows = -(-layers // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols + 1.0, 3.0 * rows),
                             squeeze=False, layout="constrained")
    end_s = start_s + tokens * seconds_per_token
    # colour range: from a hundredth of uniform attention (1 / tokens) to 1
    floor = 10 ** np.floor(np.log10(0.01 / max(tokens, 1)))
    extent = (start_s, end_s, start_s + probs.shape[-2] * seconds_per_token, start_s)
    im = None
    for i, ax in enumerate(axes.flat):
        if i >= layers:
            ax.axis("off")
            continue
        mean = pool(probs[i].astype(np.float32).mean(0), cells)
        im = ax.imshow(np.maximum(mean, floor), norm=LogNorm(floor, 1), extent=extent,
                       cmap="viridis", interpolation="nearest")
        ax.set_title(f"layer {i + 1}")
        ax.set_xlabel("key position (s)")
        ax.set_ylabel("query position (s)")
    fig.colorbar(im, ax=axes, shrink=0.8, label="attention probability (mean over heads)")
    where = f"recording {recording}, " if recording else ""
    fig.suptitle(f"Attention, {where}window {start_s:g}–{end_s:.1f} s "
                 f"({tokens} tokens of {seconds_per_token * 1000:g} ms)")
    return style.save(fig, out)


def attention_figures(arrays: Mapping[str, np.ndarray], out: Path, title: str = ""
                      ) -> list[Path]:
    """The distance figure at `out`, and the heat maps beside it (out stem +
    '_heatmaps') when the arrays hold `probs`."""
    written = [attention_distance(arrays, out, title)]
    if "probs" in arrays:
        edges_s, edges_t = np.asarray(arrays["edges_s"]), np.asarray(arrays["edges_tokens"])
        spt = float(edges_s[-1] / edges_t[-1]) if edges_t[-1] else 8 * FRAME_SECONDS
        heat = Path(out).with_name(f"{Path(out).stem}_heatmaps.png")
        written.append(attention_heatmaps(
            np.asarray(arrays["probs"]), spt, heat,
            recording=str(arrays.get("probs_recording", "")),
            start_s=float(arrays.get("probs_start_s", 0.0))))
    return [p for w in written for p in style.outputs(w)]


def attribution_scale(matrix: np.ndarray) -> tuple[float, float]:
    """(vmin <= 0, vmax > 0) of an attribution matrix's colour scale: the 0.5 and 99.5
    percentiles of its off-diagonal values, so the diagonal does not set the scale."""
    matrix = np.asarray(matrix, np.float64)
    off = matrix[~np.eye(*matrix.shape, dtype=bool)]
    off = off[np.isfinite(off)]
    top = float(np.percentile(off, 99.5)) if off.size else float(np.nanmax(matrix))
    bottom = min(0.0, float(np.percentile(off, 0.5))) if off.size else 0.0
    return bottom, max(top, abs(bottom), 1e-12)


def attribution(matrix: np.ndarray, curve: np.ndarray, window_s: float, out: Path,
                what: str = ATTRIBUTION_UNITS["logp"], recording: str = "",
                title: str = "") -> Path:
    """Left: matrix[i, j] (output window i, masked window j; extra columns, such as an
    unmasked baseline, drawn as they come), a diverging colour scale centred on 0 that
    spans the off-diagonal values (the diagonal, far larger, is drawn over the top: the
    colour bar's arrow); right: the mean over |i - j|."""
    from matplotlib.colors import TwoSlopeNorm

    plt = style.pyplot()
    matrix = np.asarray(matrix, np.float64)
    n, m = matrix.shape
    bottom, top = attribution_scale(matrix)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11.0, 4.2), layout="constrained")
    norm = TwoSlopeNorm(0.0, vmin=min(bottom, -1e-12 * top), vmax=top)
    im = a.imshow(matrix, cmap="RdBu_r", norm=norm, interpolation="nearest",
                  extent=(0, m * window_s, n * window_s, 0))
    a.set_xlabel("masked window (s)")
    a.set_ylabel("output window (s)")
    a.set_title("attribution" + (f", recording {recording}" if recording else "")
                + f" ({window_s:g}-s windows)")
    bar = fig.colorbar(im, ax=a, shrink=0.85, extend="max", label=what)
    if bottom > -0.05 * top:  # hardly any negatives: no crowded ticks below zero
        bar.set_ticks([t for t in bar.get_ticks() if t >= 0])
    distance = np.arange(len(curve)) * window_s
    curve = np.asarray(curve, np.float64)
    b.plot(distance, curve, marker="o", markersize=3)
    far = np.abs(curve[1:]).max() if len(curve) > 1 else 0.0
    if far and far < 0.05 * abs(curve[0]):  # the diagonal dwarfs the rest: symlog
        b.set_yscale("symlog", linthresh=far / 10)
        b.set_title("attribution against distance (symmetric log scale)")
    else:
        b.set_title("attribution against distance")
        b.axhline(0, color="0.4", lw=0.8)
    b.set_xlabel("distance between output and masked window (s)")
    b.set_ylabel(f"mean over window pairs, {what.split(' (')[0]}")
    b.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title)
    return style.save(fig, out)


def attribution_figure(arrays: Mapping[str, np.ndarray], out: Path, recording: str | None,
                       title: str = "") -> Path:
    """`attribution` of one recording of an attribution.npz (keys '<id>/wer' or
    '<id>/logp'; the first recording unless named), its curve from the matrix. A WER
    matrix is drawn as the change from the unmasked run's WER (its last column in the
    original's n x (n + 1) layout, else '<id>/wer_base')."""
    ids = list(dict.fromkeys(k.split("/")[0] for k in arrays if "/" in k))
    if not ids:
        raise ValueError("no recording matrices in the arrays (keys '<id>/logp')")
    rid = recording or ids[0]
    if rid not in ids:
        raise KeyError(f"no recording {rid!r} (have {', '.join(ids)})")
    key = next(k for k in ("wer", "logp") if f"{rid}/{k}" in arrays)
    matrix = np.asarray(arrays[f"{rid}/{key}"], np.float64)
    n = matrix.shape[0]
    if key == "wer":  # the original's n x (n + 1) layout: the last column is unmasked
        base = (matrix[:, n:] if matrix.shape[1] == n + 1
                else float(arrays.get(f"{rid}/wer_base", 0.0)))
        matrix = matrix[:, :n] - base
    square = matrix[:, :n]
    d = np.abs(np.arange(n)[:, None] - np.arange(n)[None])
    curve = np.array([square[d == k].mean() for k in range(n)])
    frames = arrays.get(f"{rid}/segment_frames", arrays.get(f"{rid}/window_frames"))
    window_s = float(frames) * FRAME_SECONDS
    return attribution(matrix, curve, window_s, out, ATTRIBUTION_UNITS[key], rid, title)
