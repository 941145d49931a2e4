"""Result files: per-run CSV (the original's eval/results/*.csv columns), JSON with the
transcripts, and a results table that every run appends to. Writes are atomic; appends to
a table hold its lock (`files.locked`), so concurrent runs never lose each other's rows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lcasr_jax.files import atomic_write, locked

# The original's columns (pandas wrote an unnamed index column first), then ours.
ORIGINAL_COLUMNS = ["dataset", "split", "wer", "recording", "words", "ins_rate", "del_rate",
                    "sub_rate", "name", "checkpoint", "repeat", "seq_len", "overlap_ratio",
                    "model_class"]
COLUMNS = ORIGINAL_COLUMNS + ["evaluation_mode", "overlap"]


def rows_for(result, run: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per recording plus the overall 'all' row. `run` gives dataset, split, name,
    checkpoint, repeat, seq_len, overlap_ratio, model_class, evaluation_mode, overlap."""
    rows = []
    for rec in result.recordings:
        rows.append({**run, "recording": rec.id, **rec.detail.as_row()})
    rows.append({**run, "recording": "all", **result.overall.as_row()})
    return [{c: row.get(c, "") for c in COLUMNS} for row in rows]


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([""] + COLUMNS)
    for i, row in enumerate(rows):
        writer.writerow([i] + [row[c] for c in COLUMNS])
    return buf.getvalue()


def read_table(path: Path) -> list[dict[str, str]]:
    """Rows of a results CSV (ours or the original's), index column dropped."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "wer" not in reader.fieldnames:
            raise ValueError(f"{path}: not a results table (no 'wer' column)")
        return [{k: v for k, v in row.items() if k} for row in reader]


def append_table(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append rows to the results table at `path` (created with a header if new), under
    the table's lock: safe against other processes appending at the same time."""
    path = Path(path)
    with locked(path):
        old = read_table(path) if path.is_file() else []
        atomic_write(path, to_csv([{c: r.get(c, "") for c in COLUMNS} for r in old]
                                  + list(rows)))


def write_run(out_dir: Path, stem: str, result, run: Mapping[str, Any],
              table: Path | None = None) -> tuple[Path, Path]:
    """Write <stem>.csv and <stem>.json under out_dir; append to `table` if given."""
    rows = rows_for(result, run)
    csv_path, json_path = Path(out_dir) / f"{stem}.csv", Path(out_dir) / f"{stem}.json"
    atomic_write(csv_path, to_csv(rows))
    doc = {
        "run": dict(run),
        "overall": result.overall.as_row(),
        "wall_seconds": result.wall_seconds,
        "recordings": [{
            "id": r.id, **r.detail.as_row(), "seconds": r.seconds,
            "hypothesis": r.hypothesis, "reference": r.reference,
            "text": r.transcript.text,
        } for r in result.recordings],
    }
    atomic_write(json_path, json.dumps(doc, indent=1) + "\n")
    if table is not None:
        append_table(table, rows)
    return csv_path, json_path
