"""Training in legs (lcasr_jax.train.legs): a run started with train.init_from takes the
exported bf16 weights, a fresh optimizer and the previous leg's sequence schedule."""

import importlib.util
from pathlib import Path

import jax
import numpy as np
import pytest
from compile_cache import persistent_cache

from lcasr_jax.checkpoints.store import load_config, load_model_dir
from lcasr_jax.train.loop import train

REPO = Path(__file__).resolve().parents[1]


def _tiny(**train):
    spec = importlib.util.spec_from_file_location("tiny", REPO / "experiments" / "tiny.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = mod.get_config()
    cfg.log.update(tensorboard=False, sample_every_steps=0)
    cfg.checkpoint.update(export_dtype="bfloat16", every_steps=100)
    cfg.sequence.update(increase_every=8)
    cfg.model.n_layers = 1
    cfg.train.update(**train)
    return cfg


def test_a_leg_starts_from_the_previous_export_and_continues_its_schedule(tmp_path):
    with persistent_cache(tmp_path / "jax_cache"):  # leg 2 builds leg 1's programs again
        _legs(tmp_path)


def _legs(tmp_path):
    first = train(_tiny(max_steps=3), tmp_path / "leg1")
    meta1 = dict(load_config(tmp_path / "leg1" / "model").metadata)
    assert meta1["legs"] == 1 and meta1["total_steps"] == 3
    assert meta1["sequence"]["cur_sequence_length"] == first["seq_len"] == 512
    _, v1 = load_model_dir(tmp_path / "leg1" / "model")
    cfg = _tiny(max_steps=2, init_from=str(tmp_path / "leg1" / "model"))
    cfg.seed = 1  # a fresh init would be another draw: far from leg 1's weights
    cfg.optim.update(lr=1e-12, warmup_steps=0)  # MADGRAD's eps 1e-6 still moves them a little
    second = train(cfg, tmp_path / "leg2")
    assert second["seq_len"] == 512  # continued, not restarted at 256
    meta2 = dict(load_config(tmp_path / "leg2" / "model").metadata)
    assert meta2["legs"] == 2 and meta2["total_steps"] == 5
    _, v2 = load_model_dir(tmp_path / "leg2" / "model")
    for a, b in zip(jax.tree.leaves(v1["params"]), jax.tree.leaves(v2["params"]), strict=True):
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        np.testing.assert_allclose(b, a, rtol=0.05, atol=1e-3)
    # Another model's export is refused in one line naming the field.
    other = _tiny(max_steps=1, init_from=str(tmp_path / "leg1" / "model"))
    other.model.n_layers = 2
    with pytest.raises(ValueError, match="init_from=.*fields n_layers"):
        train(other, tmp_path / "leg3")


@pytest.mark.parametrize("recipe", ["", "original"])
def test_default_experiment_is_a_valid_dry_config(recipe):
    from lcasr_jax.configs import load_config
    from lcasr_jax.train.config import check as check_config

    path = f"{REPO / 'experiments' / 'default.py'}" + (f":{recipe}" if recipe else "")
    cfg = load_config(path)
    check_config(cfg)
    assert cfg.data.kind == "dry" and cfg.checkpoint.export_dtype == "bfloat16"
    # the schedule reaches >= 600 s of context
    s = cfg.sequence
    steps = 0
    length = s.length
    while length < s.max_sequence_length:
        length = min(int(length * s.increase_by_multiplier), s.max_sequence_length)
        steps += 1
    assert length >= 60000 and steps * s.increase_every < 2000
    with pytest.raises(ValueError, match="unknown recipe"):
        load_config(f"{REPO / 'experiments' / 'default.py'}:bogus")
