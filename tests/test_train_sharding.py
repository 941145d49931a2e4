"""Sharded loss/gradients equal the single-device ones (8 fake CPU devices)."""

import importlib.util
import re
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec
from test_kernels_shard import batch_gathers

from lcasr_jax import sharding as shd
from lcasr_jax.data.sources.synthetic import SyntheticSource
from lcasr_jax.train import step as step_lib
from lcasr_jax.train.optim import make_optimizer
from lcasr_jax.train.state import build_model, create_state, init_variables

REPO = Path(__file__).resolve().parents[1]


def tiny_config():
    spec = importlib.util.spec_from_file_location("tiny", REPO / "experiments" / "tiny.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = mod.get_config()
    cfg.model.update(d_model=16, n_heads=2, head_dim=8, subsampling_conv_channels=4)
    cfg.train.intermediate_loss_weighting = 0.3  # exercise the self-conditioning loss too
    return cfg


@pytest.fixture(scope="module")
def setup():
    cfg = tiny_config()
    model = build_model(cfg)
    state = jax.jit(lambda: create_state(model, make_optimizer(cfg.optim, 0.0), 0))()
    batch, _ = SyntheticSource(seed=1).next_batch(256, 8)
    single = shd.make_mesh(1, 1, 1, devices=jax.devices()[:1])
    return cfg, model, jax.device_get(state), batch, _loss_and_grads(cfg, model, state, batch,
                                                                      single)


_COMPILED: dict = {}  # (attention impl, mesh shape, padded batch shape) -> compiled


def _loss_and_grads(cfg, model, state, batch, mesh):
    shardings = step_lib.state_shardings(model, cfg, mesh)
    state = jax.device_put(state, shardings)
    args = (state.params, state, shd.put_batch(batch, mesh))
    key = (cfg.train.attention_impl, mesh.devices.shape, args[2]["spec"].shape)
    if key not in _COMPILED:  # the same program for the same shapes: compile once
        fn = jax.jit(jax.value_and_grad(step_lib.make_loss_fn(model, cfg, mesh), has_aux=True))
        _COMPILED[key] = fn.lower(*args).compile()
    compiled = _COMPILED[key]
    (loss, (stats, metrics)), grads = compiled(*args)
    return jax.device_get((loss, stats, metrics, grads)), (shardings, compiled)


def _assert_close(got, want):
    """(loss, batch_stats, metrics, grads) of a sharded run equal the single-device ones."""
    (l8, s8, m8, g8), (l1, s1, m1, g1) = got, want
    np.testing.assert_allclose(l8, l1, rtol=2e-5)
    np.testing.assert_allclose(m8["ctc_sum"], m1["ctc_sum"], rtol=2e-5)
    assert m8["frames"] == m1["frames"]
    flat1, flat8 = jax.tree.leaves_with_path(g1), jax.tree.leaves(g8)
    scale = max(np.abs(a).max() for _, a in flat1)  # rounding is relative to the largest grad
    for (path, a), b in zip(flat1, flat8, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-5 * scale, rtol=1e-3,
                                   err_msg=jax.tree_util.keystr(path))
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s8), strict=True):  # renorm stats
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 2, 2), (1, 1, 8)], ids=["data2-fsdp2-seq2", "seq8"])
def test_sharded_loss_and_grads_match_single_device(setup, shape):
    cfg, model, state, batch, (want, (_, compiled1)) = setup
    got, (sh, compiled8) = _loss_and_grads(cfg, model, state, batch, shd.make_mesh(*shape))
    _assert_close(got, want)
    if shape[0] * shape[1] > 1:  # each device computes its own rows: no gather of the
        # whole batch anywhere (depthwise convs did, with channels sharded over 'fsdp')
        assert batch_gathers(compiled8.as_text(), len(batch["lengths"])) == []
    temp1, temp8 = (c.memory_analysis().temp_size_in_bytes for c in (compiled1, compiled8))
    if shape == (1, 1, 8):  # context parallelism: activations really split over 'seq'
        assert temp8 < 0.75 * temp1, (temp8, temp1)
    if shape[1] > 1:  # fsdp really shards the weights
        specs = {str(s.spec) for s in jax.tree.leaves(sh.params)}
        assert any("fsdp" in s for s in specs), specs


