"""The original's training (train.batching='original', nonfinite='skip') against its own dump.

tests/fixtures/original_replay holds what robflynnyh/long-context-asr's exp/train.py did, step
by step, on a tiny model and scripts/original_replay/make_corpus.py's corpus (its README says
how it was made). Here the project's side is driven over the same recordings:
- the plan (`train.original.OriginalPlan`: batch order, lockstep chunk walk, lr and sequence
  schedules) must give every step's recordings, chunk starts, lengths, token ids, lr,
  sequence length, rows and recordings counted exactly;
- the trainer, started from the original's initial weights (init.pt, converted), must give
  its losses (1e-5 relative), skip the same steps, and reach its parameters (1e-4 relative);
- the project's defaults (refilled slots, per-step schedule switches, no skip) must not.
"""

from __future__ import annotations

import collections
import functools
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

FIX = Path(__file__).resolve().parent / "fixtures" / "original_replay"
CORPUS = Path(__file__).resolve().parents[1] / "scripts" / "original_replay" / "make_corpus.py"
FIRST_STEPS = 13  # the fast replay: the skipped step 5, snapshots to step 10, 3-row steps


@functools.cache
def dump() -> dict:
    steps = dict(np.load(FIX / "steps.npz"))
    rows = dict(np.load(FIX / "rows.npz"))
    return {"steps": steps, "rows": rows, "meta": json.loads((FIX / "meta.json").read_text()),
            "batches": json.loads((FIX / "batches.json").read_text())}


@functools.cache
def examples() -> tuple:
    """make_corpus's recordings as dataset examples, in the pairs' (corpus) order."""
    from lcasr_jax.data.alignments import Words
    from lcasr_jax.data.examples import example_from_words

    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS)
    make_corpus = importlib.util.module_from_spec(spec)
    sys.modules["make_corpus"] = make_corpus  # its dataclasses look their module up
    spec.loader.exec_module(make_corpus)
    corpus = dump()["meta"]["corpus"]
    out = []
    for r in make_corpus.recordings(corpus["seed"], corpus["n"]):
        words = Words(tuple(w for w, _, _ in r.words),
                      np.array([s / 1000 for _, s, _ in r.words]),
                      np.array([e / 1000 for _, _, e in r.words]))
        out.append(example_from_words(r.rec_id, np.ascontiguousarray(r.features.T), words))
    return tuple(out)


def config(**train):
    from lcasr_jax.train.original import config_from_original

    cfg = config_from_original(dump()["meta"]["config"])
    # exp/train.py rewrites audio_chunking.size at each stage: the dump's config is the last
    cfg.sequence.length = dump()["batches"][0]["chunk_size"]
    cfg.train.update(**train)
    return cfg


def plan(**train) -> list:
    from lcasr_jax.train.original import OriginalPlan, plan_steps

    ex = examples()
    return list(plan_steps(OriginalPlan(ex, [e["num_frames"] / 100 for e in ex],
                                        config(**train), padded=False)))


def rows_of(step: int) -> list[int]:
    return list(np.flatnonzero(dump()["rows"]["step"] == step))


def test_plan_gives_the_originals_steps_exactly():
    d, ex = dump(), examples()
    s, r = d["steps"], d["rows"]
    got = plan()
    assert len(got) == len(s["step"])
    for i, p in enumerate(got):
        batch = d["batches"][int(s["batch"][i])]
        assert [ex[j]["id"] for j in p.recordings] == batch["ids"], f"step {i + 1}"
        assert (p.chunk.index, p.seq_len, p.batch_size, len(p.chunk.rows), p.recordings_seen,
                p.epoch) == (s["chunk_index"][i], s["seq_len"][i], s["batch_size"][i],
                             s["rows"][i], s["cur_podcast"][i], s["epoch"][i]), f"step {i + 1}"
        assert p.lr == pytest.approx(float(s["lr"][i]), rel=1e-6, abs=1e-12), f"step {i + 1}"
        for k, j in enumerate(rows_of(i + 1)):
            tokens = r["tokens"][r["token_offset"][j]:r["token_offset"][j] + r["n_tokens"][j]]
            assert (ex[p.recordings[p.chunk.rows[k]]]["id"], p.chunk.start,
                    int(p.batch["lengths"][k])) == (r["rec_id"][j], r["chunk_start"][j],
                                                    r["audio_length"][j]), f"step {i + 1}"
            np.testing.assert_array_equal(p.chunk.tokens[k], tokens, f"step {i + 1} row {k}")


