"""`lcasr-jax sweep`: grid expansion, resume after SIGKILL (byte-identical results), and the
notebook-style summary, with the random-weight parity fixture on tiny synthetic data."""

import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from waits import HANG_S

from lcasr_jax.configs import load_config
from lcasr_jax.eval import report
from lcasr_jax.figures import summary
from lcasr_jax.sweeps import cli as sweep_cli
from lcasr_jax.sweeps import grid
from lcasr_jax.sweeps import run as sweep
from lcasr_jax.sweeps.config import base_config, dataset, model

REPO = Path(__file__).resolve().parents[1]
DEMO = str(REPO / "experiments" / "sweeps" / "demo.py")
# Two recordings (3.83 s, 2.55 s); contexts of 64, 128, 256 frames; 2 repeats: 6 cells.
SECONDS = (383 * 0.01, 255 * 0.01)
# `lcasr-jax sweep` that SIGKILLs itself right after writing its first cell's files.
KILLED_AFTER_FIRST_CELL = """
import os, signal, sys
from lcasr_jax import cli
from lcasr_jax.eval import report
write = report.write_run
def write_then_die(*args, **kwargs):
    write(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
report.write_run = write_then_die
sys.exit(cli.main(["sweep", *sys.argv[1:]]))
"""


def _argv(data: Path, checkpoint: Path, out: Path) -> list[str]:
    return ["--config", DEMO, "--out", str(out),
            "--config.contexts=(64,128,256)", "--config.context_unit=frames",
            "--config.overlap_ratios=(0.5,)", f"--config.datasets.synth.data_dir={data}",
            "--config.datasets.synth.generate_hours=0",
            f"--config.models.shipped.checkpoint={checkpoint}"]


