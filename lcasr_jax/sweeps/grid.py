"""A sweep config (`sweep_config`) expanded into cells: one evaluation each, with a stable key.

A cell's key is readable (dataset, split, model, repeat, mode, context, overlap) plus a hash
of everything that can change its result, so a finished cell is found again after a restart
and a changed setting is a new cell: its settings and, once the sweep has read them
(`sweeps.resolve`), the contents of its checkpoint files and test set, so a model replaced
at the same path or a changed manifest is a new cell too. The batch size is left out
(execution only).
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
    settings: tuple[tuple[str, Any], ...] = ()  # `settings`: decoder, resampler, ...
    options: tuple[tuple[str, Any], ...] = ()
    content: str = ""  # digest of the checkpoint's files and the test set (`sweeps.resolve`)

    def eval_settings(self, overlap: int, batch_size: int):
        """This cell's EvalSettings at `overlap` frames (see `build_settings`)."""
        return build_settings(dict(
            mode=self.mode, context=self.seq_len, overlap=overlap, batch_size=batch_size,
            max_seq_len=self.max_seq_len, **(dict(self.settings) | dict(self.options))))

    @property
    def name(self) -> str:
        tags = [f"{k}={v}" for k, v in self.options if v != NO_OPTION]
        return self.model + (f" [{', '.join(tags)}]" if tags else "")

    def identity(self) -> dict[str, Any]:
        """Everything that can change the result (JSON-able)."""
        d = dataclasses.asdict(self)
        for field in ("settings", "options"):
            d[field] = [list(kv) for kv in d[field]]
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


def _fill(cls, values: dict[str, Any], used: set[str]):
    """`cls` (a dataclass) from `values` by field name; a field whose default is itself a
    dataclass is filled the same way from the same values; '' is None where the default is
    None. The names taken are added to `used`."""
    kwargs = {}
    for f in dataclasses.fields(cls):
        default = None if f.default is dataclasses.MISSING else f.default
        if f.name in values:
            value = values[f.name]
            kwargs[f.name] = None if value == "" and default is None else value
            used.add(f.name)
        elif dataclasses.is_dataclass(default):
            kwargs[f.name] = _fill(type(default), values, used)
    return cls(**kwargs)


def build_settings(values: dict[str, Any]):
    """EvalSettings from flat field names (nested dataclass fields such as a decoder's
    included); a name that no field takes is a ValueError."""
    from lcasr_jax.eval.runner import EvalSettings

    used: set[str] = set()
    settings = _fill(EvalSettings, values, used)
    if set(values) - used:
        raise ValueError(f"evaluation has no setting {sorted(set(values) - used)[0]!r}")
    return settings


def default_settings() -> dict[str, Any]:
    """EvalSettings' own defaults for every field that is not set per cell (decoder,
    resampler, ...), flattened through nested dataclasses: the sweep config's `settings`."""
    from lcasr_jax.eval.runner import EvalSettings

    def flat(obj) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            out.update(flat(value) if dataclasses.is_dataclass(value) else {f.name: value})
        return out

    per_cell = {"mode", "context", "overlap", "batch_size", "max_seq_len"}
    return {k: v for k, v in flat(EvalSettings()).items() if k not in per_cell}


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
    """Every combination of the extra options. An option that evaluation does not know is
    dropped when its only value is 'none' (the grid can name options before eval has them)."""
    from lcasr_jax.eval.runner import EvalSettings

    known = set(default_settings()) | {f.name for f in dataclasses.fields(EvalSettings)}
    axes = []
    for name in sorted(dict(cfg.get("options") or {})):
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
    settings = tuple(sorted(dict(cfg.get("settings") or {}).items()))
    common = dict(dtype=str(cfg.get("dtype", "float32")),
                  max_seq_len=int(cfg.get("max_seq_len", 3_600_000)), settings=settings)
    for options in _options(cfg):  # every combination valid before anything runs
        try:
            build_settings(dict(mode=modes[0], context=contexts[0],
                                **(dict(settings) | dict(options))))  # options win
        except (TypeError, ValueError) as e:
            raise GridError(f"settings/options: {e}") from None
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