def _per_epoch(items) -> dict:
    out = collections.defaultdict(collections.Counter)
    for epoch, key in items:
        out[epoch][key] += 1
    return dict(out)


def test_each_epoch_holds_the_originals_chunks():
    d, ex = dump(), examples()
    r, s = d["rows"], d["steps"]
    want = _per_epoch(
        (int(s["epoch"][r["step"][j] - 1]),
         (str(r["rec_id"][j]), int(r["chunk_start"][j]),
          tuple(r["tokens"][r["token_offset"][j]:r["token_offset"][j] + r["n_tokens"][j]])))
        for j in range(len(r["step"])))
    got = _per_epoch((p.epoch, (ex[p.recordings[row]]["id"], p.chunk.start, tuple(t.tolist())))
                     for p in plan() for row, t in zip(p.chunk.rows, p.chunk.tokens,
                                                        strict=True))
    assert got == want


def test_refilled_slots_do_not_give_the_originals_steps():
    """Control: the default loader over the same recordings walks other (rows, starts)."""
    from lcasr_jax.data.loader import Loader

    d, ex = dump(), examples()
    s = d["steps"]
    n = int(np.sum(s["seq_len"] == s["seq_len"][0]))  # the steps of the first stage
    loader = Loader(list(ex), int(s["seq_len"][0]), int(s["batch_size"][0]), seed=1234,
                    num_epochs=1, process_index=0, process_count=1, lookahead=0)
    got = [tuple((ex[int(r)]["id"], int(f)) for r, f, v in zip(
        b["recording"], b["frame"], b["valid"], strict=True) if v)
        for _, b in zip(range(n), loader, strict=False)]
    loader.close()
    r = d["rows"]
    want = [tuple((str(r["rec_id"][j]), int(r["chunk_start"][j])) for j in rows_of(i + 1))
            for i in range(n)]
    assert [len(x) for x in got] == [int(s["batch_size"][0])] * n  # every slot step is full
    assert [len(x) for x in want] != [len(x) for x in got]
    assert got != want


def test_per_step_schedule_switches_do_not_give_the_originals_lr():
    """Control: the lr switched and stepped per optimizer step instead of per batch."""
    from lcasr_jax.train.schedules import LRPlan, LRState, begin_batch, end_batch, learning_rate

    s = dump()["steps"]
    cfg = config()
    lr_plan, state, total, got = LRPlan.from_config(cfg.optim), LRState(), 40, []
    for seen in s["cur_podcast"]:
        state = begin_batch(lr_plan, state, int(seen), total)
        got.append(learning_rate(lr_plan, state))
        state = end_batch(state, 1, int(seen))
    ours = [p.lr for p in plan()]
    np.testing.assert_allclose(ours, s["lr"], rtol=1e-6, atol=1e-12)
    assert not np.allclose(got, s["lr"], rtol=1e-6, atol=1e-12)


# ------------------------------------------------------------------------------ trainer
def _initial(cfg):
    from lcasr_jax.checkpoints.convert import read_released
    from lcasr_jax.model.config import TRAINING_FIELDS
    from lcasr_jax.train.original import initial_state

    model_cfg, variables, _, _ = read_released(FIX / "init.pt")
    cfg.model.rms_norm_style = model_cfg.rms_norm_style  # read from the state_dict's keys
    ours = {**cfg.model.to_dict(), "attention_window": list(cfg.model.attention_window)}
    for k in TRAINING_FIELDS:  # how to train it: not in the original's config.model
        ours.pop(k)
    assert {k: v for k, v in model_cfg.to_dict().items() if k not in TRAINING_FIELDS} == ours
    return model_cfg, initial_state(cfg, variables)


def _state_dict(model_cfg, state) -> dict[str, np.ndarray]:
    from lcasr_jax.checkpoints.mapping import variables_to_state_dict

    return variables_to_state_dict(jax_get(state.variables()), model_cfg)


def jax_get(tree):
    import jax

    return jax.device_get(tree)


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def replay(n_steps: int, **train):
    """(per-step metrics, state dicts at the dump's snapshot steps <= n_steps)."""
    from lcasr_jax.train.original import train_steps

    cfg = config(**train)
    model_cfg, state = _initial(cfg)
    snaps = set(dump()["meta"]["snapshot_steps"])
    metrics, states = [], {}
    steps = plan(**train)[:n_steps]
    tokens = max(max(len(t) for t in p.chunk.tokens) for p in steps)
    padded = [_pad_targets(p, tokens) for p in steps]
    for i, (after, m) in enumerate(train_steps(cfg, state, padded), start=1):
        metrics.append({k: float(v) for k, v in jax_get(m).items()})
        if i in snaps:
            states[i] = _state_dict(model_cfg, after)
    return metrics, states


