"""Batched, sharded window evaluation equals one-window-at-a-time evaluation (8 CPU devices,
tiny random-weight SCConformerXL)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lcasr_jax.eval import engine, windows

CLASSES = 4096


@pytest.fixture(scope="module")
def tiny():
    from lcasr_jax.model import ModelConfig, SCConformerXL

    cfg = ModelConfig(n_layers=1, d_model=32, n_heads=2, head_dim=16,
                      subsampling_conv_channels=8)
    model = SCConformerXL(cfg)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, 80, 64)),
                                    jnp.array([64]))
    return cfg, model, variables


def _specs(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(80, n)).astype(np.float32) for n in lengths]


def _compare(model, variables, specs, plans, batch_size):
    assert len(jax.devices()) == 8
    sharded, n_dev = engine.make_forward(model, variables)
    single, _ = engine.make_forward(model, variables, engine.data_mesh(jax.devices()[:1]))
    batched = engine.run_plans(sharded, specs, plans, batch_size=batch_size, n_devices=n_dev)
    ids = engine.run_plans(sharded, specs, plans, batch_size=batch_size, n_devices=n_dev,
                           output="ids")
    for spec, plan, got, got_ids in zip(specs, plans, batched, ids, strict=True):
        ref = engine.run_one_at_a_time(single, spec, plan)
        assert got.shape == ref.shape == (plan.out_frames, CLASSES)
        np.testing.assert_allclose(got, ref, atol=2e-5, rtol=0)
        top2 = np.sort(ref, -1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 1e-4  # frames without a near-tie
        np.testing.assert_array_equal(got_ids[clear], ref.argmax(-1)[clear])


def test_moving_window_batched_equals_one_at_a_time(tiny):
    _, model, variables = tiny
    specs = _specs([900, 1300])  # windows of 400 frames from both, and two 300-frame tails
    plans = [windows.make_plan("averaged_moving_window", s.shape[1], 400, 200) for s in specs]
    assert sum(len(p.windows) for p in plans) == 10
    _compare(model, variables, specs, plans, batch_size=4)


def test_buffered_batched_equals_one_at_a_time(tiny):
    _, model, variables = tiny
    specs = _specs([1500, 640], seed=1)
    plans = [windows.make_plan("buffered", s.shape[1], 400, 160) for s in specs]
    assert sum(len(p.windows) for p in plans) == 10  # two batches of 8, the second padded
    _compare(model, variables, specs, plans, batch_size=8)


def test_windowed_attention_batched_equals_one_at_a_time(tiny):
    from lcasr_jax.model import SCConformerXL

    cfg, _, variables = tiny
    model = SCConformerXL(cfg.replace(attention_window=windows.attention_window(160)))
    specs = _specs([600, 600], seed=2)
    plans = [windows.make_plan("windowed_attention", s.shape[1], 160, 0) for s in specs]
    _compare(model, variables, specs, plans, batch_size=8)


def test_time_padding_would_change_the_tail(tiny):
    """Why windows are grouped by exact length: padding a short window in time changes its
    outputs (the subsampling convolutions see the padded frames)."""
    _, model, variables = tiny
    spec = _specs([203], seed=3)[0]
    apply = jax.jit(model.apply)
    exact = apply(variables, spec[None], jnp.array([203]))["final_posteriors"][0]
    padded = np.pad(spec, ((0, 0), (0, 53)))[None]
    pad_out = apply(variables, padded, jnp.array([203]))["final_posteriors"][0]
    assert float(jnp.abs(exact - pad_out[:exact.shape[0]]).max()) > 1e-4


def test_model_for_mode_sets_attention_window(tiny):
    from lcasr_jax.eval.runner import EvalSettings, model_for_mode

    cfg, model, _ = tiny
    windowed = model_for_mode(model, EvalSettings("windowed_attention", seq_len=4096))
    assert windowed.config == cfg.replace(attention_window=(256, 256))
    assert model_for_mode(model, EvalSettings("buffered", seq_len=4096)) is model
