"""Resumable evaluation sweeps: every cell of a grid (`grid.expand`) evaluated once.

Each finished cell is written atomically to DIR/cells/<key>.csv (the eval columns,
per-recording rows and the overall 'all' row) and then <key>.json (run settings,
transcripts): the JSON marks the cell done. A rerun (after a crash or SIGKILL at any point)
evaluates only the cells without one. DIR/results.csv is then assembled from the cell files
in grid order, so it is the same, byte for byte, however often the sweep was interrupted.

Cells are run grouped by checkpoint (each loaded once for all its cells); the eval engine
shards windows over all devices and compiles once per window shape (shared by every cell of
a model). With several processes (jax.distributed) every process runs every cell, reading
its share of the recordings (`eval.runner`), and process 0 writes; process 0's view of the
finished cells is the one all follow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lcasr_jax.eval import report
from lcasr_jax.eval.hosts import Hosts
from lcasr_jax.sweeps.grid import Cell


@dataclasses.dataclass(frozen=True)
class SweepResult:
    computed: list[str]  # keys evaluated by this run
    skipped: list[str]  # keys found finished
    table: Path | None  # DIR/results.csv (process 0 only)


def cell_paths(out: Path, cell: Cell) -> tuple[Path, Path]:
    cells = Path(out) / "cells"
    return cells / f"{cell.key}.csv", cells / f"{cell.key}.json"


def is_done(out: Path, cell: Cell) -> bool:
    csv_path, json_path = cell_paths(out, cell)
    return json_path.is_file() and csv_path.is_file()


def run_info(cell: Cell, checkpoint: str, overlap: int) -> dict:
    """The eval columns of a cell's rows (as `lcasr-jax eval` writes them): the overlap
    ratio as configured and the overlap used (frames, rounded to the subsampling factor)."""
    return {"dataset": cell.dataset, "split": cell.split, "name": cell.name,
            "checkpoint": checkpoint, "repeat": cell.repeat, "seq_len": cell.seq_len,
            "overlap_ratio": cell.overlap_ratio, "model_class": "SCConformerXL",
            "evaluation_mode": cell.mode, "overlap": overlap}


def _recordings(cell: Cell, cache: dict) -> list:
    """The cell's recordings (read once per reader, directory and split)."""
    from lcasr_jax.eval.datasets import DatasetError, load_dataset

    ident = (cell.reader, cell.data_dir, cell.split)
    if ident not in cache:
        try:
            cache[ident] = load_dataset(cell.reader, Path(cell.data_dir).expanduser(),
                                        cell.split)
        except DatasetError as e:
            raise DatasetError(f"{e} (datasets.{cell.dataset})") from None
    recordings = cache[ident]
    return recordings[: cell.limit] if cell.limit > 0 else recordings


def finished(out: Path, cells: Sequence[Cell], hosts: Hosts) -> list[bool]:
    """Which cells have their files, as process 0 sees them (the same on every process)."""
    flags = np.array([hosts.main and is_done(out, c) for c in cells] or [False])
    return [bool(f) for f in hosts.allgather(flags)[0][: len(cells)]]


def assemble(out: Path, cells: Sequence[Cell]) -> Path:
    """DIR/results.csv (the overall rows, which the original's notebook reads) and
    DIR/results_recordings.csv from the cell files, in grid order (raises naming a missing
    cell)."""
    overall, per_recording = [], []
    for cell in cells:
        csv_path, _ = cell_paths(out, cell)
        if not is_done(out, cell):
            raise FileNotFoundError(f"{csv_path}: cell not finished")
        for target, path in ((overall, csv_path), (per_recording,
                                                   report.recordings_table(csv_path))):
            if path.is_file():
                target += [{c: r.get(c, "") for c in report.COLUMNS + report.EXTRA_COLUMNS}
                           for r in report.read_table(path)]
    table = Path(out) / "results.csv"
    report.atomic_write(report.recordings_table(table), report.to_csv(per_recording))
    report.atomic_write(table, report.to_csv(overall))
    return table