def _pad_targets(p, tokens: int):
    """The step with its targets padded to a common width (one compile per (rows, frames))."""
    import dataclasses

    t = np.zeros((len(p.batch["targets"]), tokens), np.int32)
    t[:, :p.batch["targets"].shape[1]] = p.batch["targets"]
    return dataclasses.replace(p, batch={**p.batch, "targets": t})


def _check_replay(n_steps: int, loss_rtol=1e-5, grad_rtol=1e-4, param_rtol=1e-4) -> None:
    """Tolerances: a float, or per step (loss, grad: arrays over steps; params: {step: tol})."""
    s = dump()["steps"]
    metrics, states = replay(n_steps)
    skipped = s["skipped"][:n_steps].astype(bool)
    per_step = lambda tol, i: float(np.broadcast_to(tol, (n_steps,))[i])  # noqa: E731
    assert [bool(m["skipped"]) for m in metrics] == skipped.tolist()
    for i, m in enumerate(metrics):
        if not skipped[i]:
            rel = per_step(loss_rtol, i)
            assert m["ctc_sum"] == pytest.approx(float(s["ctc_sum"][i]), rel=rel), i + 1
            assert m["loss"] == pytest.approx(float(s["logged_loss"][i]), rel=rel), i + 1
            assert m["grad_norm"] == pytest.approx(float(s["grad_norm"][i]),
                                                   rel=per_step(grad_rtol, i)), i + 1
        else:
            assert not np.isfinite(m["loss"])
    snaps = np.load(FIX / "snapshots.npz")
    assert states
    for k, sd in states.items():
        tol = param_rtol[k] if isinstance(param_rtol, dict) else param_rtol
        for name, value in sd.items():
            want = snaps[f"step{k}/{name}"]
            assert _rel(value, want) <= tol, f"step {k} {name}: {_rel(value, want):.2e} > {tol:.2e}"


def self_divergence_envelope(factor: float = 3.0):
    """The acceptance tolerances (loss 1e-5, grad norm and parameters 1e-4), widened to
    `factor` x the original's own float32 drift where that is larger (self_divergence.npz,
    README "How far the original drifts from itself"): per step, the largest loss / grad-norm
    divergence of its variants so far; per snapshot, the largest of any tensor."""
    d = np.load(FIX / "self_divergence.npz")
    loss = np.maximum(1e-5, factor * np.maximum.accumulate(d["loss_rel"].max(0)))
    grad = np.maximum(1e-4, factor * np.maximum.accumulate(d["grad_norm_rel"].max(0)))
    params = {int(k): max(1e-4, factor * float(d["param_rel"][:, i].max()))
              for i, k in enumerate(d["snapshot_steps"])}
    return loss, grad, params


def test_trainer_replays_the_originals_first_steps():
    _check_replay(FIRST_STEPS)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("LCASR_FULL_REPLAY") != "1",
                    reason="all 138 steps take ~10 CPU minutes: LCASR_FULL_REPLAY=1 runs them")
def test_trainer_replays_every_step_of_the_original():
    """All 138 steps (about 10 CPU minutes; off in `make test`, which replays the first 13).

    Held to the acceptance tolerances (losses 1e-5, parameters 1e-4) wherever the original
    holds them against itself, and to 3x the original's own float32 drift beyond
    (`self_divergence_envelope`): run again on 1 CPU thread instead of 2, or from initial
    weights moved by an ulp, the original's losses leave 1e-5 at step 28 (max 1.3e-4) and
    its parameters reach 1.2-1.8e-3 (step 25) and 0.8-1.9e-2 (step 138) relative, in the same small
    tensors (conv-module LayerNorm and depthwise biases). This trainer, measured 2026-12-07:
    every skip as the original, losses within 1e-5 through step 48 (max 1.1e-4), grad norms
    max 1.7e-3, parameters 2.2e-3 (step 25), 3.1e-2 (step 138): 0.8-1.6x the original's own
    drift at each snapshot. One step from the original's own weights matches every gradient
    within 1e-4 (test_gradients_match_the_originals_from_its_own_weights): no mechanism
    differs; float32 rounding is amplified by the training dynamics (issue 21 item 3)."""
    _check_replay(len(dump()["steps"]["step"]), *self_divergence_envelope())