def test_logical_rules_cover_every_name_the_model_uses_and_no_other(monkeypatch):
    import flax.linen as nn

    used: set[str] = set()

    def record(names):
        used.update(n for n in names if n is not None)

    real_constraint = nn.with_logical_constraint
    monkeypatch.setattr(nn, "with_logical_constraint",
                        lambda x, names, *a, **k: (record(names), real_constraint(x, names))[1])
    mesh = shd.make_mesh(2, 2, 2)
    batch, _ = SyntheticSource(seed=1).next_batch(256, 8)
    options = [{}, {"default_norm": "rms_norm", "conv_norm": "layer_norm", "qkv_bias": True,
                    "bias_in_ff": True, "sandwich_norm": True, "subsampling_norm_out": True}]
    for extra in options:
        cfg = tiny_config()
        cfg.model.update(**extra)
        model = build_model(cfg)
        boxed = jax.eval_shape(lambda m=model: init_variables(m, jax.random.key(0)))
        for spec in jax.tree.leaves(nn.get_partition_spec(boxed),
                                    is_leaf=lambda x: isinstance(x, PartitionSpec)):
            record(spec)
        state = jax.eval_shape(lambda m=model, c=cfg: create_state(
            m, make_optimizer(c.optim, 0.0), 0))
        jax.eval_shape(step_lib.make_loss_fn(model, cfg, mesh), state.params, state,
                       shd.put_batch(batch, mesh))
    record([n for names in shd.BATCH_FIELDS.values() for n in names])
    assert "conv_flat" in used and "norm" in used and "qkv" in used
    assert used == {name for name, _ in shd.LOGICAL_RULES}


def test_indivisible_batch_is_padded_with_zero_weight_rows_not_replicated(setup):
    cfg, model, state, _, _ = setup
    batch, _ = SyntheticSource(seed=2).next_batch(256, 5)  # 5 rows on 4 batch shards
    single = shd.make_mesh(1, 1, 1, devices=jax.devices()[:1])
    want, _ = _loss_and_grads(cfg, model, state, batch, single)
    mesh = shd.make_mesh(2, 2, 2)
    put = shd.put_batch(batch, mesh)
    assert put["spec"].shape[0] == 8 and put["spec"].sharding.spec[0] == ("data", "fsdp")
    np.testing.assert_array_equal(put["weight"], [1] * 5 + [0] * 3)
    got = _loss_and_grads(cfg, model, state, batch, mesh)[0]
    _assert_close(got, want)
    assert got[2]["rows"] == want[2]["rows"] == 5  # the loss is normalised by these


def test_pallas_attention_step_runs_per_batch_shard(setup):
    """attention_impl='pallas_gpu' (interpret mode on CPU) on data2-fsdp2-seq2: the step
    equals one device's with the XLA attention, and no q/k/v/lengths are gathered over the
    batch for the kernel."""
    _, _, state, batch, (want, _) = setup
    cfg = tiny_config()
    cfg.train.attention_impl = "pallas_gpu"
    model = build_model(cfg)
    got, (_, compiled) = _loss_and_grads(cfg, model, state, batch, shd.make_mesh(2, 2, 2))
    heads, head_dim = cfg.model.n_heads, cfg.model.head_dim
    gathers = batch_gathers(compiled.as_text(), len(batch["lengths"]))
    assert not [g for g in gathers if re.search(rf",{heads},{head_dim}\]|^s32", g)], gathers
    _assert_close(got, want)


def test_checkpoint_of_another_layout_restores_into_this_one(setup, tmp_path):
    """Checkpoints written while depthwise-conv weights were sharded over fsdp (before they
    got the replicated 'depthwise' axis) restore exactly into today's shardings."""
    from jax.sharding import NamedSharding

    from lcasr_jax.train.resume import Checkpointer

    cfg, model, state, _, _ = setup
    mesh = shd.make_mesh(2, 4, 1)
    shardings = step_lib.state_shardings(model, cfg, mesh)

    def old_layout(path, leaf, sharding):
        if "depthwise" in jax.tree_util.keystr(path) and leaf.shape[-1] % 4 == 0:
            return NamedSharding(mesh, PartitionSpec(*[None] * (leaf.ndim - 1), "fsdp"))
        return sharding

    old = jax.tree_util.tree_map_with_path(old_layout, state, shardings)
    moved = [jax.tree_util.keystr(path) for (path, a), b in zip(
        jax.tree.leaves_with_path(old), jax.tree.leaves(shardings), strict=True) if a != b]
    assert len(moved) >= 4, moved  # conv kernels and biases, params and optimizer state
    ckpt = Checkpointer(tmp_path, async_save=False)
    ckpt.save(1, jax.device_put(state, old), {"note": "old layout"})
    ckpt.wait()
    abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                            state, shardings)
    step, restored, meta = ckpt.restore_latest(abstract)
    ckpt.close()
    assert step == 1 and meta == {"note": "old layout"}
    for want, got, sharding in zip(jax.tree.leaves(state), jax.tree.leaves(restored),
                                   jax.tree.leaves(shardings), strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        assert got.sharding.is_equivalent_to(sharding, got.ndim)
