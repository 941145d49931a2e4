"""The paper's released acoustic models, as data (the original repository README's table).

Each Hugging Face repository holds one folder per training context and repeat:
`n_seq_sched_<frames>_rp_<1..3>` (frames of 10 ms: 1024 = 10.24 s), so a checkpoint's name
is `hf://rjflynn2/<model>/n_seq_sched_1024_rp_1` (`hub_name`). WERs are the table's, in %,
at the contexts of `wer_seq_lens` (10 s / 2.7 min / 20 min unless stated); None where the
table has none.
"""

from __future__ import annotations

import dataclasses
from typing import Any

HUB_OWNER = "rjflynn2"
TABLE_SEQ_LENS = (1024, 16384, 131072)  # the table's 10 s / 2.7 min / 20 min, in frames
SEQ_LENS = (1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 360000)
REPEATS = (1, 2, 3)


@dataclasses.dataclass(frozen=True)
class ReleasedModel:
    name: str
    repo: str | None  # OWNER/REPO on the Hugging Face hub; None: not on the hub
    d_model: int
    layers: int
    heads: int
    head_dim: int
    params_m: float  # millions, as the table gives them
    params_approx: bool  # the table's "~"
    positions: str  # rotary | sinusoidal | none
    rotary_base: float | None
    tedlium_wer: tuple[float | None, float | None, float | None]
    earnings22_wer: tuple[float | None, float | None, float | None]
    wer_seq_lens: tuple[int, int, int] = TABLE_SEQ_LENS
    epochs: int = 1
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _rb(name: str, d: int, layers: int, heads: int, params: float, approx: bool,
        ted, earn) -> ReleasedModel:
    return ReleasedModel(name, f"{HUB_OWNER}/lcasr-{name}", d, layers, heads, d // heads,
                         params, approx, "rotary", 1.5e6, ted, earn)


MODELS: tuple[ReleasedModel, ...] = (
    _rb("9L-768D-6H-RB-1p5M", 768, 9, 6, 120, True, (6.8, 6.0, 5.9), (26.6, 23.1, 22.7)),
    _rb("6L-768D-6H-RB-1p5M", 768, 6, 6, 90, False, (6.8, 6.4, 6.2), (27.7, 24.6, 24.4)),
    _rb("6L-768D-12H-RB-1p5M", 768, 6, 12, 90, False, (None, None, None), (27.5, 24.8, 24.4)),
    _rb("6L-768D-24H-RB-1p5M", 768, 6, 24, 90, False, (6.8, 6.4, 6.4), (26.7, 24.6, 24.8)),
    ReleasedModel("6L-768D-6H-RB-10K", None, 768, 6, 6, 128, 90, False, "rotary", 1e4,
                  (None, None, None), (27.2, 24.9, 25.0), wer_seq_lens=(1024, 16384, 360000),
                  note="2023-preprint branch of the original repository, not on the hub; "
                  "last WER at 1 hour"),
    ReleasedModel("6L-768D-6H-SinePos", f"{HUB_OWNER}/lcasr-6L-768D-6H-SinePos", 768, 6, 6,
                  128, 90, False, "sinusoidal", None, (7.2, 6.7, 6.6), (27.8, 25.3, 25.3)),
    ReleasedModel("6L-768D-6H-NoPos", f"{HUB_OWNER}/lcasr-6L-768D-6H-NoPos", 768, 6, 6, 128,
                  90, False, "none", None, (7.7, 6.8, 6.6), (27.5, 25.3, 25.2)),
    _rb("3L-2048D-16H-RB-1p5M", 2048, 3, 16, 315, False, (None, None, None), (28.7, 26.1, 26.1)),
    # Earnings-22 at 20 min: 29.3, the mean of the original's evals_rotary_pos_3l.csv at
    # 131,072 frames (29.30); the original README's 30.2 is that table's 262,144-frame mean.
    dataclasses.replace(
        _rb("3L-768D-6H-RB-1p5M", 768, 3, 6, 50, True, (8.2, 7.8, 7.4), (32.3, 29.6, 29.3)),
        note="Earnings-22 at 20 min corrected to 29.3 (the original README has 30.2, its "
        "43.7-min value)"),
    _rb("12L-256D-8H-RB-1p5M", 256, 12, 8, 20, True, (7.6, 6.9, 6.9), (28.6, 26.3, 26.4)),
    _rb("6L-256D-8H-RB-1p5M", 256, 6, 8, 10, True, (8.8, 8.0, 8.2), (32.2, 29.8, 29.9)),
)


def find(name: str) -> ReleasedModel:
    """A model by its name (e.g. '6L-768D-6H-RB-1p5M') or hub repo; KeyError listing names."""
    for model in MODELS:
        if name in (model.name, model.repo, f"lcasr-{model.name}"):
            return model
    raise KeyError(f"{name}: not a released model ({', '.join(m.name for m in MODELS)})")


def hub_name(model: ReleasedModel | str, seq_len: int, repeat: int = 1) -> str:
    """`hf://` name of the checkpoint trained at `seq_len` frames of context, repeat 1-3."""
    model = find(model) if isinstance(model, str) else model
    if model.repo is None:
        raise ValueError(f"{model.name}: not on the Hugging Face hub ({model.note})")
    if seq_len not in SEQ_LENS or repeat not in REPEATS:
        raise ValueError(f"{model.name}: seq_len must be one of {SEQ_LENS} and repeat one of "
                         f"{REPEATS} (got {seq_len}, {repeat})")
    return f"hf://{model.repo}/n_seq_sched_{seq_len}_rp_{repeat}"


def _theta(base: float) -> str:
    return f"{base / 1e6:g}M" if base >= 1e6 else f"{base / 1e3:g}K"


def _wers(values) -> str:
    return "/".join("..." if v is None else f"{v:.1f}" for v in values)


def table() -> str:
    """The catalogue as a fixed-width text table."""
    head = ("model", "hub repository", "d", "L", "H", "hd", "params", "positions",
            "TED-LIUM %", "Earnings-22 %")
    rows = [head]
    for m in MODELS:
        pos = m.positions if m.rotary_base is None else f"rotary {_theta(m.rotary_base)}"
        rows.append((m.name, m.repo or "(not on the hub)", str(m.d_model), str(m.layers),
                     str(m.heads), str(m.head_dim),
                     ("~" if m.params_approx else "") + f"{m.params_m:g}M", pos,
                     _wers(m.tedlium_wer), _wers(m.earnings22_wer) + ("*" if m.note else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines += ["", "WER at 10 s / 2.7 min / 20 min of context (* 10 s / 2.7 min / 1 h; "
              "2023-preprint branch).",
              "Checkpoints: hf://REPO/n_seq_sched_<frames>_rp_<repeat>, frames in "
              f"{', '.join(map(str, SEQ_LENS))}; repeat 1-3 (e.g. "
              f"{hub_name(MODELS[1], 1024, 1)})."]
    return "\n".join(lines)
