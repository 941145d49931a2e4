"""Catalogue of results tables and sweep cells (issue 24 cases 2, 3, 6, 7, 8; issue 23's sweep
checks): nothing lost, no run counted twice, no cell reused after its inputs changed. Each
test names its case; none runs a model (seconds)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from waits import HANG_S

from lcasr_jax.eval import report
from lcasr_jax.eval.job import run_name, run_stem
from lcasr_jax.figures import summary
from lcasr_jax.files import lock_path
from lcasr_jax.sweeps import grid, resolve
from lcasr_jax.sweeps import run as sweep
from lcasr_jax.sweeps.config import base_config, dataset, model

REPO = Path(__file__).resolve().parents[1]


def _row(run: str, recording: str = "all", wer: float = 0.25, **extra) -> dict:
    return {"dataset": "rev16", "split": "test", "wer": wer, "recording": recording,
            "name": "rb", "checkpoint": "a.pt", "repeat": 1, "seq_len": 1024,
            "overlap_ratio": 0.875, "model_class": "SCConformerXL", "run": run, **extra}


def _lines(path: Path) -> list[dict]:
    return list(csv.DictReader(path.read_text().splitlines()))


def test_case02_append_keeps_a_users_own_columns(tmp_path):
    table = tmp_path / "results.csv"
    report.append_table(table, [_row("one")])
    rows = _lines(table)
    rows[0]["note"] = "checked by hand"  # the user adds a column of their own
    with open(table, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report.append_table(table, [_row("two")])
    after = _lines(table)
    assert [r["run"] for r in after] == ["one", "two"]
    assert [r["note"] for r in after] == ["checked by hand", ""]


def test_case03_run_names_differ_for_checkpoints_with_one_last_component(tmp_path):
    a, b = tmp_path / "runA" / "model.pt", tmp_path / "runB" / "model.pt"
    assert run_name(str(a)) != run_name(str(b))
    assert run_name(str(a)).startswith("model-")
    assert run_name(str(a)) == run_name(str(tmp_path / "runA" / ".." / "runA" / "model.pt"))
    info = {"dataset": "synth", "split": "test", "name": "same", "evaluation_mode": "m",
            "seq_len": 128, "overlap": 64, "repeat": 1, "data_dir": str(tmp_path)}
    assert run_stem({**info, "checkpoint": str(a)}) != run_stem({**info, "checkpoint": str(b)})
    # two models under one name and repeat are refused, not averaged as "2 repeats"
    rows = [_row("x", checkpoint=str(a)), _row("y", checkpoint=str(b), wer=0.5)]
    with pytest.raises(ValueError, match="two checkpoints"):
        summary.aggregate([{k: str(v) for k, v in r.items()} for r in rows])


def test_case07_symlinked_table_written_at_its_target_with_one_lock(tmp_path):
    target = tmp_path / "shared" / "results.csv"
    link = tmp_path / "mine" / "results.csv"
    link.parent.mkdir()
    report.append_table(target, [_row("one")])
    link.symlink_to(target)
    assert report.append_table(link, [_row("two")]) == target
    assert link.is_symlink() and [r["run"] for r in _lines(target)] == ["one", "two"]
    # two processes appending at once through the two paths keep every row
    code = ("import sys; from lcasr_jax.eval import report\n"
            "for i in range(15): report.append_table(sys.argv[1], [dict(dataset='d', "
            "split='t', wer=0.1, name='n', run=f'{sys.argv[2]}{i}', recording='all')])")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(p), tag], cwd=REPO)
             for p, tag in ((target, "t"), (link, "l"))]
    assert [p.wait(timeout=HANG_S) for p in procs] == [0, 0]
    assert len(_lines(target)) == 2 + 30 and link.is_symlink()
    assert not lock_path(link).exists()  # the lock is the target's


def test_case08_the_same_run_twice_is_one_set_of_rows(tmp_path):
    table = tmp_path / "results.csv"
    rows = [_row("cell-a", "rec-1"), _row("cell-a"), _row("cell-b", wer=0.5)]
    report.append_table(table, rows)
    report.append_table(table, rows)  # a second sweep sharing the table: the same cells
    assert [r["run"] for r in _lines(table)] == ["cell-a", "cell-b"]
    assert len(_lines(report.recordings_table(table))) == 1
    report.append_table(table, [_row("cell-a", wer=0.125)])  # rerun: the new row, in place
    assert [(r["run"], r["wer"]) for r in _lines(table)] == [("cell-a", "0.125"),
                                                            ("cell-b", "0.5")]
    # a table that already holds a run twice (older versions) counts it once
    twice = [{k: str(v) for k, v in _row("c").items()}] * 2
    (point,) = summary.aggregate(twice)
    assert point.wers == (0.25,)


def _sweep_config(tmp_path: Path, checkpoint: Path, data: Path):
    cfg = base_config()
    cfg.models.m = model(str(checkpoint), repeats=(1,))
    cfg.datasets.synth = dataset(str(data))
    cfg.contexts = (128, 256)
    return cfg


def _keys(cells, out):
    return [c.key for c in sweep.with_contents(cells, out, lambda line: None)[0]]


def test_case06_cell_keys_follow_the_model_and_test_set_contents(tmp_path, synth_dir):
    data = synth_dir(tmp_path / "data", (1.0,))
    checkpoint = tmp_path / "run" / "model.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"weights one")
    cells = grid.expand(_sweep_config(tmp_path, checkpoint, data))
    out = tmp_path / "sweep"
    first = _keys(cells, out)
    assert _keys(cells, out) == first  # stable
    assert json.loads((out / resolve.CHECKSUMS).read_text())  # digests remembered
    checkpoint.write_bytes(b"weights two")  # a model replaced at the same path
    replaced = _keys(cells, out)
    assert not set(replaced) & set(first)
    meta = data / "test-s0-00000.json"
    doc = json.loads(meta.read_text())
    doc["words"][1]["word"] = "evening"  # the test set's reference changed
    meta.write_text(json.dumps(doc))
    assert not set(_keys(cells, out)) & set(replaced)


def test_sweep_names_every_missing_checkpoint_before_the_first_cell(tmp_path, synth_dir):
    data = synth_dir(tmp_path / "data", (1.0,))
    cfg = _sweep_config(tmp_path, tmp_path / "ckpt_{seq_len}.pt", data)
    (tmp_path / "ckpt_128.pt").write_bytes(b"x")
    cfg.contexts = (128, 256, 512)
    cells = grid.expand(cfg)
    with pytest.raises(FileNotFoundError) as e:
        sweep.run_sweep(cells, tmp_path / "out", progress=False)
    message = str(e.value)
    assert message.startswith("2 of 3 checkpoints not found")
    assert "ckpt_256.pt" in message and "ckpt_512.pt" in message
    assert not (tmp_path / "out" / "cells").exists()  # nothing ran


def test_sweep_probes_the_hub_once_when_offline(tmp_path, monkeypatch):
    probes, calls = [], []  # the names as the sweep's resolver holds them
    monkeypatch.setattr(resolve, "hub_offline", lambda: probes.append(1) or True)
    monkeypatch.setattr(resolve, "resolve_checkpoint",
                        lambda name, offline=False: calls.append(offline) or tmp_path)
    logged = []
    names = [f"hf://o/r/n_seq_sched_{n}_rp_1" for n in (1024, 2048, 4096)]
    assert resolve.resolve_checkpoints(names * 2, log=logged.append) == dict.fromkeys(
        names, tmp_path)
    assert probes == [1] and calls == [True] * 3 and len(logged) == 1


def test_hub_offline_reads_hf_hub_offline_without_a_request(monkeypatch):
    from huggingface_hub import constants

    from lcasr_jax.checkpoints import hub

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: pytest.fail("no request"))
    assert hub.hub_offline()


def test_overlap_recorded_as_configured_and_as_used(tmp_path):
    from lcasr_jax.eval.job import configured_ratio
    from lcasr_jax.eval.windows import overlap_frames

    used = overlap_frames(1000, None, 0.875, 8)  # int(875) rounded down to the factor
    assert used == 872 and configured_ratio(1000, None, 0.875) == 0.875
    assert configured_ratio(1000, 200, None) == 0.2
    cfg = base_config()
    cfg.models.m = model(str(tmp_path / "m.pt"), repeats=(1,))
    cfg.datasets.synth = dataset(str(tmp_path))
    cfg.contexts = (1000,)
    (cell,) = grid.expand(cfg)
    info = sweep.run_info(cell, "m.pt", used)
    assert (info["overlap_ratio"], info["overlap"]) == (0.875, 872)
