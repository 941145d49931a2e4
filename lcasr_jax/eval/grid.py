"""A sweep config (`sweep_config`) expanded into cells: one evaluation each, with a stable key.

A cell's key is readable (dataset, split, model, repeat, mode, context, overlap) plus a hash
of everything that can change its result, so a finished cell is found again after a restart
and a changed setting is a new cell. The batch size is left out (execution only).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

from lcasr_jax.data.features import FRAMES_PER_SECOND
from lcasr_jax.eval.windows import MODES

NO_OPTION = "none"  # an extra option's value that means "off"


@dataclasses.dataclass(frozen=True)
class Cell:
    """One evaluation of the grid. `options` are extra EvalSettings fields (sorted pairs);
    `name` is the results' model name (the model's, plus its options that are not 'none')."""

    model: str
    repeat: int
    checkpoint: str  # '' = the shipped model
    dataset: str
    reader: str
    data_dir: str
    split: str
    limit: int  # <= 0: every recording
    seq_len: int  # frames
    overlap_ratio: float
    mode: str
    dtype: str
    max_seq_len: int
    beam_width: int
    kenlm: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        tags = [f"{k}={v}" for k, v in self.options if v != NO_OPTION]
        return self.model + (f" [{', '.join(tags)}]" if tags else "")

    def identity(self) -> dict[str, Any]:
        """Everything that can change the result (JSON-able)."""
        d = dataclasses.asdict(self)
        d["options"] = [list(kv) for kv in self.options]
        return d

    @property
    def key(self) -> str:
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode())
        text = (f"{self.dataset}-{self.split}_{self.name}_r{self.repeat}_{self.mode}_"
                f"{self.seq_len}_{self.overlap_ratio:g}")
        return re.sub(r"[^A-Za-z0-9._=+-]+", "-", text).strip("-") + "_" + \
            digest.hexdigest()[:12]


class GridError(ValueError):
    """A config field that cannot be expanded (the message names it)."""


def _tuple(cfg: Mapping, field: str, where: str) -> tuple:
    value = cfg.get(field)
    if isinstance(value, (str, int, float)):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not value:
        raise GridError(f"{where}{field}: expected a non-empty list (got {value!r})")
    return tuple(value)


def context_frames(cfg: Mapping) -> tuple[int, ...]:
    """`contexts` in frames (`context_unit` frames or seconds; seconds are rounded)."""
    unit = cfg.get("context_unit", "frames")
    if unit not in ("frames", "seconds"):
        raise GridError(f"context_unit: 'frames' or 'seconds' (got {unit!r})")
    out = []
    for c in _tuple(cfg, "contexts", ""):
        if isinstance(c, bool) or not isinstance(c, (int, float)) or c <= 0:
            raise GridError(f"contexts: positive numbers expected (got {c!r})")
        out.append(int(round(c * FRAMES_PER_SECOND)) if unit == "seconds" else int(c))
    return tuple(out)


def _options(cfg: Mapping) -> list[tuple[tuple[str, Any], ...]]:
    """Every combination of the extra options that EvalSettings accepts. An option eval
    does not know is an error unless its only value is 'none' (then it is dropped)."""
    from lcasr_jax.eval.runner import EvalSettings

    known = {f.name for f in dataclasses.fields(EvalSettings)}
    axes = []
    for name, values in sorted(dict(cfg.get("options") or {}).items()):
        values = _tuple(cfg["options"], name, "options.")
        if name not in known:
            if set(values) == {NO_OPTION}:
                continue
            raise GridError(f"options.{name}: evaluation has no option {name!r}")
        axes.append([(name, v) for v in values])
    return [tuple(combo) for combo in itertools.product(*axes)]


def _format(template: str, field: str, **values: Any) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as e:
        raise GridError(f"{field}: bad placeholder {e} in {template!r} (use {{seq_len}}, "
                        f"{{repeat}})") from None


def expand(cfg: Mapping) -> list[Cell]:
    """Cells of the sweep config `cfg` in a fixed order: dataset, split, model, mode,
    overlap, options, context, repeat (the order of the final results table)."""
    contexts = context_frames(cfg)
    modes = _tuple(cfg, "modes", "")
    for mode in modes:
        if mode not in MODES:
            raise GridError(f"modes: unknown evaluation mode {mode!r} "
                            f"(choose from {', '.join(MODES)})")
    ratios = _tuple(cfg, "overlap_ratios", "")
    for r in ratios:
        if not isinstance(r, (int, float)) or not 0 <= r < 1:
            raise GridError(f"overlap_ratios: each in [0, 1) (got {r!r})")
    only = [m for m in str(cfg.get("only_models", "")).split(",") if m.strip()]
    models = dict(cfg.get("models") or {})
    for m in only:
        if m.strip() not in models:
            raise GridError(f"only_models: no model {m.strip()!r} (have {', '.join(models)})")
    models = {k: v for k, v in models.items()
              if (k in {m.strip() for m in only} if only else v.get("enabled", True))}
    datasets = {k: v for k, v in dict(cfg.get("datasets") or {}).items()
                if v.get("enabled", True)}
    if not models:
        raise GridError("models: no enabled model")
    if not datasets:
        raise GridError("datasets: no enabled dataset")
    decoder = cfg.get("decoder") or {}
    common = dict(dtype=str(cfg.get("dtype", "float32")),
                  max_seq_len=int(cfg.get("max_seq_len", 3_600_000)),
                  beam_width=int(decoder.get("beam_width", 0)),
                  kenlm=str(decoder.get("kenlm", "") or ""))
    cells = []
    for ds_name, ds in datasets.items():
        if not ds.get("data_dir"):
            raise GridError(f"datasets.{ds_name}.data_dir: not set (pass --config.datasets."
                            f"{ds_name}.data_dir=DIR or --config.datasets.{ds_name}."
                            f"enabled=False)")
        for split, (m_name, m), mode, ratio, options in itertools.product(
                _tuple(ds, "splits", f"datasets.{ds_name}."), models.items(), modes, ratios,
                _options(cfg)):
            for seq_len, repeat in itertools.product(
                    contexts, _tuple(m, "repeats", f"models.{m_name}.")):
                checkpoint = _format(str(m.get("checkpoint", "")),
                                     f"models.{m_name}.checkpoint", seq_len=seq_len,
                                     repeat=repeat)
                cells.append(Cell(
                    m_name, int(repeat), checkpoint, ds_name, ds.get("reader") or ds_name,
                    str(ds["data_dir"]), str(split), int(ds.get("limit", -1)), seq_len,
                    float(ratio), str(mode), options=options, **common))
    if len({c.key for c in cells}) != len(cells):
        raise GridError("the grid lists some cells twice (repeated contexts, repeats, "
                        "modes or options?)")
    return cells
