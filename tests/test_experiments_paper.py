"""experiments/paper.py: every variant equals the per-model config file it replaced, plus
the original's training behaviours (issue 21) unless `,project` is asked for.

REFERENCE holds the values the twelve files experiments/<name>.py set (recorded from them
before they were folded into one family); every other field must be base_config's, except
the FIDELITY fields, which a variant sets (and `VARIANT,project` does not).
"""

from pathlib import Path

import pytest

from lcasr_jax.configs import ConfigError, load_config
from lcasr_jax.train.config import base_config

PAPER = Path(__file__).resolve().parents[1] / "experiments" / "paper.py"
FIELDS = ("model.n_layers", "model.d_model", "model.n_heads", "model.head_dim",
          "model.subsampling_conv_channels", "model.use_rotary", "model.rotary_base_freq",
          "model.fourier_pos_enc", "optim.lr", "optim.warmup_steps", "train.remat")
REFERENCE = {
    "rb_6l_768d_6h": (6, 768, 6, 128, 256, True, 1500000.0, False, 0.003, 5000, 'none'),
    "rb_6l_768d_12h": (6, 768, 12, 64, 256, True, 1500000.0, False, 0.003, 1500, 'none'),
    "rb_6l_768d_24h": (6, 768, 24, 32, 256, True, 1500000.0, False, 0.003, 1500, 'none'),
    "rb_3l_768d_6h": (3, 768, 6, 128, 256, True, 1500000.0, False, 0.003, 1500, 'none'),
    "rb_9l_768d_6h": (9, 768, 6, 128, 256, True, 1500000.0, False, 0.002, 5000, 'full'),
    "rb_12l_768d_6h": (12, 768, 6, 128, 256, True, 1500000.0, False, 0.002, 5000, 'full'),
    "rb_3l_2048d_16h": (3, 2048, 16, 128, 512, True, 1500000.0, False, 0.002, 5000, 'none'),
    "rb_6l_256d_8h": (6, 256, 8, 32, 256, True, 1500000.0, False, 0.003, 1500, 'none'),
    "rb_12l_256d_8h": (12, 256, 8, 32, 256, True, 1500000.0, False, 0.003, 1500, 'none'),
    # warm-up 1,500 as its only template (original/exp_set_seq_sched), not the file's 5,000
    "rotary10k_6l_768d_6h": (6, 768, 6, 128, 256, True, 10000.0, False, 0.003, 1500, 'none'),
    "sine_6l_768d_6h": (6, 768, 6, 128, 256, False, 10000.0, True, 0.003, 1500, 'none'),
    "nopos_6l_768d_6h": (6, 768, 6, 128, 256, False, 10000.0, False, 0.003, 1500, 'none'),
}

def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out


# The original's training, as the paper variants select it (README "Training as the
# original"); batch_renorm_rerun_every is 1 where the template checkpoints every layer.
FIDELITY = {"model.param_init": "torch", "model.batch_renorm_padding": True,
            "model.batch_renorm_dtype": "bfloat16", "train.position_dtype": "bfloat16",
            "train.batching": "original", "train.nonfinite": "skip",
            "data.resampler": "torchaudio"}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_variant_matches_the_file_it_replaced(name):
    want = _flat(base_config().to_dict())
    want.update(zip(FIELDS, REFERENCE[name], strict=True))
    assert _flat(load_config(f"{PAPER}:{name},project").to_dict()) == want
    want.update(FIDELITY)
    want["model.batch_renorm_rerun_every"] = int(name.startswith(("rb_9l", "rb_12l_768")))
    assert _flat(load_config(f"{PAPER}:{name}").to_dict()) == want


def test_family_has_exactly_the_papers_models_and_refuses_others():
    from importlib import util

    spec = util.spec_from_file_location("paper", PAPER)
    paper = util.module_from_spec(spec)
    spec.loader.exec_module(paper)
    assert set(paper.VARIANTS) == set(REFERENCE)
    with pytest.raises(ConfigError, match="needs a variant.*rb_6l_768d_6h"):
        load_config(str(PAPER))
    with pytest.raises(ConfigError, match="'rb_7l'"):
        load_config(f"{PAPER}:rb_7l")
    with pytest.raises(ConfigError, match="one of project.*'lecun'"):
        load_config(f"{PAPER}:rb_6l_768d_6h,lecun")
