"""The paper's positional-encoding comparison (6L-768D-6H): rotary (theta 1.5M), sinusoidal
(SinePos), none (NoPos); rotary theta 10k is off (its checkpoints are in the original's
2023-preprint branch, not on the hub: pass a local path with --config.models.
rotary10k_6l_768d_6h.checkpoint=DIR/n_seq_sched_{seq_len}_rp_{repeat} and enabled=True).
The seed README's columns: 10 s, 2.7 min and 20 min of context, 3 repeats, TED-LIUM and
Earnings-22 (Rev16 too, off by default here as in the README's table).

    lcasr-jax sweep --config experiments/sweeps/paper_positions.py --out runs/paper/positions
"""

from lcasr_jax.sweeps.config import (
    TABLE_CONTEXTS,
    base_config,
    model,
    paper_datasets,
    released,
)


def get_config():
    cfg = base_config()
    for name in ("rb_6l_768d_6h", "sine_6l_768d_6h", "nopos_6l_768d_6h"):
        cfg.models[name] = released(name)
    cfg.models.rotary10k_6l_768d_6h = model("", enabled=False)
    paper_datasets(cfg)
    cfg.datasets.rev16.enabled = False
    cfg.contexts = TABLE_CONTEXTS
    return cfg
