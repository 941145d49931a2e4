"""Default sweep config (ml_collections) that the files in experiments/sweeps/ start from.

A sweep is the grid models x repeats x datasets x splits x contexts x overlap ratios x modes
x extra options; every point (a *cell*) is one evaluation. Units: contexts in spectrogram
frames (100 per second) or seconds (`context_unit`); overlap as a fraction of the context.

Checkpoint strings may name `{seq_len}` (frames) and `{repeat}`, as the paper's released
models have one checkpoint per training context and repeat:
`hf://rjflynn2/lcasr-6L-768D-6H-RB-1p5M/n_seq_sched_{seq_len}_rp_{repeat}`.
They are loaded by `lcasr-jax eval`'s loader (paths, converted dirs and whatever names it
accepts); '' is the shipped model.
"""

from __future__ import annotations

import ml_collections

from lcasr_jax.eval.windows import MAX_SEQ_LEN
from lcasr_jax.sweeps.grid import default_settings

# The paper's contexts in frames: 10.24 s doubling to 43.7 min, then one hour.
PAPER_CONTEXTS = (1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 360000)
# The seed README's table columns: 10 s, 2.7 min, 20 min.
TABLE_CONTEXTS = (1024, 16384, 131072)


# The paper's released models on the Hugging Face hub (the seed README's table): config name
# (as experiments/<name>.py) -> repository. Each holds one folder per training context and
# repeat, n_seq_sched_<frames>_rp_<repeat>.
HUB_OWNER = "rjflynn2"
RELEASED = {
    "rb_9l_768d_6h": "lcasr-9L-768D-6H-RB-1p5M",
    "rb_6l_768d_6h": "lcasr-6L-768D-6H-RB-1p5M",
    "rb_6l_768d_12h": "lcasr-6L-768D-12H-RB-1p5M",
    "rb_6l_768d_24h": "lcasr-6L-768D-24H-RB-1p5M",
    "sine_6l_768d_6h": "lcasr-6L-768D-6H-SinePos",
    "nopos_6l_768d_6h": "lcasr-6L-768D-6H-NoPos",
    "rb_3l_2048d_16h": "lcasr-3L-2048D-16H-RB-1p5M",
    "rb_3l_768d_6h": "lcasr-3L-768D-6H-RB-1p5M",
    "rb_12l_256d_8h": "lcasr-12L-256D-8H-RB-1p5M",
    "rb_6l_256d_8h": "lcasr-6L-256D-8H-RB-1p5M",
}


def released(name: str, repeats: tuple[int, ...] = (1, 2, 3)) -> ml_collections.ConfigDict:
    """A released model (`RELEASED`): one checkpoint per context and repeat, from the hub."""
    return model(f"hf://{HUB_OWNER}/{RELEASED[name]}/n_seq_sched_{{seq_len}}_rp_{{repeat}}",
                 repeats)


def paper_datasets(cfg: ml_collections.ConfigDict) -> None:
    """The paper's long-form test sets, read from data/<folder> unless overridden
    (--config.datasets.NAME.data_dir=DIR); see `lcasr_jax/eval/datasets/` for layouts.
    This American Life is off (the Interspeech figure and tables use the other three)."""
    cfg.datasets.earnings22_full = dataset("data/earnings22")
    cfg.datasets.tedlium = dataset("data/TEDLIUM_release1")
    cfg.datasets.rev16 = dataset("data/rev16")
    cfg.datasets.this_american_life = dataset("data/this_american_life", enabled=False)


def paper_sweep(*models: str) -> ml_collections.ConfigDict:
    """The paper's evaluation of released `models` (catalogue names): `base_config` at
    the ten PAPER_CONTEXTS on the paper's test sets (`paper_datasets`), 3 repeats each."""
    cfg = base_config()
    for name in models:
        cfg.models[name] = released(name)
    paper_datasets(cfg)
    cfg.contexts = PAPER_CONTEXTS
    return cfg


def model(checkpoint: str = "", repeats: tuple[int, ...] = (1, 2, 3),
          enabled: bool = True) -> ml_collections.ConfigDict:
    """One model row: a checkpoint (template) evaluated once per repeat id."""
    return ml_collections.ConfigDict(dict(checkpoint=checkpoint, repeats=tuple(repeats),
                                          enabled=enabled))


def dataset(data_dir: str = "", splits: tuple[str, ...] = ("test",), reader: str = "",
            enabled: bool = True, limit: int = -1, **extra) -> ml_collections.ConfigDict:
    """One test set: `reader` (an eval dataset name; default: the config key) reading
    `data_dir`; `limit` > 0 keeps the first recordings only. `extra` adds reader-specific
    fields (the synthetic corpus: generate_hours, generate_minutes, generate_seed)."""
    return ml_collections.ConfigDict(dict(data_dir=data_dir, splits=tuple(splits),
                                          reader=reader, enabled=enabled, limit=limit, **extra))


def base_config() -> ml_collections.ConfigDict:
    """The paper's evaluation settings (eval_manager defaults): overlap ratio 0.875, the
    averaged moving window, greedy decoding (EvalSettings' default), float32."""
    cfg = ml_collections.ConfigDict()
    cfg.models = ml_collections.ConfigDict()  # name -> model(...)
    cfg.only_models = ""  # comma-separated model names to run ('' = every enabled model)
    cfg.datasets = ml_collections.ConfigDict()  # name (the results' dataset) -> dataset(...)
    cfg.contexts = PAPER_CONTEXTS
    cfg.context_unit = "frames"  # or "seconds"
    cfg.overlap_ratios = (0.875,)
    cfg.modes = ("averaged_moving_window",)
    # Every other evaluation setting (decoder, ...), with EvalSettings' own defaults; one
    # value each. E.g. --config.settings.beam_width=4 --config.settings.kenlm=lm.arpa.
    cfg.settings = ml_collections.ConfigDict(default_settings())
    # Extra evaluation options, each a tuple of values = one more axis of the grid. Passed
    # by name to EvalSettings; the value 'none' of an option eval does not have is a no-op.
    cfg.options = ml_collections.ConfigDict(dict(noise=("none",)))
    cfg.dtype = "float32"  # model compute dtype (float32 or bfloat16)
    cfg.max_seq_len = MAX_SEQ_LEN  # frames per window in windowed_attention mode
    cfg.batch_size = 8  # windows per model call: execution only, not part of a cell's identity
    return cfg
