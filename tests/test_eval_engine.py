"""Batched, sharded window evaluation equals one-window-at-a-time evaluation (8 CPU devices,
tiny random-weight SCConformerXL)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lcasr_jax import sharding
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
    """Batched equals one-at-a-time. Returns the input shapes the batched runs fed and the
    number of compilations of the first batched run."""
    assert len(jax.devices()) == 8
    forward, n_dev = engine.make_forward(model, variables)
    single, _ = engine.make_forward(model, variables, sharding.data_mesh(jax.devices()[:1]))
    shapes = set()

    def sharded(spec, lengths):
        shapes.add(spec.shape)
        return forward(spec, lengths)

    before = engine._step_fn()._cache_size()
    batched = engine.run_plans(sharded, specs, plans, batch_size=batch_size, n_devices=n_dev)
    compiled = engine._step_fn()._cache_size() - before
    ids = engine.run_plans(sharded, specs, plans, batch_size=batch_size, n_devices=n_dev,
                           output="ids")
    for spec, plan, got, got_ids in zip(specs, plans, batched, ids, strict=True):
        ref = engine.run_one_at_a_time(single, spec, plan)
        assert got.shape == ref.shape == (plan.out_frames, CLASSES)
        np.testing.assert_allclose(got, ref, atol=2e-5, rtol=0)
        top2 = np.sort(ref, -1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 1e-4  # frames without a near-tie
        np.testing.assert_array_equal(got_ids[clear], ref.argmax(-1)[clear])
    return shapes, compiled


def test_moving_window_batched_equals_one_at_a_time(tiny):
    _, model, variables = tiny
    specs = _specs([900, 1300])  # windows of 400 frames from both, and two 300-frame tails
    plans = [windows.make_plan("averaged_moving_window", s.shape[1], 400, 200, 8) for s in specs]
    assert sum(len(p.windows) for p in plans) == 10
    _compare(model, variables, specs, plans, batch_size=4)


def test_one_compilation_for_recordings_of_different_lengths(tiny):
    """Tail windows (here 217, 300, 311 and 350 frames) are padded to the window
    length, so one input shape, hence one compilation, serves the whole set."""
    _, model, variables = tiny
    specs = _specs([900, 1111, 1017, 350, 1300], seed=4)
    plans = [windows.make_plan("averaged_moving_window", s.shape[1], 400, 200, 8) for s in specs]
    tails = {w.length for p in plans for w in p.windows} - {400}
    assert len(tails) >= 4
    shapes, compiled = _compare(model, variables, specs, plans, batch_size=8)
    assert shapes == {(8, 80, 400)}
    assert compiled <= 1  # 0 when an earlier test compiled this shape


@pytest.mark.parametrize("lengths", [[900, 1111, 350, 1300, 640], [1300]])
def test_two_simulated_processes_equal_one_at_a_time(tiny, simulate, lengths):
    """Two processes of 4 devices each (threads), each with its own recordings (one with
    none in the second case): same shapes and number of model calls on both, and every
    recording's result equals the one-window-at-a-time computation."""
    from lcasr_jax.eval import hosts

    _, model, variables = tiny
    specs = _specs(lengths, seed=5)
    plans = [windows.make_plan("averaged_moving_window", s.shape[1], 400, 200, 8) for s in specs]
    devices = jax.devices()

    def process(h):
        forward, _ = engine.make_forward(model, variables,
                                         sharding.data_mesh(devices[4 * h.index:4 * h.index + 4]))
        calls = []

        def recorded(spec, lengths):
            calls.append(spec.shape)
            return forward(spec, lengths)

        mine = hosts.owned(len(specs), h.index, h.count)
        out = engine.run_plans(recorded, [specs[i] for i in mine], [plans[i] for i in mine],
                               batch_size=8, n_devices=8, hosts=h)
        return out, calls

    (out0, calls0), (out1, calls1) = simulate(2, process)
    assert calls0 == calls1 and set(calls0) == {(4, 80, 400)}
    single, _ = engine.make_forward(model, variables, sharding.data_mesh(devices[:1]))
    for spec, plan, got in zip(specs, plans, hosts.reassemble([out0, out1]), strict=True):
        ref = engine.run_one_at_a_time(single, spec, plan)
        np.testing.assert_allclose(got, ref, atol=2e-5, rtol=0)


