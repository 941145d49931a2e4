"""Activation checkpointing changes what is kept for the backward pass, never the result;
and under bf16 compute the logits stay bf16 (what the CTC keeps for its backward)."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lcasr_jax.kernels.ctc import ctc_loss
from lcasr_jax.model import ModelConfig, SCConformerXL

CFG = ModelConfig(n_layers=2, d_model=32, n_heads=2, head_dim=16, subsampling_conv_channels=8,
                  vocab_size=30, self_conditioning=True)


# Only LLVM's effort is lowered (XLA's passes, remat's among them, all run): these programs
# run once, and compiling them dominates the test.
_QUICK = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@functools.cache
def _variables():
    """One set of weights for every policy and dtype (the weights are params, whatever the
    compute dtype); initialised under jit, one compile instead of one per op."""
    spec = jnp.zeros((2, 80, 64), jnp.float32)
    return jax.jit(SCConformerXL(CFG, remat=False).init)(jax.random.PRNGKey(0), spec)


def _loss_and_grads(remat: bool | str, dtype, spec, lengths, targets, target_lengths):
    model = SCConformerXL(CFG, dtype=dtype, remat=remat)
    variables = _variables()
    # Same parameter names with remat on and off: checkpoints move between them.
    assert jax.tree.structure(jax.eval_shape(model.init, jax.random.PRNGKey(0), spec)) == \
        jax.tree.structure(variables)

    def loss(params):
        out, _ = model.apply({**variables, "params": params}, spec, lengths,
                             return_logits=True, train=True, mutable=["batch_stats"])
        ctc = lambda lg: ctc_loss(lg, out["length"], targets, target_lengths,
                                  blank_id=CFG.num_classes - 1, implementation="xla").sum()
        return ctc(out["final_posteriors"]) + sum(map(ctc, out["intermediate_logits"])), out

    step = jax.jit(jax.value_and_grad(loss, has_aux=True)).lower(variables["params"])
    (value, out), grads = step.compile(_QUICK)(variables["params"])
    return value, grads, out


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_remat_gives_the_same_loss_and_gradients(dtype):
    rng = np.random.default_rng(0)
    spec = jnp.asarray(rng.normal(size=(2, 80, 128)), jnp.float32)
    lengths = jnp.array([128, 100])
    targets = jnp.asarray(rng.integers(0, CFG.num_classes - 1, size=(2, 6)), jnp.int32)
    target_lengths = jnp.array([6, 4])
    args = (dtype, spec, lengths, targets, target_lengths)
    plain_loss, plain_grads, out = _loss_and_grads(False, *args)
    assert out["final_posteriors"].dtype == dtype  # no float32 copy of the logits is kept
    assert all(lg.dtype == dtype for lg in out["intermediate_logits"])
    assert len(out["intermediate_logits"]) == CFG.n_layers - 1
    tol = 1e-5 if dtype == jnp.float32 else 2e-2
    plain_grads = nn.meta.unbox(plain_grads)
    # One scale for all: some leaves (a conv bias before batch renorm) are ~0 up to rounding.
    scale = max(float(jnp.max(jnp.abs(g))) for g in jax.tree_util.tree_leaves(plain_grads))
    for policy in (True, "save_attention"):
        remat_loss, remat_grads, _ = _loss_and_grads(policy, *args)
        np.testing.assert_allclose(float(remat_loss), float(plain_loss), rtol=tol)
        remat_grads = nn.meta.unbox(remat_grads)
        # Same parameter names: checkpoints move between remat on and off.
        assert jax.tree.structure(plain_grads) == jax.tree.structure(remat_grads)
        for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(plain_grads),
                                jax.tree_util.tree_leaves(remat_grads), strict=True):
            np.testing.assert_allclose(np.asarray(b, np.float32) / scale,
                                       np.asarray(a, np.float32) / scale, atol=tol,
                                       err_msg=f"{policy}: {jax.tree_util.keystr(path)}")


def _saved(policy: str, attention_impl: str = "auto") -> list[tuple]:
    """(aval, origin) of what the loss keeps between forward and backward (jax's
    saved-residual accounting; benchmarks/step_residuals.py at 1 hour)."""
    from jax._src.ad_checkpoint import saved_residuals

    spec = jnp.zeros((1, 80, 256), jnp.float32)
    model = SCConformerXL(CFG, dtype=jnp.bfloat16, remat=policy, attention_impl=attention_impl)
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), spec)

    def loss(variables, spec):
        out = model.apply(variables, spec, return_logits=True)
        return sum(jnp.sum(lg.astype(jnp.float32) ** 2)
                   for lg in [out["final_posteriors"], *out["intermediate_logits"]])

    return [(a, desc) for a, desc in saved_residuals(loss, variables, spec)
            if hasattr(a, "size")]


def test_remat_policies_keep_less_for_the_backward():
    """'layers' keeps less than 'none' between forward and backward, 'full' less again;
    'save_attention' keeps what 'full' does plus each layer's attention output."""
    kept = {policy: sum(a.size * a.dtype.itemsize for a, _ in _saved(policy))
            for policy in ("none", "layers", "full", "save_attention")}
    assert kept["full"] < kept["layers"] < kept["none"], kept
    tokens = 256 // 8
    attention_out = tokens * CFG.n_heads * CFG.head_dim * 2  # bf16
    assert kept["save_attention"] == kept["full"] + CFG.n_layers * attention_out, kept
    with pytest.raises(ValueError, match="remat='some'"):
        _saved("some")


def test_save_attention_keeps_attention_outputs_and_log_sum_exp():
    """With a kernel backend (the Pallas flash kernel, interpret mode here) its residuals,
    output and float32 log-sum-exp, are kept too: the backward never re-runs attention."""
    found = _saved("save_attention", "pallas_gpu")
    named = [a for a, desc in found if "named 'attention_out'" in desc]
    assert [a.shape for a in named] == [(1, 32, CFG.n_heads, CFG.head_dim)] * CFG.n_layers
    kernel = [a for a, desc in found if "pallas_call" in desc]
    lse = [a for a in kernel if a.dtype == jnp.float32]
    assert len(lse) == CFG.n_layers and all(a.shape[:2] == (1, CFG.n_heads) for a in lse)
    assert not any("pallas_call" in desc for _, desc in _saved("full", "pallas_gpu"))
