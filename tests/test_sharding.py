"""The model's logical annotations really place its activations (8 fake CPU devices).

The train step is lowered on a (data 2, fsdp 2, seq 2) mesh and its StableHLO read for the
sharding constraints (`sdy.sharding_constraint`) that `nn.with_logical_constraint` emits
once `sharding.bind(mesh)` has bound LOGICAL_RULES: every layer output (batch, tokens,
d_model) and every attention query (batch, tokens, heads, head_dim) split over the batch
axes ('data', 'fsdp') and the sequence axis ('seq'). Without the binding the annotations
are no-ops and these tests fail.
"""

import re

import jax
import numpy as np
import pytest
from test_train_sharding import tiny_config

from lcasr_jax import sharding
from lcasr_jax.data.sources.synthetic import SyntheticSource
from lcasr_jax.train import step as step_lib
from lcasr_jax.train.optim import make_optimizer
from lcasr_jax.train.state import build_model, create_state

BATCH, FRAMES = 8, 256
ROWS_AND_SEQ = (("data", "fsdp"), ("seq",))  # batch dim, length dim


def constraints(text: str) -> list[tuple[tuple[int, ...], tuple[tuple[str, ...], ...]]]:
    """(shape, mesh axes per dim) of every sharding constraint in StableHLO `text`."""
    found = []
    pattern = r"sdy\.sharding_constraint\s+%[\w#.]+\s+<@\w+,\s*\[(.*?)\]>\s*:\s*tensor<([^>]+)>"
    for dims, tensor in re.findall(pattern, text):
        shape = tuple(int(d) for d in tensor.split("x")[:-1])
        axes = tuple(tuple(re.findall(r'"(\w+)"', d)) for d in re.findall(r"\{([^}]*)\}", dims))
        found.append((shape, axes))
    return found


@pytest.fixture(scope="module")
def lowered():
    """(model config, StableHLO of the loss alone, StableHLO of the jitted train step)."""
    cfg = tiny_config()
    model = build_model(cfg)
    mesh = sharding.make_mesh(2, 2, 2)
    state = jax.eval_shape(lambda: create_state(model, make_optimizer(cfg.optim, 0.0), 0))
    batch = sharding.put_batch(SyntheticSource(seed=1).next_batch(FRAMES, BATCH)[0], mesh)
    loss = jax.jit(step_lib.make_loss_fn(model, cfg, mesh)).lower(state.params, state, batch)
    shardings = step_lib.state_shardings(model, cfg, mesh)
    abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                            state, shardings)
    step = step_lib.jit_train_step(model, cfg, mesh, shardings).lower(
        abstract, batch, np.float32(1e-3), np.bool_(False))
    return model.config, loss.as_text(), step.as_text()


def _shapes(m):
    tokens = FRAMES // m.subsampling_factor
    return ((BATCH, tokens, m.d_model), (BATCH, tokens, m.n_heads, m.head_dim),
            (BATCH, tokens, m.num_classes))


def test_every_layer_output_and_query_is_constrained_by_the_rules(lowered):
    """Forward alone: one constraint per annotation, with the dims the rules give."""
    cfg, loss_text, _ = lowered
    activation, query, logits = _shapes(cfg)
    found = constraints(loss_text)
    layers = cfg.n_layers
    # subsampling output + each conformer layer's output: (batch, length, embed)
    assert found.count((activation, (*ROWS_AND_SEQ, ()))) == layers + 1, found
    # each layer's attention queries: (batch, length, heads, kv)
    assert found.count((query, (*ROWS_AND_SEQ, (), ()))) == layers, found
    # final logits: (batch, length, vocab); 'vocab' wants 'fsdp', which 'batch' took
    assert found.count((logits, (*ROWS_AND_SEQ, ()))) == 1, found


def test_the_jitted_train_step_keeps_the_constraints(lowered):
    """The step the loop runs (value_and_grad, clipping, MADGRAD) carries them too."""
    cfg, _, step_text = lowered
    activation, query, _ = _shapes(cfg)
    found = constraints(step_text)
    assert found.count((activation, (*ROWS_AND_SEQ, ()))) >= cfg.n_layers + 1, found
    assert found.count((query, (*ROWS_AND_SEQ, (), ()))) >= cfg.n_layers, found


def test_without_a_mesh_no_constraint_is_emitted():
    """The single-device step (mesh None) binds nothing: the annotations are no-ops."""
    cfg = tiny_config()
    model = build_model(cfg)
    state = jax.eval_shape(lambda: create_state(model, make_optimizer(cfg.optim, 0.0), 0))
    batch = sharding.pad_batch(SyntheticSource(seed=1).next_batch(FRAMES, 2)[0], 1)
    text = jax.jit(step_lib.make_loss_fn(model, cfg)).lower(state.params, state, batch).as_text()
    assert constraints(text) == []


def test_batch_axes_come_from_the_rules():
    mesh = sharding.make_mesh(2, 2, 2)
    assert sharding.mesh_axes_for("batch", mesh) == ("data", "fsdp")
    assert sharding.mesh_axes_for("length", mesh) == ("seq",)
    assert sharding.mesh_axes_for("kv", mesh) == ()
    assert sharding.mesh_axes_for("batch", sharding.data_mesh()) == ("data", "fsdp")
    assert sharding.data_mesh().shape == {"data": 8, "fsdp": 1, "seq": 1}


def test_rules_resolve_names_as_flax_does():
    """Priority order: a mesh axis serves one dim per array ('fsdp' goes to the batch)."""
    import flax.linen as nn

    mesh = sharding.make_mesh(2, 2, 2)
    spec = nn.logical_to_mesh_sharding(
        jax.sharding.PartitionSpec("batch", "length", "embed"), mesh, sharding.LOGICAL_RULES)
    assert spec.spec == jax.sharding.PartitionSpec(("data", "fsdp"), "seq", None)
