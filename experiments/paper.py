"""The paper's models as one config family: `--config experiments/paper.py:VARIANT`.

    lcasr-jax train --config experiments/paper.py:rb_6l_768d_6h --workdir runs/rb6l \\
        --config.data.path=DATASET_DIR

Every variant is `base_config` (the original's paper_templates schedule: MADGRAD, clip 0.8,
512 frames x 704 recordings doubling every 5000 recordings up to one hour) with the
columns of `VARIANTS` set: layers, width, heads (head_dim = d_model / heads), positional
encoding, lr, warm-up steps and remat; `subsampling_conv_channels` is 512 for the 2048-wide
model, the default 256 otherwise. The `template` column names the original's
exp/configs/paper_templates file each variant reproduces.

Every variant also trains as the original trained (issue 21): the fields of `FIDELITY`
(README, "Fidelity to the original": what each does and this project's default), and
`model.batch_renorm_rerun_every=1` where the template checkpoints every layer (remat
'full'; its `checkpoint_every_n_layers: 1`).
`experiments/paper.py:VARIANT,project` leaves them at this project's defaults.
"""

from lcasr_jax.train.config import FIDELITY, base_config

# positions: rotary base frequency, or "sine" (learnable Fourier), or "none".
POSITIONS = {"rb": 1_500_000.0, "rotary10k": 10_000.0, "sine": "sine", "nopos": "none"}

# name: (n_layers, d_model, n_heads, lr, warmup_steps, remat, template)
VARIANTS = {
    "rb_6l_768d_6h": (6, 768, 6, 3e-3, 5000, "none", "exp_set_seq_rotary_base"),
    "rb_6l_768d_12h": (6, 768, 12, 3e-3, 1500, "none", "exp_set_rot_12h"),
    "rb_6l_768d_24h": (6, 768, 24, 3e-3, 1500, "none", "exp_set_rot_24h"),
    "rb_3l_768d_6h": (3, 768, 6, 3e-3, 1500, "none", "exp_set_rot_encodings_3l"),
    "rb_9l_768d_6h": (9, 768, 6, 2e-3, 5000, "full", "exp_set_seq_rotary_base_9l"),
    "rb_12l_768d_6h": (12, 768, 6, 2e-3, 5000, "full", "exp_set_seq_rotary_base_12l"),
    "rb_3l_2048d_16h": (3, 2048, 16, 2e-3, 5000, "none", "exp_set_seq_rotary_base_3l_2048"),
    "rb_6l_256d_8h": (6, 256, 8, 3e-3, 1500, "none", "exp_set_rot_encodings_6l_256"),
    "rb_12l_256d_8h": (12, 256, 8, 3e-3, 1500, "none", "exp_set_rot_encodings_12l_256"),
    # the 2023 preprint's model: rotary base 10k (the model's default base), whose only
    # template (original/exp_set_seq_sched) warms up over 1,500 steps
    "rotary10k_6l_768d_6h": (6, 768, 6, 3e-3, 1500, "none", "original/exp_set_seq_sched"),
    "sine_6l_768d_6h": (6, 768, 6, 3e-3, 1500, "none", "exp_set_fourier_encodings"),
    "nopos_6l_768d_6h": (6, 768, 6, 3e-3, 1500, "none", "exp_set_no_rotary"),
}


GROUPS = ("project",)  # VARIANT,GROUP: 'project' = without FIDELITY


def _positions(kind: str) -> dict:
    pos = POSITIONS[kind]
    if pos == "none":
        return {"use_rotary": False}
    if pos == "sine":
        return {"use_rotary": False, "fourier_pos_enc": True}
    return {"rotary_base_freq": pos}


def _set(cfg, dotted: str, value) -> None:
    *parents, name = dotted.split(".")
    node = cfg
    for part in parents:
        node = node[part]
    node[name] = value


def get_config(spec: str = ""):
    variant, _, group = spec.partition(",")
    if variant not in VARIANTS:
        raise ValueError(f"paper.py needs a variant, experiments/paper.py:NAME with NAME one "
                         f"of {', '.join(VARIANTS)} (got {variant!r})")
    if group and group not in GROUPS:
        raise ValueError(f"experiments/paper.py:{spec}: after the comma, one of "
                         f"{', '.join(GROUPS)} (got {group!r})")
    n_layers, d_model, n_heads, lr, warmup_steps, remat, _ = VARIANTS[variant]
    model = dict(n_layers=n_layers, d_model=d_model, n_heads=n_heads,
                 head_dim=d_model // n_heads, **_positions(variant.split("_")[0]))
    if d_model == 2048:
        model["subsampling_conv_channels"] = 512
    cfg = base_config(**model)
    cfg.optim.update(lr=lr, warmup_steps=warmup_steps)
    cfg.train.remat = remat
    if group != "project":
        for dotted, value in FIDELITY.items():
            _set(cfg, dotted, value)
        # checkpoint_every_n_layers: 1 reruns each layer's forward in the backward
        cfg.model.batch_renorm_rerun_every = 1 if remat != "none" else 0
    return cfg
