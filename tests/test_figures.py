"""The paper's figures (`lcasr-jax plot --figure ...`): vector files beside a PNG of at
least 150 dpi, the paper's names and units as text in the SVG, shared context axes, tick
labels that do not overlap, a reduction axis that does not blow up a tiny change, and an
attribution scale the diagonal does not set. Drawn from the original's own published
results table (docs/figures/original/evals_rb.csv, commit 88da226) and small arrays."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from lcasr_jax.eval import report
from lcasr_jax.figures import analysis, context, style, summary
from lcasr_jax.figures import cli as plot

REPO = Path(__file__).resolve().parents[1]
ORIGINAL = REPO / "docs" / "figures" / "original"


def _svg_text(png: Path) -> str:
    """The SVG's text elements (svg.fonttype 'none' keeps text as text)."""
    svg = png.with_suffix(".svg").read_text()
    return " ".join(re.sub(r"<[^>]+>", " ", t) for t in re.findall(r"<text[^>]*>.*?</text>",
                                                                  svg, re.S))


def _dpi(png: Path) -> float:
    from PIL import Image

    with Image.open(png) as im:
        return float(im.info["dpi"][0])


def test_figure1_as_published(tmp_path):
    out = tmp_path / "figure1.png"
    assert plot.main([str(ORIGINAL / "evals_rb.csv"), "--figure", "figure1",
                      "--out", str(out)]) == 0
    for ext in ("png", "pdf", "svg"):
        assert out.with_suffix(f".{ext}").stat().st_size > 1000
    assert _dpi(out) >= 150
    text = _svg_text(out)
    for name in ("Earnings-22", "TED-LIUM", "Rev16", "context (minutes)",
                 "WER reduction (%) from 10.24 s"):
        assert name in text, name
    assert "earnings22_full" not in text and "tedlium_concat" not in text


def test_panels_share_the_context_axis_with_readable_ticks(tmp_path):
    rows = report.read_table(ORIGINAL / "evals_rb.csv")
    points = style.paper_points(summary.aggregate(rows))
    plt = style.pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(3.4, 5), sharex=True)
    contexts = sorted({p.seq_len for p in points})
    for ax in (top, bottom):
        style.context_axis(ax, contexts)
    style.thin_tick_labels(fig, [top, bottom])
    assert top.get_xlim() == bottom.get_xlim()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    shown = [t for t in bottom.get_xticklabels() if t.get_text()]
    boxes = sorted((t.get_window_extent(renderer) for t in shown), key=lambda b: b.x0)
    assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:], strict=False))
    assert shown[-1].get_text() == "60" and 3 <= len(shown) < len(contexts)
    plt.close(fig)
    # the command: WER and reduction panels, the paper's names
    out = tmp_path / "p.png"
    assert context.panels(points, out, kind="positions") == out
    assert "TED-LIUM" in _svg_text(out) and _dpi(out) >= 150


def test_reduction_axis_of_a_tiny_change_is_not_zoomed():
    plt = style.pyplot()
    fig, ax = plt.subplots()
    style.reduction_limits(ax, [0.01])
    lo, hi = ax.get_ylim()
    assert hi - lo >= 2 and lo < 0 < 0.01 < hi
    plt.close(fig)


def _noise_rows(specs):
    rows = []
    for k, spec in enumerate(specs):
        for seq_len, wer in ((1024, 0.30), (4096, 0.28 - 0.01 * k), (16384, 0.27 - 0.02 * k)):
            rows.append({"dataset": "rev16", "split": "test", "name": "rb", "repeat": "1",
                         "checkpoint": "a.pt", "seq_len": str(seq_len), "wer": str(wer),
                         "recording": "all", "noise": spec, "run": f"{spec}{seq_len}"})
    return rows


def test_noise_figure_is_reduction_per_snr(tmp_path):
    rows = _noise_rows(["none", "background:music.wav:-5", "background:music.wav:5"])
    out = tmp_path / "noise.png"
    from lcasr_jax.figures import noise

    noise.reduction_per_snr(rows, out)
    text = _svg_text(out)
    assert "SNR (dB)" in text and "no noise" in text and "WER reduction (%) from 10.24 s" \
        in text and "Rev16" in text
    assert noise.snr_of("background:x:-7.5") == (-7.5, -7.5)
    assert noise.snr_of("evals_rb_rev16_bnoise_m7p5_SNR") == (-7.5, -7.5)
    assert noise.snr_of("gaussian:0:20") == (0.0, 20.0) and noise.snr_of("none") is None
    with pytest.raises(ValueError, match="no rows with a noise SNR"):
        noise.reduction_per_snr(_noise_rows(["none"]), out)


def test_attribution_scale_is_not_set_by_the_diagonal(tmp_path):
    rng = np.random.default_rng(0)
    matrix = rng.uniform(0, 0.1, (12, 12)) + np.eye(12) * 10
    lo, hi = analysis.attribution_scale(matrix)
    assert lo == 0 and 0.09 < hi < 0.1
    arrays = {"r1/wer": np.c_[matrix, np.full(12, 50.0)], "r1/window_frames": np.array(500),
              "r1/logp": matrix}
    out = analysis.attribution_figure(arrays, tmp_path / "a.png", None)
    text = _svg_text(out)
    assert "recording r1" in text and "WER change (points) from the unmasked run" in text


def test_heat_maps_name_recording_and_window(tmp_path):
    probs = np.full((2, 2, 40, 40), 1 / 40, np.float32)
    out = analysis.attention_heatmaps(probs, 0.08, tmp_path / "h.png", recording="talk-1",
                                      start_s=30)
    text = _svg_text(out)
    assert "recording talk-1, window 30–33.2 s" in text
    assert "attention probability (mean over heads)" in text and _dpi(out) >= 150


def test_plot_errors_are_one_line(tmp_path, capsys):
    assert plot.main([str(tmp_path / "none.csv")]) == 1
    assert plot.main([str(ORIGINAL / "evals_rb.csv"), "--figure", "attention"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "none.csv: results table not found" in err[0]
