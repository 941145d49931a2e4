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
# Columns present only in tables where some row uses them: the noise spec, measured SNR,
# noise mode and seed (eval.noise), the per-token CTC losses, their token counts and
# which targets they used (eval.loss).
EXTRA_COLUMNS = ["noise", "snr_db", "loss", "loss_tokens", "self_loss", "self_loss_tokens",
                 "noise_mode", "noise_seed", "loss_targets"]


def columns_of(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """COLUMNS plus the extra columns some row fills ('noise' only if some row has noise)."""
    def used(c: str) -> bool:
        return any(r.get(c, "") not in ("", None, "none") for r in rows)

    return COLUMNS + [c for c in EXTRA_COLUMNS if used(c)]


def rows_for(result, run: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per recording plus the overall 'all' row. `run` gives dataset, split, name,
    checkpoint, repeat, seq_len, overlap_ratio, model_class, evaluation_mode, overlap."""
    noise = result.noise
    rows = []
    for rec in result.recordings:
        extra = {"noise": noise, "snr_db": rec.snr_db,
                 **(rec.loss.as_row() if rec.loss is not None else {})}
        rows.append({**run, "recording": rec.id, **rec.detail.as_row(), **extra})
    snrs = [r.snr_db for r in result.recordings if r.snr_db is not None]
    extra = {"noise": noise, "snr_db": float(sum(snrs) / len(snrs)) if snrs else None,
             **(result.loss.as_row() if result.loss is not None else {})}
    rows.append({**run, "recording": "all", **result.overall.as_row(), **extra})
    return [{c: "" if row.get(c) is None else row.get(c, "") for c in COLUMNS + EXTRA_COLUMNS}
            for row in rows]


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = columns_of(rows)
    if "noise" in columns:  # rows of clean runs say so
        rows = [{**r, "noise": r.get("noise") or "none"} for r in rows]
    writer.writerow([""] + columns)
    for i, row in enumerate(rows):
        writer.writerow([i] + [row.get(c, "") for c in columns])
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
        atomic_write(path, to_csv(old + list(rows)))


def _own(rows: Sequence[Mapping[str, Any]], run: Mapping[str, Any]) -> list[dict]:
    """Rows without the run's columns and the recording id."""
    return [{k: v for k, v in r.items() if k not in run and k != "recording"} for r in rows]


def write_run(out_dir: Path, stem: str, result, run: Mapping[str, Any],
              table: Path | None = None) -> tuple[Path, Path]:
    """Write <stem>.csv and <stem>.json under out_dir; append to `table` if given."""
    rows = rows_for(result, run)
    csv_path, json_path = Path(out_dir) / f"{stem}.csv", Path(out_dir) / f"{stem}.json"
    atomic_write(csv_path, to_csv(rows))
    doc = {
        "run": dict(run),
        "overall": _own(rows[-1:], run)[0],
        "wall_seconds": result.wall_seconds,
        "recordings": [{
            "id": r.id, **row, "seconds": r.seconds,
            "hypothesis": r.hypothesis, "reference": r.reference,
            "text": r.transcript.text,
        } for r, row in zip(result.recordings, _own(rows[:-1], run), strict=True)],
    }
    atomic_write(json_path, json.dumps(doc, indent=1) + "\n")
    if table is not None:
        append_table(table, rows)
    return csv_path, json_path
