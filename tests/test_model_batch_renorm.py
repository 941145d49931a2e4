"""Batch renorm in training mode against a float64 numpy transcription of the update rule."""

import jax.numpy as jnp
import numpy as np
import pytest

from lcasr_jax.model.convolution import BatchRenorm


def _reference_step(x, valid, scale, bias, mean, std, steps, eps=1e-3, momentum=0.01):
    """One training step of batch renorm (valid frames only), float64."""
    z = x[valid]  # (valid frames, channels)
    b_mean = z.mean(0)
    b_std = z.std(0) + eps  # biased std, eps added to the std
    rmax = np.clip(2 / 35000 * steps + 25 / 35, 1.0, 3.0)
    dmax = np.clip(5 / 20000 * steps - 25 / 20, 0.0, 5.0)
    r = np.clip(b_std / std, 1 / rmax, rmax)
    d = np.clip((b_mean - mean) / std, -dmax, dmax)
    y = ((x - b_mean) / b_std * r + d) * scale + bias
    return y, mean + momentum * (b_mean - mean), std + momentum * (b_std - std), steps + 1


@pytest.mark.parametrize("steps", [0.0, 6000.0, 40000.0])  # rmax/dmax warm-up stages
def test_two_training_steps_match_reference(steps):
    rng = np.random.default_rng(0)
    channels = 6
    x1 = rng.normal(1.5, 3.0, (2, 11, channels))
    x2 = rng.normal(-0.5, 0.5, (2, 11, channels))
    valid = np.arange(11)[None, :] < np.array([11, 7])[:, None]
    x1[~valid] = 1e3  # padded frames must not enter the statistics
    x2[~valid] = -1e3
    scale, bias = rng.uniform(0.5, 1.5, channels), rng.normal(0, 0.3, channels)
    mean, std = rng.normal(0, 0.5, channels), rng.uniform(0.6, 1.4, channels)
    variables = {"params": {"scale": jnp.asarray(scale, jnp.float32),
                            "bias": jnp.asarray(bias, jnp.float32)},
                 "batch_stats": {"mean": jnp.asarray(mean, jnp.float32),
                                 "std": jnp.asarray(std, jnp.float32),
                                 "steps": jnp.asarray(steps, jnp.float32)}}
    module = BatchRenorm()
    ref_mean, ref_std, ref_steps = mean, std, steps
    for x in (x1, x2):
        y, updates = module.apply(variables, jnp.asarray(x, jnp.float32), jnp.asarray(valid),
                                  True, mutable=["batch_stats"])
        ref_y, ref_mean, ref_std, ref_steps = _reference_step(
            x, valid, scale, bias, ref_mean, ref_std, ref_steps)
        np.testing.assert_allclose(np.asarray(y)[valid], ref_y[valid], rtol=1e-4, atol=1e-4)
        stats = updates["batch_stats"]
        np.testing.assert_allclose(np.asarray(stats["mean"]), ref_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(stats["std"]), ref_std, rtol=1e-5, atol=1e-6)
        assert float(stats["steps"]) == ref_steps
        variables = {**variables, "batch_stats": stats}


def test_eval_uses_running_std_without_epsilon():
    x = np.linspace(-2, 2, 12).reshape(1, 4, 3)
    variables = {"params": {"scale": jnp.full(3, 2.0), "bias": jnp.full(3, 0.5)},
                 "batch_stats": {"mean": jnp.full(3, 0.25), "std": jnp.full(3, 0.5),
                                 "steps": jnp.zeros(())}}
    y = BatchRenorm().apply(variables, jnp.asarray(x, jnp.float32), jnp.ones((1, 4), bool),
                            False)
    np.testing.assert_allclose(np.asarray(y), (x - 0.25) / 0.5 * 2.0 + 0.5, rtol=1e-6)