def with_contents(cells: Sequence[Cell], out: Path, say) -> tuple[list[Cell], dict]:
    """The cells with their content digests (`sweeps.resolve`), and {checkpoint: local
    path}. Every dataset and checkpoint is read before the first model runs; every missing
    checkpoint is named in one error."""
    from lcasr_jax.sweeps import resolve

    cache: dict = {}
    datasets = {}
    for cell in cells:
        ident = (cell.reader, cell.data_dir, cell.split)
        if ident not in datasets:
            recs = _recordings(dataclasses.replace(cell, limit=-1), cache)
            datasets[ident] = resolve.dataset_digest(recs, Path(cell.data_dir))
    local = resolve.resolve_checkpoints((c.checkpoint for c in cells), log=say)
    sums = resolve.Checksums(Path(out) / resolve.CHECKSUMS)
    digests = {c: sums.tree(Path(p)) for c, p in local.items()}
    sums.save()
    return [dataclasses.replace(cell, content=hashlib.sha256(
        f"{digests[cell.checkpoint]}\0{datasets[(cell.reader, cell.data_dir, cell.split)]}"
        .encode()).hexdigest()[:16]) for cell in cells], local


def run_sweep(cells: Sequence[Cell], out: Path, *, batch_size: int = 8,
              results_table: Path | None = None, progress: bool = True,
              inner_progress: bool = False, hosts: Hosts | None = None,
              log=print) -> SweepResult:
    """Evaluate every unfinished cell, then assemble DIR/results.csv. One `log` line per
    cell (process 0). `results_table`: also append each newly evaluated cell's rows there
    (`report.append_table`, as `lcasr-jax eval` does), after its cell files: a cell killed
    between the two is not appended again (DIR/results.csv is the complete table)."""
    from lcasr_jax.checkpoints.load import load_model
    from lcasr_jax.eval.runner import evaluate
    from lcasr_jax.eval.windows import overlap_frames

    hosts = hosts if hosts is not None else Hosts.current()
    say = log if progress and hosts.main else (lambda *a, **k: None)
    out = Path(out)
    cells, local = with_contents(cells, out, say)
    done = dict(zip((c.key for c in cells), finished(out, cells, hosts), strict=True))
    todo = [c for c in cells if not done[c.key]]
    position = {c.key: i + 1 for i, c in enumerate(cells)}
    say(f"sweep: {len(cells)} cells, {len(cells) - len(todo)} finished earlier, "
        f"{len(todo)} to run -> {out}")
    for cell in cells:
        if done[cell.key]:
            say(f"[{position[cell.key]}/{len(cells)}] {cell.key}: finished earlier")
    cache: dict = {}
    groups: dict[tuple[str, str], list[Cell]] = {}
    for cell in todo:
        groups.setdefault((cell.checkpoint, cell.dtype), []).append(cell)
    computed = []
    for (checkpoint, dtype), group in groups.items():
        model, variables, loaded = load_model(str(local[checkpoint]), dtype)
        factor = model.config.subsampling_factor
        for cell in group:
            t0 = time.perf_counter()
            overlap = overlap_frames(cell.seq_len, None, cell.overlap_ratio, factor)
            result = evaluate(_recordings(cell, cache), model, variables,
                              cell.eval_settings(overlap, batch_size), progress=inner_progress,
                              hosts=hosts)
            if hosts.main:
                csv_path, _ = report.write_run(
                    out / "cells", cell.key, result,
                    run_info(cell, checkpoint or str(loaded), overlap))
                if results_table is not None:
                    report.append_table(results_table, report.read_table(
                        report.recordings_table(csv_path)) + report.read_table(csv_path))
            computed.append(cell.key)
            o = result.overall
            say(f"[{position[cell.key]}/{len(cells)}] {cell.key}: WER {100 * o.wer:.2f}% "
                f"({o.words} words, {time.perf_counter() - t0:.1f} s)")
    skipped = [c.key for c in cells if done[c.key]]
    table = assemble(out, cells) if hosts.main else None
    return SweepResult(computed, skipped, table)


def prepare_synthetic(cfg, hosts: Hosts) -> None:
    """Generate the held-out synthetic test sets that the config asks for (datasets with
    generate_hours > 0 whose data_dir has no manifest.json yet), on process 0."""
    import os

    from lcasr_jax.data.synth.generate import generate

    for name, ds in dict(cfg.get("datasets") or {}).items():
        hours = float(ds.get("generate_hours", 0) or 0)
        if not ds.get("enabled", True) or hours <= 0 or not ds.get("data_dir"):
            continue
        out = Path(ds["data_dir"]).expanduser()
        if hosts.main and not (out / "manifest.json").is_file():
            print(f"sweep: generating about {hours * 60:.0f} min of held-out synthetic test "
                  f"speech in {out} (datasets.{name})", file=sys.stderr, flush=True)
            generate(str(out), hours, split="test", seed=int(ds.get("generate_seed", 0)),
                     minutes=float(ds.get("generate_minutes", 3.0)),
                     workers=min(2, os.cpu_count() or 1), progress=False)
    hosts.allgather(np.zeros(1))  # the others wait for process 0
