"""Pure training step (CTC + self-conditioning loss) and its sharded jit.

Loss, as the original exp/train.py: CTC summed over the batch (reduction='sum'), divided by
(chunk frames x real rows of the global batch, i.e. the scheduled per-process batch size x
processes; metric 'rows') and x100 for the gradient. The logged loss is the CTC
sum / valid spectrogram frames x 100. With `intermediate_loss_weighting` w > 0 the
gradient loss is (1 - w) CTC(final) + w mean_l CTC(intermediate_l) (self-conditioned CTC,
Nozaki & Komatsu 2021; the original keeps w = 0 and never reads it).

`loss_norm` (the train step's optional argument) replaces the denominator chunk frames x real
rows: the original's lockstep walk divides by chunk length x *scheduled* batch size, so its
tail steps with fewer rows weigh less. With `train.nonfinite='skip'` a step whose loss or
gradient norm is not finite, or where a real row's targets cannot be aligned (the original's
CTC is then infinite), changes no parameter and no optimizer state (GradScaler skips
`optimizer.step`); the BatchRenorm statistics still move (its forward ran); metric 'skipped'
is 1 and 'loss' infinite. With 'zero' (default) such rows count 0 with zero gradient.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lcasr_jax import sharding as shd
from lcasr_jax.data.vocab import BLANK_ID
from lcasr_jax.kernels.ctc import ctc_loss
from lcasr_jax.kernels.ctc.numerics import required_frames
from lcasr_jax.kernels.shard import per_batch_shard
from lcasr_jax.train.optim import clip_grad_norm, make_optimizer
from lcasr_jax.train.state import TrainState, create_state, init_variables

Batch = dict[str, jax.Array]


def make_loss_fn(model: nn.Module, cfg: Any, mesh: Mesh | None = None) -> Callable:
    """loss_fn(params, state, batch) -> (gradient loss, (batch_stats, metrics)).

    `batch` as `sharding.put_batch` makes it; its 'weight' (batch,) marks real rows (1) and
    padding (0).

    With `mesh`, the loss is traced under `sharding.bind(mesh)`: the model's logical
    annotations place its activations (layer outputs (batch, length, embed), attention
    queries), and the CTC loss and the opaque attention kernels (cuDNN, Pallas) run per
    batch shard (shard_map): XLA would otherwise gather the whole batch onto every device.
    """
    weight = float(cfg.train.intermediate_loss_weighting)
    ctc_impl = cfg.train.ctc_impl
    augment_cfg = None
    if int(cfg.train.spec_augment_after_n_epochs) >= 0:
        from lcasr_jax.data.specaugment import SpecAugmentConfig

        augment_cfg = SpecAugmentConfig.from_original(dict(cfg.spec_augment))

    skip = cfg.train.get("nonfinite", "zero") == "skip"

    def loss_terms(params, state: TrainState, batch: Batch, augment: jax.Array | bool,
                   loss_norm: jax.Array | None):
        spec = batch["spec"].astype(jnp.float32)
        if augment_cfg is not None:
            from lcasr_jax.data.specaugment import spec_augment

            key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
            spec = jnp.where(augment, spec_augment(key, spec, batch["lengths"], augment_cfg),
                             spec)
        out, mutated = model.apply(state.variables(params), spec, batch["lengths"],
                                   return_logits=True, train=True, mutable=["batch_stats"])
        logits = nn.with_logical_constraint(out["final_posteriors"], ("batch", "length", "vocab"),
                                            mesh=shd.bound_mesh())
        real = batch["weight"] > 0  # padded rows (sharding.pad_batch) count for nothing

        def ctc(lg):
            args = (lg, out["length"], batch["targets"], batch["target_lengths"])
            nll = per_batch_shard(lambda *a: ctc_loss(*a, blank_id=BLANK_ID,
                                                      implementation=ctc_impl), *args)
            return jnp.where(real, nll, 0).sum()

        final = ctc(logits)
        if skip:  # the original's CTC is infinite where no alignment exists
            lengths = jnp.clip(batch["target_lengths"], 0, batch["targets"].shape[1])
            infeasible = real & (required_frames(batch["targets"], lengths) > out["length"])
            final = jnp.where(infeasible.any(), jnp.inf, final)
        total = final
        if weight > 0 and out.get("intermediate_logits"):
            inter = sum(ctc(lg) for lg in out["intermediate_logits"])
            total = (1 - weight) * final + weight * inter / len(out["intermediate_logits"])
        frames = batch["spec"].shape[-1]
        frames_valid = batch["lengths"].sum()
        metrics = {"loss": final / jnp.maximum(frames_valid, 1) * 100, "ctc_sum": final,
                   "frames": frames_valid, "rows": batch["weight"].sum()}
        norm = frames * batch["weight"].sum() if loss_norm is None else loss_norm
        return total / norm * 100, (mutated.get("batch_stats", {}), metrics)

    def loss_fn(params, state: TrainState, batch: Batch, augment: jax.Array | bool = False,
                loss_norm: jax.Array | None = None):
        with shd.bind(mesh):
            return loss_terms(params, state, batch, augment, loss_norm)

    return loss_fn


def make_train_step(model: nn.Module, cfg: Any, mesh: Mesh | None = None) -> Callable:
    """train_step(state, batch, lr, augment, loss_norm) -> (state, metrics); batch as
    `put_batch` makes it; lr: () float32 from the host schedule; augment: () bool, apply
    SpecAugment this step; loss_norm: () float32 denominator or None (module docstring)."""
    clip_value = float(cfg.optim.clip_value)
    loss_fn = make_loss_fn(model, cfg, mesh)
    skip = cfg.train.get("nonfinite", "zero") == "skip"

    def train_step(state: TrainState, batch: Batch, lr: jax.Array,
                   augment: jax.Array | bool = False, loss_norm: jax.Array | None = None):
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (total, (batch_stats, metrics)), grads = grad_fn(state.params, state, batch, augment,
                                                         loss_norm)
        grads, gnorm = clip_grad_norm(grads, clip_value)
        tx = make_optimizer(cfg.optim, lr)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if skip:
            ok = jnp.isfinite(total) & jnp.isfinite(gnorm)
            keep = lambda new, old: jax.tree.map(  # noqa: E731
                lambda a, b: jnp.where(ok, a, b), new, old)
            params, opt_state = keep(params, state.params), keep(opt_state, state.opt_state)
            metrics = {**metrics, "skipped": (~ok).astype(jnp.float32)}
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                                  batch_stats=batch_stats or state.batch_stats)
        return new_state, {**metrics, "grad_norm": gnorm, "lr": lr}

    return train_step


def state_shardings(model: nn.Module, cfg: Any, mesh: Mesh) -> TrainState:
    """NamedShardings for every TrainState leaf from the params' logical axis names."""
    boxed = jax.eval_shape(functools.partial(init_variables, model), jax.random.key(0))
    var_sh = shd.tree_shardings(boxed, mesh)
    repl = NamedSharding(mesh, PartitionSpec())
    tx = make_optimizer(cfg.optim, 0.0)
    abstract = jax.eval_shape(functools.partial(create_state, model, tx, 0))
    opt_sh = optax.tree_map_params(tx, lambda _, s: s, abstract.opt_state, var_sh["params"],
                                   transform_non_params=lambda _: repl)
    consts = {k: v for k, v in var_sh.items() if k not in ("params", "batch_stats")}
    return TrainState(step=repl, params=var_sh["params"],
                      batch_stats=var_sh.get("batch_stats", {}), consts=consts,
                      opt_state=opt_sh, rng=repl)


def jit_train_step(model: nn.Module, cfg: Any, mesh: Mesh, shardings: TrainState) -> Callable:
    """jax.jit of the train step with the state donated; the batch keeps `put_batch`'s
    sharding, the state `shardings`, metrics are replicated."""
    repl = NamedSharding(mesh, PartitionSpec())
    return jax.jit(make_train_step(model, cfg, mesh), out_shardings=(shardings, repl),
                   donate_argnums=(0,))


def jit_create_state(model: nn.Module, cfg: Any, shardings: TrainState) -> Callable[[], TrainState]:
    tx = make_optimizer(cfg.optim, 0.0)
    return jax.jit(functools.partial(create_state, model, tx, int(cfg.seed)),
                   out_shardings=shardings)
