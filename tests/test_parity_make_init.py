"""scripts/original_replay/make_init.py: the weights a fresh run starts from, for both trainers.

Its model dir must hold exactly the parameters `lcasr-jax train` would create for the same
config and seed (so `train.init_from` it is a fresh run), and its init.pt the same weights as
the original's model reads them (through this project's released-format reader).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jax
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _make_init():
    spec = importlib.util.spec_from_file_location(
        "make_init", REPO / "scripts" / "original_replay" / "make_init.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_init_writes_a_fresh_runs_weights_in_both_formats(tmp_path):
    from lcasr_jax.checkpoints.convert import read_released
    from lcasr_jax.checkpoints.store import load_model_dir
    from lcasr_jax.configs import load_config
    from lcasr_jax.sharding import make_mesh
    from lcasr_jax.train import step as step_lib
    from lcasr_jax.train.state import build_model

    overrides = ["seed=7", "model.param_init=torch"]
    _make_init().main(["--config", str(REPO / "experiments" / "tiny.py"), "--set", *overrides,
                       "--out", str(tmp_path)])
    cfg = load_config(str(REPO / "experiments" / "tiny.py"), overrides)
    model = build_model(cfg)
    mesh = make_mesh(cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.seq)
    state = step_lib.jit_create_state(model, cfg, step_lib.state_shardings(model, cfg, mesh))()
    fresh = jax.tree_util.tree_flatten_with_path(jax.device_get(state.params))[0]

    _, variables = load_model_dir(tmp_path / "model")
    written = dict(jax.tree_util.tree_flatten_with_path(variables["params"])[0])
    assert len(written) == len(fresh)
    for path, value in fresh:
        np.testing.assert_array_equal(written[path], value, err_msg=jax.tree_util.keystr(path))

    _, from_pt, _, _ = read_released(tmp_path / "init.pt")
    back = dict(jax.tree_util.tree_flatten_with_path(from_pt["params"])[0])
    for path, value in fresh:
        np.testing.assert_allclose(back[path], value, rtol=0, atol=0,
                                   err_msg=jax.tree_util.keystr(path))