def test_without_skipping_the_infeasible_step_changes_the_weights():
    """Control: nonfinite='zero' (the infeasible row counted 0) updates at the skipped step."""
    s = dump()["steps"]
    first_skip = int(np.flatnonzero(s["skipped"])[0]) + 1
    _, states = replay(first_skip, nonfinite="zero")
    snaps = np.load(FIX / "snapshots.npz")
    worst = max(_rel(v, snaps[f"step{first_skip}/{k}"])
                for k, v in states[first_skip].items() if "weight" in k)
    assert worst > 1e-3


# the depthwise conv's bias feeds BatchRenorm, which subtracts the batch mean (its r, d
# corrections are 1 and 0 for the first 5000 batches, and detached anyway): its gradient is
# exactly zero in exact arithmetic, and what either framework computes is float32 noise
DEAD_GRADIENTS = ("conv.fn.depthwise_conv.bias",)


def _state_before(model_cfg, state, k: int):
    """`state` holding the original's parameters and buffers before its step k."""
    import jax
    import jax.numpy as jnp

    from lcasr_jax.checkpoints.convert import abstract_variables, read_released
    from lcasr_jax.checkpoints.mapping import state_dict_to_variables

    if k == 1:
        variables = read_released(FIX / "init.pt")[1]
    else:
        snaps = np.load(FIX / "snapshots.npz")
        sd = {f.split("/", 1)[1]: snaps[f] for f in snaps.files if f.startswith(f"step{k - 1}/")}
        variables = state_dict_to_variables(sd, model_cfg, abstract_variables(model_cfg))
    as_jax = functools.partial(jax.tree.map, jnp.asarray)
    return state.replace(params=as_jax(variables["params"]),
                         batch_stats=as_jax(variables.get("batch_stats", {})))


def test_gradients_match_the_originals_from_its_own_weights():
    """One step in isolation: from the original's exact parameters and BatchRenorm statistics
    before step k (init.pt, snapshots.npz) and on its batch, every tensor's gradient (unscaled,
    before clipping; grads.npz) is the original's within 1e-4, except the depthwise conv
    biases', which are zero but for float32 noise on both sides (DEAD_GRADIENTS)."""
    import jax
    import jax.numpy as jnp

    from lcasr_jax.checkpoints.mapping import variables_to_state_dict
    from lcasr_jax.train.state import build_model
    from lcasr_jax.train.step import make_loss_fn

    grads = np.load(FIX / "grads.npz")
    grad_steps = sorted({int(f.split("/")[0][4:]) for f in grads.files})
    assert grad_steps
    cfg = config()
    model_cfg, state = _initial(cfg)
    grad_fn = jax.jit(jax.value_and_grad(make_loss_fn(build_model(cfg), cfg), has_aux=True))
    steps = plan()
    for k in grad_steps:
        before = _state_before(model_cfg, state, k)
        p = steps[k - 1]
        batch = {n: jnp.asarray(v) for n, v in p.batch.items()}
        (_, (stats, metrics)), g = grad_fn(before.params, before, batch, False,
                                           jnp.float32(p.loss_norm))
        assert float(metrics["ctc_sum"]) == pytest.approx(
            float(dump()["steps"]["ctc_sum"][k - 1]), rel=1e-5)
        ours = variables_to_state_dict(jax_get({**before.variables(g), "batch_stats": stats}),
                                       model_cfg)
        theirs = {f.split("/", 2)[2]: grads[f] for f in grads.files if f.startswith(f"step{k}/")}
        assert set(theirs) <= set(ours) and len(theirs) > 50
        total = np.sqrt(sum(np.sum(np.square(v, dtype=np.float64)) for v in theirs.values()))
        for name, want in theirs.items():
            if name.endswith(DEAD_GRADIENTS):
                for side in (ours[name], want):  # noise, 1e-5 of the whole gradient at most
                    assert np.linalg.norm(side) <= 1e-5 * total, f"step {k} {name}"
            else:
                r = _rel(ours[name], want)
                assert r <= 1e-4, f"step {k} {name}: {r:.2e}"


