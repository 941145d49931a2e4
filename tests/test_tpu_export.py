"""The TPU path lowers, proven on a CPU machine: `jax.export(..., platforms=['tpu'])` of the
eval forward (splash attention, full and windowed, padded rows), the eval engine's batched
step and the sharded training step on a (data, fsdp, seq) mesh of 8 fake devices.

Lowering runs jax's TPU rules, Pallas's Mosaic lowering of the splash kernels (block shapes,
memory spaces, the kernel body) and the SPMD sharding annotations; it cannot run Mosaic's own
compiler or XLA:TPU (their checks happen on a TPU), nor measure anything.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from lcasr_jax import sharding as shd
from lcasr_jax.eval import engine
from lcasr_jax.kernels import attention
from lcasr_jax.model import ModelConfig, SCConformerXL
from lcasr_jax.train import step as step_lib
from lcasr_jax.train.optim import make_optimizer
from lcasr_jax.train.state import build_model, create_state

CFG = ModelConfig(n_layers=2, d_model=32, n_heads=2, head_dim=16, subsampling_conv_channels=8,
                  vocab_size=30)
FRAMES = 1000  # 125 tokens: splash pads them to one 128-block, padded rows and keys masked


def tpu_custom_calls(exported: jax.export.Exported) -> int:
    """Mosaic kernel calls in the exported program (each lowered from a Pallas TPU kernel;
    equal calls share one function)."""
    return exported.mlir_module().count("tpu_custom_call")


def export_tpu(fn, *args) -> jax.export.Exported:
    """`fn` (jitted or not) exported for TPU at `args` (ShapeDtypeStructs, with shardings).
    keep_unused: on jax 0.10, a TPU export with a Pallas call that drops an unused argument
    (the decoder's unused reprojection) fails in `Lowered.in_avals` (too many leaves)."""
    return jax.export.export(jax.jit(fn, keep_unused=True), platforms=["tpu"])(*args)


def _forward(window):
    model = SCConformerXL(CFG.replace(attention_window=window), dtype=jnp.bfloat16,
                          attention_impl="splash", mask_subsampling=True)
    spec = jax.ShapeDtypeStruct((2, CFG.feat_in, FRAMES), jnp.float32)
    lengths = jax.ShapeDtypeStruct((2,), jnp.int32)
    variables = nn.meta.unbox(jax.eval_shape(model.init, jax.random.PRNGKey(0), spec))
    return model, variables, spec, lengths


@pytest.mark.parametrize("window", [(-1, -1), (16, 16)], ids=["full", "windowed"])
def test_eval_forward_exports_for_tpu_with_splash(window):
    model, variables, spec, lengths = _forward(window)
    fn = jax.jit(lambda v, s, n: model.apply(v, s, n)["final_posteriors"])
    exported = export_tpu(fn, variables, spec, lengths)
    assert exported.platforms == ("tpu",)
    assert tpu_custom_calls(exported) >= 1  # splash, Mosaic-lowered (layers share the body)
    assert exported.out_avals[0].shape == (2, -(-FRAMES // 8), CFG.num_classes)


def test_engine_batched_step_exports_for_a_tpu_mesh():
    """The engine's jitted step, batch sharded over 8 devices, splash per batch shard."""
    model, variables, spec, lengths = _forward((16, 16))
    mesh = shd.data_mesh()
    data, repl = NamedSharding(mesh, PartitionSpec("data")), NamedSharding(mesh, PartitionSpec())
    rows = 8
    spec = jax.ShapeDtypeStruct((rows, *spec.shape[1:]), spec.dtype, sharding=data)
    lengths = jax.ShapeDtypeStruct((rows,), jnp.int32, sharding=data)
    variables = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=repl),
                             variables)
    step = functools.partial(engine._step_fn(), model.clone(mask_subsampling=True), mesh)
    exported = export_tpu(step, variables, spec, lengths)
    assert exported.nr_devices == 8
    assert tpu_custom_calls(exported) >= 1


def _abstract(tree, shardings):
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        tree, shardings)