def test_buffered_batched_equals_one_at_a_time(tiny):
    _, model, variables = tiny
    specs = _specs([1500, 640], seed=1)
    plans = [windows.make_plan("buffered", s.shape[1], 400, 160, 8) for s in specs]
    assert sum(len(p.windows) for p in plans) == 10  # two batches of 8, the second padded
    _compare(model, variables, specs, plans, batch_size=8)


def test_windowed_attention_batched_equals_one_at_a_time(tiny):
    from lcasr_jax.model import SCConformerXL

    cfg, _, variables = tiny
    model = SCConformerXL(cfg.replace(attention_window=windows.attention_window(160, 8)))
    specs = _specs([600, 600], seed=2)
    plans = [windows.make_plan("windowed_attention", s.shape[1], 160, 0, 8) for s in specs]
    _compare(model, variables, specs, plans, batch_size=8)


def test_time_padding_is_exact_only_with_masked_subsampling(tiny):
    """Why the engine's model masks the subsampling: without it, padding a short window in
    time changes its outputs (the subsampling convolutions see the padded frames)."""
    _, model, variables = tiny
    spec = _specs([203], seed=3)[0]
    padded = np.pad(spec, ((0, 0), (0, 53)), constant_values=3.0)[None]
    exact = jax.jit(model.apply)(variables, spec[None], jnp.array([203]))["final_posteriors"]
    for mask, close in ((False, False), (True, True)):
        apply = jax.jit(model.clone(mask_subsampling=mask).apply)
        out = apply(variables, padded, jnp.array([203]))["final_posteriors"]
        diff = float(jnp.abs(exact[0] - out[0, :exact.shape[1]]).max())
        assert (diff < 2e-5) == close, (mask, diff)


def test_opaque_attention_runs_per_batch_shard(tiny):
    """attention_impl='pallas_gpu' (interpret mode on CPU) on the 8-device 'data' mesh:
    equal to one device's outputs, and no q/k/v/lengths gathered over the whole batch in
    front of the kernel."""
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P
    from test_kernels_shard import batch_gathers

    cfg, model, variables = tiny
    model = model.clone(attention_impl="pallas_gpu")
    rng = np.random.default_rng(6)
    spec = rng.normal(size=(8, 80, 160)).astype(np.float32)
    lengths = rng.integers(60, 161, size=8).astype(np.int32)
    mesh = sharding.data_mesh()
    forward, _ = engine.make_forward(model, variables, mesh)
    single, _ = engine.make_forward(model, variables, sharding.data_mesh(jax.devices()[:1]))
    (got, got_n), (want, want_n) = forward(spec, lengths), single(spec, lengths)
    np.testing.assert_array_equal(np.asarray(got_n), np.asarray(want_n))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=2e-5, rtol=0)

    rows, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    args = (jax.device_put(variables, replicated), jax.device_put(spec, rows),
            jax.device_put(lengths, rows))
    hlo = engine._step_fn().lower(model.clone(mask_subsampling=True), mesh, *args)
    gathers = batch_gathers(hlo.compile().as_text(), 8)
    assert not [g for g in gathers if re.search(rf",{cfg.n_heads},{cfg.head_dim}\]|^s32", g)]


def test_model_for_mode_sets_attention_window(tiny):
    from lcasr_jax.eval.runner import EvalSettings, model_for_mode

    cfg, model, _ = tiny
    windowed = model_for_mode(model, EvalSettings("windowed_attention", context=4096))
    assert windowed.config == cfg.replace(attention_window=(256, 256))
    assert model_for_mode(model, EvalSettings("buffered", context=4096)) is model
