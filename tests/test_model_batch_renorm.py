"""Batch renorm in training mode against a float64 numpy transcription of the update rule:
this project's (valid frames, float32) and the original's training (all frames, statistics
on the bf16 conv output as under CUDA autocast, the double update of per-layer torch
checkpointing); and against dumps of the original's own module."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy_reference import bf16

from lcasr_jax.model.convolution import BatchRenorm


def _reference_step(x, valid, scale, bias, mean, std, steps, eps=1e-3, momentum=0.01,
                    low=lambda v: v):
    """One training step of batch renorm over the frames where `valid`, float64; `low`
    rounds what the original's module computes in bf16 under autocast (x, its mean and
    std, x - mean and (x - mean) / std); r, d, the output and running stats stay wide."""
    x = low(x)
    z = x[valid]  # (frames counted, channels)
    b_mean = low(z.mean(0))
    b_std = low(low(z.std(0)) + eps)  # biased std, eps added to the std
    rmax = np.clip(2 / 35000 * steps + 25 / 35, 1.0, 3.0)
    dmax = np.clip(5 / 20000 * steps - 25 / 20, 0.0, 5.0)
    r = np.clip(b_std / std, 1 / rmax, rmax)
    d = np.clip((b_mean - mean) / std, -dmax, dmax)
    y = (low(low(x - b_mean) / b_std) * r + d) * scale + bias
    return y, mean + momentum * (b_mean - mean), std + momentum * (b_std - std), steps + 1


def _variables(rng, channels, steps):
    scale, bias = rng.uniform(0.5, 1.5, channels), rng.normal(0, 0.3, channels)
    mean, std = rng.normal(0, 0.5, channels), rng.uniform(0.6, 1.4, channels)
    return {"params": {"scale": jnp.asarray(scale, jnp.float32),
                       "bias": jnp.asarray(bias, jnp.float32)},
            "batch_stats": {"mean": jnp.asarray(mean, jnp.float32),
                            "std": jnp.asarray(std, jnp.float32),
                            "steps": jnp.asarray(steps, jnp.float32)}}


def _numpy(variables):
    return {k: np.asarray(v, np.float64) for c in variables.values() for k, v in c.items()}


@pytest.mark.parametrize("steps", [0.0, 6000.0, 40000.0])  # rmax/dmax warm-up stages
def test_two_training_steps_match_reference(steps):
    rng = np.random.default_rng(0)
    channels = 6
    x1 = rng.normal(1.5, 3.0, (2, 11, channels))
    x2 = rng.normal(-0.5, 0.5, (2, 11, channels))
    valid = np.arange(11)[None, :] < np.array([11, 7])[:, None]
    x1[~valid] = 1e3  # padded frames must not enter the statistics
    x2[~valid] = -1e3
    variables = _variables(rng, channels, steps)
    w = _numpy(variables)
    scale, bias, mean, std = w["scale"], w["bias"], w["mean"], w["std"]
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


@pytest.mark.parametrize("steps", [0.0, 40000.0])
def test_original_statistics_count_padded_frames(steps):
    """include_padding: the padded frames' values (whatever they are) enter mean and std,
    within the original's batch tensor: not rows with no valid frame (the trainer's filler
    rows) nor times past the longest row (padding to a fixed shape)."""
    rng = np.random.default_rng(1)
    x = rng.normal(1.0, 2.0, (3, 15, 5))
    valid = np.arange(15)[None, :] < np.array([13, 9, 4, 0])[:, None]  # + a filler row
    x = np.concatenate([x, rng.normal(-9.0, 1.0, (1, 15, 5))])  # which must not count
    x[~valid] = rng.normal(4.0, 0.1, x[~valid].shape)  # e.g. the depthwise conv's bias
    x[:, 13:] = -20.0  # past the longest row: must not count either
    variables = _variables(rng, 5, steps)
    w = _numpy(variables)
    y, updates = BatchRenorm(include_padding=True).apply(
        variables, jnp.asarray(x, jnp.float32), jnp.asarray(valid), True, mutable=["batch_stats"])
    counted = np.zeros_like(valid)
    counted[:3, :13] = True
    ref_y, ref_mean, ref_std, _ = _reference_step(
        x, counted, w["scale"], w["bias"], w["mean"], w["std"], steps)
    np.testing.assert_allclose(np.asarray(y)[counted], ref_y[counted], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(updates["batch_stats"]["mean"]), ref_mean, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(updates["batch_stats"]["std"]), ref_std, rtol=1e-5)
    valid_only = _reference_step(x, valid, w["scale"], w["bias"], w["mean"], w["std"], steps)
    assert not np.allclose(np.asarray(updates["batch_stats"]["mean"]), valid_only[1],
                           rtol=1e-3)  # the default (valid frames) would fail this test


@pytest.mark.parametrize("steps", [0.0, 6000.0])
def test_bf16_statistics_round_as_autocast(steps):
    """stats_dtype=bfloat16 on a bf16 input (the conv output under autocast): mean, std,
    x - mean and the normalised value rounded to bf16, the output float32."""
    rng = np.random.default_rng(2)
    x = bf16(rng.normal(0.7, 1.3, (2, 64, 8)))
    valid = np.ones((2, 64), bool)
    variables = _variables(rng, 8, steps)
    w = _numpy(variables)
    module = BatchRenorm(include_padding=True, stats_dtype=jnp.bfloat16)
    y, updates = module.apply(variables, jnp.asarray(x, jnp.bfloat16), jnp.asarray(valid),
                              True, mutable=["batch_stats"])
    assert y.dtype == jnp.float32
    ref = _reference_step(x, valid, w["scale"], w["bias"], w["mean"], w["std"], steps, low=bf16)
    wide = _reference_step(x, valid, w["scale"], w["bias"], w["mean"], w["std"], steps)
    stats = updates["batch_stats"]
    np.testing.assert_allclose(np.asarray(stats["mean"]), ref[1], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(stats["std"]), ref[2], rtol=1e-6, atol=1e-7)
    # a one-step bf16 difference of a rounded intermediate is possible at a tie; rare
    err = np.abs(np.asarray(y) - ref[0]) / (np.abs(ref[0]) + 1e-3)
    assert np.median(err) < 1e-6 and (err > 1e-5).mean() < 0.01
    assert not np.allclose(np.asarray(stats["std"]), wide[2], rtol=1e-6, atol=1e-7)


def test_double_update_moves_statistics_twice_and_takes_the_gradient_of_the_second_run():
    """updates=2 (torch.utils.checkpoint around the layer): the output is the first run's,
    the running statistics and counter move twice, and the gradient is that of a run with
    the once-updated statistics."""
    rng = np.random.default_rng(3)
    x = rng.normal(0.5, 2.0, (2, 17, 4))
    valid = np.arange(17)[None, :] < np.array([17, 11])[:, None]
    steps = 36000.0  # rmax, dmax above 1 and 0: r and d matter
    variables = _variables(rng, 4, steps)
    variables["batch_stats"]["std"] = jnp.full(4, 1.0)  # r ~ 2: below rmax, it moves 1 %
    w = _numpy(variables)
    twice, once = BatchRenorm(updates=2), BatchRenorm()
    xj, vj = jnp.asarray(x, jnp.float32), jnp.asarray(valid)
    y, updates = twice.apply(variables, xj, vj, True, mutable=["batch_stats"])
    y1, after_one = once.apply(variables, xj, vj, True, mutable=["batch_stats"])
    np.testing.assert_array_equal(np.asarray(y), np.asarray(y1))
    ref = _reference_step(x, valid, w["scale"], w["bias"], w["mean"], w["std"], steps)
    ref = _reference_step(x, valid, w["scale"], w["bias"], ref[1], ref[2], ref[3])
    stats = updates["batch_stats"]
    np.testing.assert_allclose(np.asarray(stats["mean"]), ref[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(stats["std"]), ref[2], rtol=1e-5, atol=1e-6)
    assert float(stats["steps"]) == steps + 2

    g = jnp.asarray(rng.normal(size=x.shape), jnp.float32)

    def loss(module, variables):
        return lambda x: (module.apply(variables, x, vj, True, mutable=["batch_stats"])[0]
                          * g).sum()

    second = {**variables, "batch_stats": after_one["batch_stats"]}
    grad = jax.grad(loss(twice, variables))(xj)
    np.testing.assert_allclose(np.asarray(grad), np.asarray(jax.grad(loss(once, second))(xj)),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(grad), np.asarray(jax.grad(loss(once, variables))(xj)),
                           rtol=1e-3)


DUMP = Path(__file__).resolve().parent / "fixtures" / "original_batch_renorm" / "batch_renorm.npz"


@pytest.mark.parametrize("case", ["bf16", "ckpt"])
def test_original_options_reproduce_the_originals_module(case):
    """Against the original's BatchRenorm1d itself (scripts/original_batch_renorm_dump.py):
    'bf16' a bf16 input (statistics rounded as under autocast), 'ckpt' the module inside
    torch.utils.checkpoint (forward run twice). Both with no mask: padded frames count."""
    dump = np.load(DUMP)
    dtype = jnp.bfloat16 if case == "bf16" else jnp.float32
    module = BatchRenorm(include_padding=True, stats_dtype=dtype,
                         updates=2 if case == "ckpt" else 1)
    channels = dump["x"].shape[1]
    variables = {"params": {"scale": jnp.ones(channels), "bias": jnp.zeros(channels)},
                 "batch_stats": {"mean": jnp.zeros(channels), "std": jnp.ones(channels),
                                 "steps": jnp.float32(dump[f"{case}_start_steps"])}}
    x = jnp.swapaxes(jnp.asarray(dump["x"]), 1, 2).astype(dtype)  # (batch, time, channels)
    g = jnp.swapaxes(jnp.asarray(dump["g"]), 1, 2)
    lengths = jnp.array([x.shape[1], 10])  # the second row padded: include_padding counts
    valid = jnp.arange(x.shape[1])[None, :] < lengths[:, None]  # its padding, as the original

    def run(x):
        return module.apply(variables, x, valid, True, mutable=["batch_stats"])

    y, updates = run(x)
    grad = jax.grad(lambda x: (run(x)[0].astype(jnp.float32) * g).sum())(x)
    assert str(dump[f"{case}_y_dtype"]) == "torch.float32" and y.dtype == jnp.float32
    swap = lambda a: np.swapaxes(np.asarray(a, np.float32), 1, 2)  # noqa: E731
    np.testing.assert_allclose(swap(y), dump[f"{case}_y"], rtol=1e-5, atol=1e-5)
    # the bf16 case's gradient passes bf16 roundings in a different order than torch's
    tol = 2e-2 if case == "bf16" else 1e-5
    np.testing.assert_allclose(swap(grad), dump[f"{case}_grad"], rtol=tol, atol=tol)
    stats = updates["batch_stats"]
    np.testing.assert_allclose(np.asarray(stats["mean"]), dump[f"{case}_running_mean"],
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(stats["std"]), dump[f"{case}_running_std"],
                               rtol=1e-6, atol=1e-7)
    assert float(stats["steps"]) == int(dump[f"{case}_steps"])


REPLAY = Path(__file__).resolve().parent / "fixtures" / "original_replay"


def _replay_corpus() -> dict:
    import json
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "original_replay"))
    import make_corpus

    corpus = json.loads((REPLAY / "meta.json").read_text())["corpus"]
    return {r.rec_id: r for r in make_corpus.recordings(**corpus)}


@pytest.mark.parametrize("step", [26, 51])  # steps with rows shorter than the longest
def test_padding_option_gives_the_originals_statistics_in_its_own_training(step):
    """From the original's parameters and buffers after step - 1 (its replay snapshot),
    our model's training forward on step's batch moves every BatchRenorm's running mean and
    std to the norms the original's had after that step (norms.npz), with
    batch_renorm_padding; this project's default (valid frames only) does not. The batch is
    padded to the step's whole chunk (256 frames at step 51, where the original's tensor
    stopped at its longest row, 207): padding past the longest row must not count."""
    from lcasr_jax.checkpoints import convert, mapping
    from lcasr_jax.model import SCConformerXL

    rows, steps = np.load(REPLAY / "rows.npz"), np.load(REPLAY / "steps.npz")
    snaps, norms = np.load(REPLAY / "snapshots.npz"), np.load(REPLAY / "norms.npz")
    names = [str(n) for n in norms["names"]]
    cfg = convert.read_released(REPLAY / "init.pt")[0]
    corpus = _replay_corpus()
    sel = np.flatnonzero(rows["step"] == step)
    size, lengths = int(steps["seq_len"][step - 1]), rows["audio_length"][sel]
    assert lengths.min() < lengths.max() <= size
    spec = np.zeros((len(sel), 80, size), np.float32)
    for j, k in enumerate(sel):
        start = int(rows["chunk_start"][k])
        feats = corpus[str(rows["rec_id"][k])].features[:, start:start + lengths[j]]
        spec[j, :, :feats.shape[1]] = feats
    state = {n: snaps[f"step{step - 1}/{n}"] for n in names}

    def error(padding: bool) -> float:
        c = cfg.replace(batch_renorm_padding=padding)
        variables = mapping.state_dict_to_variables(state, c, convert.abstract_variables(c))
        _, updates = SCConformerXL(c).apply(variables, spec, lengths.astype(np.int32),
                                            train=True, mutable=["batch_stats"])
        worst = 0.0
        for i in range(cfg.n_layers):
            stats = updates["batch_stats"][f"layer_{i}"]["conv"]["batch_renorm"]
            for ours, theirs in (("mean", "running_mean"), ("std", "running_std")):
                want = norms["norms"][step - 1][names.index(
                    f"layers.{i}.conv.fn.batch_norm.{theirs}")]
                got = np.linalg.norm(np.asarray(stats[ours], np.float64))
                worst = max(worst, abs(got - want) / want)
        return worst

    assert error(True) < 1e-6
    assert error(False) > 1e-4


@pytest.mark.parametrize("every, twice", [(0, []), (1, [0, 1, 2]), (2, [0, 2])])
def test_rerun_every_doubles_the_updates_of_the_layers_the_original_checkpoints(every, twice):
    """batch_renorm_rerun_every = the original's checkpoint_every_n_layers: the layers i
    with i % n == 0 (those it wraps in torch.utils.checkpoint) count two updates a step."""
    from lcasr_jax.model import ModelConfig, SCConformerXL

    cfg = ModelConfig(n_layers=3, d_model=16, n_heads=2, head_dim=8, subsampling_conv_channels=4,
                      batch_renorm_rerun_every=every)
    model = SCConformerXL(cfg)
    spec = jnp.asarray(np.random.default_rng(0).normal(size=(2, 80, 64)), jnp.float32)
    variables = model.init(jax.random.key(0), spec)
    _, updates = model.apply(variables, spec, train=True, mutable=["batch_stats"])
    steps = [float(updates["batch_stats"][f"layer_{i}"]["conv"]["batch_renorm"]["steps"])
             for i in range(3)]
    assert steps == [2.0 if i in twice else 1.0 for i in range(3)]
