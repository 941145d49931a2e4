"""Training steps planned as the original's exp/train.py plans them (`train.batching='original'`).

Per recording batch, in order: take the next batch of the original's order
(`data.original_order`); count its recordings (`recordings_seen`, the original's
cur_podcast); plan its lockstep chunk steps at the current chunk length
(`data.lockstep`, empty-text chunks dropped); switch the lr to the cosine if the warm-up is
done (`schedules.begin_batch`); one optimizer step per chunk with the lr of
`schedules.learning_rate` and the loss divided by (chunk length x scheduled batch size) x 100;
then at the batch end the cosine moves to the recordings seen and the sequence schedule by
the batch's recordings; a stage change reorders this epoch's unseen recordings at the new
batch size. An epoch ends when the order is exhausted; the run after `max_epochs`.

`OriginalPlan.next_step()` returns the next `PlannedStep` (or None at the end); its state
(`state_dict`) is JSON-able and resumes mid-batch. `padded` fixes every step's shape at
(batch size, chunk length, ceil(chunk/8) tokens or the next power of two above): padding
rows have weight 0 and length 0; otherwise shapes are the original's tensors'.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from lcasr_jax.data.lockstep import ChunkStep, chunk_steps, example_words, step_batch
from lcasr_jax.data.original_order import OriginalOrder
from lcasr_jax.train import schedules


@dataclasses.dataclass(frozen=True)
class PlannedStep:
    """batch: arrays for the train step (spec, lengths, targets, target_lengths, weight);
    lr; loss_norm: chunk length x scheduled batch size; recordings: the batch's recording
    indices (corpus order); chunk: the ChunkStep; first: whether it opens its batch;
    recordings_seen: counted so far, this batch included; epoch."""

    batch: dict[str, np.ndarray]
    lr: float
    loss_norm: float
    seq_len: int
    batch_size: int
    recordings: tuple[int, ...]
    chunk: ChunkStep
    first: bool
    recordings_seen: int
    epoch: int


def durations_of(source: Any) -> list[float]:
    """Seconds per recording of a random-access source: its `durations()` when it has one,
    else num_frames / 100 of every example (ties between equal frame counts may then fall
    otherwise than the original's audio durations)."""
    if hasattr(source, "durations"):
        return [float(d) for d in source.durations()]
    return [int(source[i]["num_frames"]) / 100 for i in range(len(source))]


class OriginalPlan:
    """The host side of training as the original (module docstring).

    source: random access to dataset examples (features, num_frames, word_start, word_end,
    token_offsets, token_ids); durations: seconds per recording (`durations_of`).
    """

    def __init__(self, source: Any, durations: Sequence[float], cfg: Any,
                 state: dict[str, Any] | None = None, padded: bool = True):
        self.source, self.padded = source, padded
        self._batch_examples: dict[int, dict[str, Any]] = {}
        self.plan = schedules.LRPlan.from_config(cfg.optim)
        self.max_epochs = int(cfg.train.max_epochs)
        self.total = len(durations) * self.max_epochs
        if state is None:
            self.seq, self.order = _new_walk(durations, cfg)
            self.lr, self.seen, self.batch, self.done = schedules.LRState(), 0, None, 0
        else:
            self.seq = schedules.SequenceSchedule.from_state(state["sequence"])
            self.order = OriginalOrder.from_state(durations, state["order"])
            self.lr = schedules.LRState.from_state(state["lr"])
            self.seen, self.batch, self.done = state["seen"], state["batch"], state["done"]
        self.steps: list[ChunkStep] = self._plan(self.batch) if self.batch is not None else []
        self.finished = False
        # recordings seen where the original's trainer would have stopped (`original_stop`)
        self.original_stop: int | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"sequence": self.seq.state_dict(), "order": self.order.state_dict(),
                "lr": self.lr.state_dict(), "seen": self.seen, "batch": self.batch,
                "done": self.done}

    def _example(self, i: int) -> dict[str, Any]:
        """Recording i as this epoch hears it (a source with `example(i, epoch)`, e.g. dry
        recordings augmented afresh per epoch), read once per recording batch."""
        if i not in self._batch_examples:
            self._batch_examples[i] = (self.source.example(i, self.order.epoch)
                                       if hasattr(self.source, "example") else self.source[i])
        return self._batch_examples[i]

    def _plan(self, batch: list[int]) -> list[ChunkStep]:
        self._batch_examples = {}
        examples = [self._example(i) for i in batch]
        return chunk_steps([int(ex["num_frames"]) for ex in examples],
                           [example_words(ex) for ex in examples], self.seq.cur_sequence_length)

    def _finish_batch(self) -> None:
        self.lr = schedules.end_batch(self.lr, len(self.steps), self.seen)
        if self.seq.step(len(self.batch)):
            self.order.restage(self.seq.cur_batch_size)
            if not self.order.order and self.original_stop is None:
                self.original_stop = self.seen
        self.batch, self.steps, self.done = None, [], 0

    def _next_batch(self) -> bool:
        """Open the next recording batch; False when training is over."""
        while True:
            if self.batch is not None:
                self._finish_batch()
            ids = self.order.next_batch()
            if ids is not None:
                break
            if self.order.epoch + 1 >= self.max_epochs:
                return False
            self.order.new_epoch()
        self.batch, self.done = ids, 0
        self.seen += len(ids)
        self.steps = self._plan(ids)
        self.lr = schedules.begin_batch(self.plan, self.lr, self.seen, self.total)
        return True

    def next_step(self) -> PlannedStep | None:
        while self.batch is None or self.done >= len(self.steps):
            if self.finished or not self._next_batch():
                self.finished = True
                return None
        chunk = self.steps[self.done]
        c, b = self.seq.cur_sequence_length, self.seq.cur_batch_size
        features = {r: self._example(self.batch[r])["features"] for r in chunk.rows}
        feats = [features.get(r) for r in range(len(self.batch))]
        if self.padded:
            longest = max(len(t) for t in chunk.tokens)
            tokens = max(-(-c // 8), 1 << max(longest - 1, 0).bit_length())
            arrays = step_batch(chunk, feats, rows=max(b, len(chunk.rows)), frames=c,
                                max_tokens=tokens)
        else:
            arrays = step_batch(chunk, feats)
        lr = schedules.learning_rate(self.plan, self.lr, self.done)
        step = PlannedStep(arrays, lr, float(c * b), c, b, tuple(self.batch), chunk,
                           self.done == 0, self.seen, self.order.epoch)
        self.done += 1
        return step

    def epochs_done(self) -> int:
        return self.max_epochs if self.finished else self.order.epoch


def _new_walk(durations: Sequence[float], cfg: Any
              ) -> tuple[schedules.SequenceSchedule, OriginalOrder]:
    """The sequence schedule and recording order a run starts with."""
    seq = schedules.SequenceSchedule.from_config(cfg.sequence)
    python_seed = int(cfg.train.get("original_python_seed", -1))
    order = OriginalOrder(list(durations), seq.cur_batch_size, first_seed=int(cfg.seed),
                          python_seed=int(cfg.seed) if python_seed < 0 else python_seed)
    return seq, order


class _BatchWalk(OriginalPlan):
    """An OriginalPlan that walks the recording batches only: no example read, no step."""

    def _plan(self, batch: list[int]) -> list[ChunkStep]:
        return []


def original_stop(durations: Sequence[float], cfg: Any) -> int | None:
    """Recordings seen at which the original's trainer stops with an error, or None.

    A sequence stage change on the last recording batch of an epoch: exp/train.py rebuilds its
    loader from the recordings not yet seen in the epoch, none, and `SimpleDataset.
    create_batches` raises `ValueError: need at least one array to concatenate` (seen on an
    H100, 2026-12-08: 256 recordings, 128 a batch, a stage every 256). `OriginalPlan` goes on
    to the next epoch there and records the point as `original_stop`. durations: (recordings,)
    seconds; cfg: the run's config (sequence, seed, train.max_epochs).
    """
    walk = _BatchWalk(None, durations, cfg)
    while walk.original_stop is None and walk._next_batch():
        pass
    return walk.original_stop


def config_from_original(original: dict[str, Any], compute_dtype: str = "float32") -> Any:
    """This project's training config for an original exp/train.py config (a dict of its
    YAML): its model (with the original's init, BatchRenorm statistics and, in bf16, position
    tables), MADGRAD lr / warm-up / clipping, chunk size, batch size, sequence scheduler,
    random seed and epochs, with `train.batching='original'` and `train.nonfinite='skip'`.
    `compute_dtype` 'bfloat16' stands for the original's CUDA autocast. Fields the original
    leaves out take its code's defaults."""
    from lcasr_jax.model.config import from_original
    from lcasr_jax.train.config import base_config

    bf16 = compute_dtype == "bfloat16"  # the original autocasts to bf16 (on CUDA)
    checkpoint_every = int(original["model"].get("checkpoint_every_n_layers", 0))
    per_layer_remat = checkpoint_every > 0
    model = {**from_original(original["model"]).to_dict(), "param_init": "torch",
             "batch_renorm_padding": True,
             "batch_renorm_dtype": "bfloat16" if bf16 else "float32",
             "batch_renorm_rerun_every": checkpoint_every}
    model["attention_window"] = tuple(model["attention_window"])
    cfg = base_config(**model)
    training, optim = original.get("training", {}), original["optimizer"]
    if optim.get("name", "madgrad") != "madgrad":
        raise ValueError(f"optimizer.name={optim.get('name')!r}: only madgrad is mapped")
    cfg.optim.update(lr=float(optim["args"]["lr"]),
                     warmup_steps=int(original["scheduler"]["warmup_steps"]),
                     clip_value=float(training.get("clip_value", 0.8)))
    sched = dict(original.get("sequence_scheduler") or {"increase_every": -1})
    cfg.sequence.update(length=int(original["audio_chunking"]["size"]),
                        batch_size=int(training["batch_size"]),
                        **{k: sched[k] for k in ("increase_every", "stop_after", "start_after",
                                                 "max_sequence_length", "increase_by_multiplier",
                                                 "batch_size_multiplier") if k in sched})
    seed = training.get("random_seed", 1234)
    cfg.seed = int(seed)
    cfg.train.update(compute_dtype=compute_dtype, max_epochs=int(training.get("max_epochs", 1)),
                     position_dtype=compute_dtype, remat="full" if per_layer_remat else "none",
                     batching="original", nonfinite="skip",
                     original_python_seed=int(training.get("random_seed", 12345)))
    return cfg


def initial_state(cfg: Any, variables: dict[str, Any]) -> Any:
    """A fresh TrainState (step 0, new optimizer state) holding `variables`, e.g. a released
    checkpoint's (`checkpoints.convert.read_released`)."""
    import jax
    import jax.numpy as jnp

    from lcasr_jax.train.optim import make_optimizer
    from lcasr_jax.train.state import TrainState

    params = jax.tree.map(jnp.asarray, variables["params"])
    rest = {k: jax.tree.map(jnp.asarray, v) for k, v in variables.items() if k != "params"}
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=rest.pop("batch_stats", {}), consts=rest,
                      opt_state=make_optimizer(cfg.optim, 0.0).init(params),
                      rng=jax.random.key_data(jax.random.key(int(cfg.seed))))


def train_steps(cfg: Any, state: Any, steps: Any, model: Any = None):
    """Train on an explicit step schedule, one device, no mesh: for each item of `steps`
    (anything with .batch (arrays as `lockstep.step_batch` makes them), .lr and .loss_norm,
    e.g. `OriginalPlan` steps or the original's dumped batches) yield (state, metrics) after
    the step. Each new shape compiles once."""
    import jax
    import jax.numpy as jnp

    from lcasr_jax.train.state import build_model
    from lcasr_jax.train.step import make_train_step

    step_fn = jax.jit(make_train_step(model or build_model(cfg), cfg))
    for s in steps:
        batch = {k: jnp.asarray(v) for k, v in s.batch.items()}
        state, metrics = step_fn(state, batch, jnp.float32(s.lr), False,
                                 jnp.float32(s.loss_norm))
        yield state, metrics


def plan_steps(plan: OriginalPlan):
    """The steps of `plan` until it ends."""
    while (step := plan.next_step()) is not None:
        yield step
