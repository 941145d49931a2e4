"""Result files: per-run CSV (the original's eval/results/*.csv columns), JSON with the
transcripts, and a results table that every run appends to. Writes are atomic; appends to
a table hold its lock (`files.locked`), so concurrent runs never lose each other's rows.

A table holds one overall row (recording 'all') per run, as the original's tables that its
notebook reads; the per-recording rows go to a table of their own beside it,
`<table>_recordings.csv` (`recordings_table`). A row's identity (`row_key`) is its `run`
(the run's file stem: dataset, split, name, mode, context, overlap, repeat, decoder, noise,
data dir and checkpoint) and recording; appending a row whose identity is already in the
table replaces that row in place (the same run evaluated again), so a table never counts
one run twice. Columns the tool does not know (a user's `note`) are kept. A symlinked
table is written through to its target, and locked there.
"""

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
# `run`: the run's identity (its file stem or sweep cell key), which `row_key` reads.
EXTRA_COLUMNS = ["noise", "snr_db", "loss", "loss_tokens", "self_loss", "self_loss_tokens",
                 "noise_mode", "noise_seed", "loss_targets", "run"]
# Identity of a row where the table has no `run` column (the original's tables).
IDENTITY = ("dataset", "split", "name", "checkpoint", "repeat", "seq_len", "overlap_ratio",
            "overlap", "evaluation_mode", "noise", "recording")


def columns_of(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """COLUMNS, the extra columns some row fills ('noise' only if some row has noise), then
    any other column of the rows (a user's own), in the order first seen."""
    def used(c: str) -> bool:
        return any(r.get(c, "") not in ("", None, "none") for r in rows)

    known = set(COLUMNS) | set(EXTRA_COLUMNS)
    others = dict.fromkeys(c for r in rows for c in r if c and c not in known)
    return COLUMNS + [c for c in EXTRA_COLUMNS if used(c)] + list(others)


def row_key(row: Mapping[str, Any]) -> tuple:
    """The identity of a results row: (run, recording) where the row has a run, else the
    `IDENTITY` columns (a missing recording is 'all'; a missing noise 'none')."""
    recording = str(row.get("recording") or "all")
    if row.get("run"):
        return ("run", str(row["run"]), recording)
    values = {**{c: str(row.get(c, "") or "") for c in IDENTITY}, "recording": recording}
    values["noise"] = values["noise"] or "none"
    return ("columns", *(values[c] for c in IDENTITY))


def merge(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> list[dict]:
    """`old` with each row of `new` replacing the row of the same `row_key` in place, or
    appended after them; rows of `old` that share a key keep only the last one."""
    out: dict[tuple, dict] = {}
    for row in [*old, *new]:
        key = row_key(row)
        if key in out:
            out[key] = {**out[key], **row}  # a user's own columns of the old row are kept
        else:
            out[key] = dict(row)
    return list(out.values())


def recordings_table(table: Path) -> Path:
    """The table of the per-recording rows beside the results table `table`."""
    table = Path(table)
    return table.with_name(f"{table.stem}_recordings{table.suffix or '.csv'}")


def split_rows(rows: Sequence[Mapping[str, Any]]) -> tuple[list[dict], list[dict]]:
    """(overall rows, per-recording rows)."""
    overall = [dict(r) for r in rows if (r.get("recording") or "all") == "all"]
    return overall, [dict(r) for r in rows if (r.get("recording") or "all") != "all"]


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


def append_table(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Add rows to the results table at `path` (created with a header if new; `merge`: a
    row of a run already there replaces it), the per-recording ones to its
    `recordings_table`, under one lock of the table's real path (symlinks resolved): safe
    against other processes appending at the same time, through any path to the table.
    Returns the real path written."""
    path = Path(path).expanduser().resolve()
    overall, per_recording = split_rows(rows)
    with locked(path):
        for target, new in ((path, overall), (recordings_table(path), per_recording)):
            if new or target.is_file():
                old = read_table(target) if target.is_file() else []
                atomic_write(target, to_csv(merge(old, new)))
    return path


def _own(rows: Sequence[Mapping[str, Any]], run: Mapping[str, Any]) -> list[dict]:
    """Rows without the run's columns and the recording id."""
    return [{k: v for k, v in r.items() if k not in run and k != "recording"} for r in rows]


def write_run(out_dir: Path, stem: str, result, run: Mapping[str, Any],
              table: Path | None = None) -> tuple[Path, Path]:
    """Write <stem>.csv (the overall row), <stem>_recordings.csv (a row per recording) and
    <stem>.json under out_dir, the rows' `run` being `stem`; append to `table` if given.
    Returns (<stem>.csv, <stem>.json)."""
    run = {**run, "run": stem}
    rows = rows_for(result, run)
    csv_path, json_path = Path(out_dir) / f"{stem}.csv", Path(out_dir) / f"{stem}.json"
    atomic_write(recordings_table(csv_path), to_csv(rows[:-1]))
    atomic_write(csv_path, to_csv(rows[-1:]))
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