def test_sweep_killed_and_resumed_equals_uninterrupted(tmp_path, parity_dir, synth_dir,
                                                       capsys):
    data = synth_dir(tmp_path / "data", SECONDS)
    checkpoint = parity_dir / "rotary_ln" / "checkpoint.pt"
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert sweep_cli.main(_argv(data, checkpoint, whole)) == 0
    assert "6 cells evaluated, 0 finished earlier" in capsys.readouterr().out

    # Killed with SIGKILL by itself once the first cell's files are written (mid-sweep, at
    # the same point on any machine however loaded).
    cells = grid.expand(load_config(DEMO, [a[len("--config."):]
                                           for a in _argv(data, checkpoint, resumed)[4:]]))
    cells, _ = sweep.with_contents(cells, resumed, print)  # keys with the files' digests
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_FIRST_CELL, *_argv(data, checkpoint, resumed),
         "--quiet"], cwd=REPO, env={**os.environ, "JAX_PLATFORMS": "cpu"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=HANG_S)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    done = {c.key: sweep.cell_paths(resumed, c)[1].stat().st_mtime_ns for c in cells
            if sweep.is_done(resumed, c)}
    assert list(done) == [cells[0].key]
    assert not (resumed / "results.csv").exists()

    assert sweep_cli.main(_argv(data, checkpoint, resumed)) == 0
    assert (f"{len(cells) - len(done)} cells evaluated, {len(done)} finished earlier"
            in capsys.readouterr().out)
    for key, mtime in done.items():  # finished cells were not recomputed
        assert (resumed / "cells" / f"{key}.json").stat().st_mtime_ns == mtime
    for name in ("results.csv", "summary.md", "summary.csv"):
        assert (resumed / name).read_bytes() == (whole / name).read_bytes(), name
    assert (resumed / "wer_vs_context.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    table = report.read_table(whole / "results.csv")  # the overall rows, as the original's
    assert [r["recording"] for r in table] == ["all"] * len(cells)
    assert len(report.read_table(whole / "results_recordings.csv")) == len(cells) * 2
    assert [r["seq_len"] for r in table] == ["64", "64", "128", "128", "256", "256"]
    assert {r["repeat"] for r in table} == {"1", "2"}
    csv_rows = (whole / "summary.csv").read_text().splitlines()
    assert csv_rows[0] == "dataset,model,quantity,64,128,256"
    wer_at = {r["seq_len"]: float(r["wer"]) for r in table if r["recording"] == "all"}
    assert csv_rows[1].split(",")[3:] == [f"{100 * wer_at[c]:.4f}" for c in ("64", "128", "256")]

    assert sweep_cli.main(_argv(data, checkpoint, resumed)) == 0  # nothing left: no model run
    assert "0 cells evaluated, 6 finished earlier" in capsys.readouterr().out


def _row(dataset_, seq_len, repeat, wer, recording="all", **extra):
    return {"dataset": dataset_, "split": "test", "name": "rb", "seq_len": str(seq_len),
            "repeat": str(repeat), "wer": str(wer), "recording": recording,
            "evaluation_mode": "averaged_moving_window", "overlap_ratio": "0.875", **extra}


def test_summary_aggregates_overall_rows_as_the_notebook():
    rng = np.random.default_rng(0)
    wers = {1024: rng.uniform(0.2, 0.3, 3), 16384: rng.uniform(0.1, 0.2, 3),
            131072: rng.uniform(0.1, 0.2, 2)}
    rows = []
    for seq_len, values in wers.items():
        for repeat, w in enumerate(values, 1):
            rows.append(_row("earnings22_full", seq_len, repeat, 0.9, recording="call-1"))
            rows.append(_row("earnings22_full", seq_len, repeat, w))
    points = summary.aggregate(rows)
    assert [p.seq_len for p in points] == [1024, 16384, 131072]
    for p in points:  # per-recording rows ignored; mean and pandas-style std (ddof=1)
        assert p.mean == pytest.approx(np.mean(wers[p.seq_len]))
        assert p.std == pytest.approx(np.std(wers[p.seq_len], ddof=1))
    red = summary.reductions(points)
    base = np.mean(wers[1024])
    assert set(red) == {("earnings22_full", "rb", 16384), ("earnings22_full", "rb", 131072)}
    assert red[("earnings22_full", "rb", 16384)] == pytest.approx(
        100 * (base - np.mean(wers[16384])) / base)
    md = summary.to_markdown(points)
    assert "| model | 10.24 s | 2.7 min | 21.8 min |" in md
    assert f"{100 * np.mean(wers[1024]):.2f} ± {100 * np.std(wers[1024], ddof=1):.2f} (n=3)" in md
    # series: a mode or ratio that differs for one model and context tells them apart;
    # a ratio that only varies with the context (overlap rounding) does not
    rounded = [_row("rev16", 1000, 1, 0.2, overlap_ratio="0.872"), _row("rev16", 4000, 1, 0.1)]
    assert {p.series for p in summary.aggregate(rounded)} == {"rb"}
    modes = rounded + [_row("rev16", 1000, 1, 0.3, evaluation_mode="buffered")]
    assert {p.series for p in summary.aggregate(modes)} == {
        "rb (averaged_moving_window)", "rb (buffered)"}
    one = summary.aggregate([_row("rev16", 1024, 1, 0.1)])
    assert math.isnan(one[0].std) and "10.00 (n=1)" in summary.to_markdown(one)


def _config(tmp_path):
    cfg = base_config()
    cfg.models.rb = model("hf://rjflynn2/lcasr-6L-768D-6H-RB-1p5M/n_seq_sched_{seq_len}_rp_"
                          "{repeat}", repeats=(1, 2, 3))
    cfg.models.other = model(str(tmp_path / "x.pt"), repeats=(1,), enabled=False)
    cfg.datasets.tedlium = dataset(str(tmp_path), splits=("test",))
    cfg.contexts = (10.24, 20.48)
    cfg.context_unit = "seconds"
    return cfg


def test_grid_expands_templates_options_and_stable_keys(tmp_path):
    cfg = _config(tmp_path)
    cells = grid.expand(cfg)
    assert [(c.seq_len, c.repeat) for c in cells] == [
        (1024, 1), (1024, 2), (1024, 3), (2048, 1), (2048, 2), (2048, 3)]
    assert cells[4].checkpoint == \
        "hf://rjflynn2/lcasr-6L-768D-6H-RB-1p5M/n_seq_sched_2048_rp_2"
    assert all(c.reader == "tedlium" and c.overlap_ratio == 0.875 and c.name == "rb"
               for c in cells)
    assert cells[0].key.startswith("tedlium-test_rb_r1_averaged_moving_window_1024_0.875_")
    cfg.batch_size = 1  # execution only: same cells
    assert [c.key for c in grid.expand(cfg)] == [c.key for c in cells]
    cfg.dtype = "bfloat16"  # changes results: new cells
    assert not {c.key for c in grid.expand(cfg)} & {c.key for c in cells}
    cfg.only_models = "other"
    assert [c.checkpoint for c in grid.expand(cfg)] == [str(tmp_path / "x.pt")] * 2
    cfg.settings.beam_width = 2  # any EvalSettings field (nested ones too), by name
    cell = grid.expand(cfg)[0]
    assert "beam_width=2" in repr(cell.eval_settings(512, 8)) and cell.key not in \
        {c.key for c in cells}
    cfg.options.noise = ("none", "gaussian:10")  # an option axis overrides its setting
    noisy = [c for c in grid.expand(cfg) if dict(c.options)["noise"] != "none"]
    assert noisy and noisy[0].eval_settings(512, 8).noise == "gaussian:10"
    assert noisy[0].name == "other [noise=gaussian:10]"
    with pytest.raises(ValueError, match="evaluation has no setting 'nope'"):
        grid.build_settings({"mode": "buffered", "nope": 1})


@pytest.mark.parametrize("field, value, message", [
    ("options", {"reverb": ("hall",)}, "options.reverb: evaluation has no option"),
    ("options", {"noise": ("pink:10",)}, "noise 'pink:10': kind must be"),
    ("modes", ("sliding",), "modes: unknown evaluation mode 'sliding'"),
    ("overlap_ratios", (1.0,), "overlap_ratios: each in [0, 1)"),
    ("only_models", "nope", "only_models: no model 'nope'"),
    ("contexts", (-1,), "contexts: positive numbers expected"),
])
def test_grid_errors_name_the_field(tmp_path, field, value, message):
    cfg = _config(tmp_path)
    with cfg.unlocked():
        cfg[field] = value
    with pytest.raises(grid.GridError, match=re.escape(message)):
        grid.expand(cfg)


def test_grid_unset_data_dir_and_bad_template(tmp_path):
    cfg = _config(tmp_path)
    cfg.datasets.tedlium.data_dir = ""
    with pytest.raises(grid.GridError, match="datasets.tedlium.data_dir: not set"):
        grid.expand(cfg)
    cfg = _config(tmp_path)
    cfg.models.rb.checkpoint = "x_{context}"
    with pytest.raises(grid.GridError, match="models.rb.checkpoint: bad placeholder"):
        grid.expand(cfg)


def test_shipped_sweep_configs_expand(tmp_path):
    for path in sorted((REPO / "experiments" / "sweeps").glob("*.py")):
        cfg = load_config(str(path))
        with cfg.unlocked():
            for ds in cfg.datasets.values():
                ds.data_dir = ds.data_dir or str(tmp_path)
        cells = grid.expand(cfg)
        assert cells, path.name
        json.dumps([c.identity() for c in cells])


def test_finished_cells_are_process_zeros_view(tmp_path, simulate):
    cells = grid.expand(_config(tmp_path))
    for cell in cells[:2]:
        for path in sweep.cell_paths(tmp_path / "p0", cell):
            report.atomic_write(path, "x")
    # process 1 looks at an empty directory (e.g. not yet synced) and follows process 0
    views = simulate(2, lambda h: sweep.finished(tmp_path / f"p{h.index}", cells, h))
    assert views == [[True, True] + [False] * (len(cells) - 2)] * 2