def test_sharded_train_step_exports_for_tpu():
    """Forward, CTC (XLA scan), backward through splash with its residuals kept (remat
    save_attention), MADGRAD, on data x fsdp x seq."""
    from test_train_sharding import tiny_config

    cfg = tiny_config()
    cfg.train.update(attention_impl="splash", ctc_impl="xla", compute_dtype="bfloat16",
                     remat="save_attention")
    cfg.model.attention_window = (16, 16)
    model = build_model(cfg)
    mesh = shd.make_mesh(2, 2, 2)
    shardings = step_lib.state_shardings(model, cfg, mesh)
    state = jax.eval_shape(lambda: create_state(model, make_optimizer(cfg.optim, 0.0), 0))
    shapes = {"spec": (8, CFG.feat_in, FRAMES), "lengths": (8,), "targets": (8, 20),
              "target_lengths": (8,), "weight": (8,)}
    dtypes = {"spec": jnp.float32, "weight": jnp.float32}
    batch_sh = shd.batch_shardings(mesh, shapes)
    batch = {k: jax.ShapeDtypeStruct(v, dtypes.get(k, jnp.int32), sharding=batch_sh[k])
             for k, v in shapes.items()}
    lr = jax.ShapeDtypeStruct((), jnp.float32, sharding=NamedSharding(mesh, PartitionSpec()))
    step = step_lib.jit_train_step(model, cfg, mesh, shardings)
    exported = export_tpu(step, _abstract(state, shardings), batch, lr)
    assert exported.nr_devices == 8
    assert tpu_custom_calls(exported) >= 3  # splash forward, its dq and dk/dv kernels


def test_a_gpu_kernel_on_the_tpu_path_fails_tpu_export(monkeypatch):
    """The check can fail: were the TPU backend the GPU Pallas flash kernel (Triton
    lowering, as it runs on a GPU), the forward would not lower for TPU."""
    from lcasr_jax.kernels.attention.pallas_gpu import pallas_attention

    monkeypatch.setitem(attention.BACKENDS, "splash",
                        lambda *a, interpret, **kw: pallas_attention(*a, interpret=False, **kw))
    model, variables, spec, lengths = _forward((-1, -1))
    with pytest.raises(Exception):  # noqa: B017 (jax 0.10: a bare AssertionError)
        export_tpu(lambda v, s, n: model.apply(v, s, n)["final_posteriors"], variables, spec,
                   lengths)


def _doubled(x: jax.Array, block: tuple[int, int], interpret: bool) -> jax.Array:
    """2x over a grid of `block`s along the lanes: a minimal Pallas kernel."""
    from jax.experimental import pallas as pl

    def kernel(x_ref, o_ref):
        o_ref[...] = 2 * x_ref[...]

    spec = pl.BlockSpec(block, lambda i: (0, i))
    return pl.pallas_call(kernel, out_shape=jax.ShapeDtypeStruct(x.shape, x.dtype),
                          grid=(x.shape[1] // block[1],), in_specs=[spec], out_specs=spec,
                          interpret=interpret)(x)


def test_a_block_shape_mosaic_rejects_fails_tpu_export():
    """A block of 64 lanes runs in interpret mode on CPU, but Mosaic needs multiples of
    (8, 128): only the TPU export catches it."""
    x = jnp.arange(8 * 512, dtype=jnp.float32).reshape(8, 512)
    bad = functools.partial(_doubled, block=(8, 64))
    assert jnp.array_equal(bad(x, interpret=True), 2 * x)
    with pytest.raises(ValueError, match="divisible by 8 and 128"):
        export_tpu(functools.partial(bad, interpret=False), x)
    export_tpu(functools.partial(_doubled, block=(8, 128), interpret=False), x)