def test_a_recording_ending_on_a_chunk_boundary_keeps_a_row_of_length_zero():
    """exp/train.py keeps row r while its walked frames <= its length: a 256-frame recording
    beside a 300-frame one is a row of 0 frames in chunk 2 (128-frame chunks). The dump has
    no such recording; the expected rows and lengths are worked out by hand."""
    from lcasr_jax.data.lockstep import chunk_steps

    def words(n):  # one word of one token in every 128-frame chunk
        start = np.array([0.1 + 1.28 * k for k in range(n)])
        return start, start + 0.2, np.arange(n + 1), np.arange(n, dtype=np.int32) + 5

    steps = chunk_steps([256, 300], [words(2), words(3)], 128)
    assert [(s.index, s.rows.tolist(), s.lengths.tolist()) for s in steps] == [
        (0, [0, 1], [128, 128]), (1, [0, 1], [128, 128]), (2, [0, 1], [0, 44])]
    assert [len(t) for t in steps[2].tokens] == [0, 1]


@pytest.mark.slow
def test_train_command_walks_the_original_batches_and_resumes(tmp_path):
    """`train` with data.kind='original_pairs' on the corpus in the original's format: the
    logged lr and rows are the original's, across a kill-free stop and resume. Neither
    depends on the model or on padding: one layer, and lockstep_shapes='padded' (the
    default; one compiled shape for these steps, loaded from the cache on resume) where
    'exact' compiled each step's shape."""
    from compile_cache import persistent_cache

    from lcasr_jax.train.loop import train

    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS)
    make_corpus = sys.modules.get("make_corpus") or importlib.util.module_from_spec(spec)
    if "make_corpus" not in sys.modules:
        sys.modules["make_corpus"] = make_corpus
        spec.loader.exec_module(make_corpus)
    corpus = dump()["meta"]["corpus"]
    pairs = make_corpus.write_original_format(
        tmp_path / "corpus", make_corpus.recordings(corpus["seed"], corpus["n"]))
    cfg = config(lockstep_shapes="padded", max_steps=2)
    cfg.model.n_layers = 1
    cfg.data.update(kind="original_pairs", path=str(pairs))
    cfg.checkpoint.update(every_steps=1, async_save=False, export_dtype="")
    cfg.log.update(every_steps=1, tensorboard=False, progress=False, sample_every_steps=0)
    with persistent_cache(tmp_path / "jax_cache"):
        assert train(cfg, tmp_path / "run")["step"] == 2
        cfg.train.max_steps = 4
        assert train(cfg, tmp_path / "run")["step"] == 4
    logged = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    s = dump()["steps"]
    assert [m["step"] for m in logged] == [1, 2, 3, 4]
    assert [m["rows"] for m in logged] == s["rows"][:4].tolist()
    np.testing.assert_allclose([m["lr"] for m in logged], s["lr"][:4], rtol=1e-6, atol=1e-12)


def test_later_epochs_draw_their_seed_from_python_random_and_stages_keep_the_first():
    """exp/train.py: epoch e >= 1 reorders with random.randint(0, 10000) from Python's random
    seeded once with training.random_seed; a stage change reorders the epoch's unseen
    recordings with the loader's first seed (update(random_seed='same')), in any epoch."""
    import random

    from lcasr_jax.data.original_order import OriginalOrder, epoch_order

    durations = np.random.default_rng(0).uniform(1, 50, 23).tolist()
    rng = random.Random(7)
    want = [rng.randint(0, 10000) for _ in range(2)]
    order = OriginalOrder(durations, 4, first_seed=3, python_seed=7)
    assert order.seed == 3
    while order.next_batch() is not None:
        pass
    order.new_epoch()
    assert order.seed == want[0]
    assert order.order == epoch_order(durations, 4, want[0]).tolist()
    taken = order.next_batch() + order.next_batch()
    order.restage(2)
    assert order.order == epoch_order(durations, 2, 3, exclude=taken).tolist()
    assert sorted(order.order + taken) == list(range(23))
    while order.next_batch() is not None:
        pass
    order.new_epoch()
    assert order.seed == want[1]


def test_padding_a_batch_keeps_its_own_filler_rows_at_weight_zero():
    """A padded lockstep step's filler rows stay out of the loss after the mesh padding."""
    from lcasr_jax.sharding import pad_batch

    batch = {"spec": np.zeros((2, 80, 8), np.float32), "lengths": np.array([8, 0], np.int32),
             "targets": np.zeros((2, 3), np.int32), "target_lengths": np.array([2, 0], np.int32),
             "weight": np.array([1, 0], np.float32)}
    assert pad_batch(batch, 4)["weight"].tolist() == [1, 0, 0, 0]
