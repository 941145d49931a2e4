"""Training loop: schedules on the host, the sharded jitted step on devices, checkpoints,
progress bar, TensorBoard scalars, metrics.jsonl and greedy sample transcripts.

A run resumes from the newest complete checkpoint in WORKDIR, so it can be spread over
several time-limited calls (`train.time_limit_s`) and survives SIGKILL. With several
processes, each step's progress is combined across them (`hosts.py`) so that every process
takes the same schedule decisions; the time limit stops the run after the step in which
any process reached it.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from lcasr_jax.data.features import FRAMES_PER_SECOND
from lcasr_jax.data.sources import make_source
from lcasr_jax.data.tokenizer import default_tokenizer
from lcasr_jax.decode import greedy_texts
from lcasr_jax.distributed import from_process_0, started_together
from lcasr_jax.files import atomic_write, hold_lock
from lcasr_jax.interrupts import deferred_signals
from lcasr_jax.sharding import make_mesh, put_batch
from lcasr_jax.train import ahead as ahead_lib
from lcasr_jax.train import hosts, schedules
from lcasr_jax.train import step as step_lib
from lcasr_jax.train.config import check as check_config
from lcasr_jax.train.devset import DevSet, GreedyIds, greedy_ids
from lcasr_jax.train.original import OriginalPlan, durations_of
from lcasr_jax.train.resume import Checkpointer, export_model
from lcasr_jax.train.state import TrainState, build_model


def _schedules(cfg: Any, meta: dict[str, Any] | None,
               ) -> tuple[schedules.SequenceSchedule, schedules.LRState]:
    if meta is not None:
        return (schedules.SequenceSchedule.from_state(meta["sequence"]),
                schedules.LRState.from_state(meta["lr"], int(meta["recordings_seen"])))
    return schedules.SequenceSchedule.from_config(cfg.sequence), schedules.LRState()


def _optional(module: str, missing: str):
    """The module if installed, else None after saying what goes `missing` without it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        print(f"{module} is not installed: {missing}", flush=True)
        return None


def _drop_after(path: Path, step: int) -> None:
    """Keep the records of metrics.jsonl up to `step` (the checkpoint a run resumes from):
    steps a killed run logged after its last checkpoint are trained and logged again."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):  # a line torn by the kill
            continue
    atomic_write(path, "".join(kept))


class _Log:
    """metrics.jsonl + TensorBoard + tqdm on process 0. Records after `start_step` (a killed
    run's steps past its last checkpoint) are dropped, so each step is logged once."""

    def __init__(self, cfg: Any, workdir: Path, start_step: int):
        self.main = jax.process_index() == 0
        if self.main:
            _drop_after(workdir / "metrics.jsonl", start_step)
        self.jsonl = (workdir / "metrics.jsonl").open("a") if self.main else None
        self.tb = self.bar = None
        if (self.main and cfg.log.tensorboard
                and (tbx := _optional("tensorboardX", "no TensorBoard scalars"))):
            self.tb = tbx.SummaryWriter(str(workdir / "tensorboard"))
        if self.main and cfg.log.progress and (tqdm := _optional("tqdm", "no progress bar")):
            total = cfg.train.max_steps if cfg.train.max_steps > 0 else None
            self.bar = tqdm.tqdm(total=total, initial=start_step, desc="train",
                                 dynamic_ncols=True)

    def scalars(self, step: int, values: dict[str, float], bar: bool = True) -> None:
        if not self.main:
            return
        self.jsonl.write(json.dumps({"step": step, **values}) + "\n")
        self.jsonl.flush()
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(f"train/{k}", v, step)
        if bar and self.bar is not None:
            self.bar.set_postfix(loss=f"{values['loss']:.3f}", seq=values["seq_len"],
                                 batch=values["batch"], lr=f"{values['lr']:.2e}",
                                 audio_h_per_s=f"{values['audio_h_per_s']:.2f}")

    def text(self, step: int, tag: str, text: str) -> None:
        if self.main:
            (self.bar.write if self.bar is not None else print)(f"[{step}] {tag}: {text}")
            if self.tb is not None:
                self.tb.add_text(tag, text, step)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()
        if self.jsonl is not None:
            self.jsonl.close()


def _sample_transcript(ids_of: GreedyIds, state: TrainState, batch: dict[str, np.ndarray]
                       ) -> tuple[str, str]:
    """Greedy transcript of row 0 of process 0's `batch` (eval mode) and its reference;
    every process calls this at once (`ids_of`: `devset.greedy_ids`)."""

    row = from_process_0({k: batch[k][:1] for k in ("spec", "lengths", "targets",
                                                      "target_lengths")})
    ids, n = ids_of(state.variables(), row["spec"], row["lengths"])
    ref = default_tokenizer().decode(
        [int(t) for t in row["targets"][0, : int(row["target_lengths"][0])]])
    return greedy_texts(ids, n)[0], ref


def train(cfg: Any, workdir: str | Path) -> dict[str, Any]:
    """Train until max_steps / max_epochs / time_limit_s; returns a summary dict.

    At the end the model is also written to WORKDIR/model (load_pretrained-able) in
    `checkpoint.export_dtype` ('' = no export). The config is validated first
    (`train.config.check`); the workdir is locked for the run (a second trainer is
    refused, naming the holder's PID). SIGINT/SIGTERM stop the run after the current step (the one
    whose batch is being read or trained; with one process, a signal between steps starts
    no other): it is checkpointed, and KeyboardInterrupt is raised after saying how to resume.
    """
    check_config(cfg)
    try:
        build_model(cfg)
    except (TypeError, ValueError) as e:
        raise ValueError(f"config.model.{e}") from None
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    name = "train.lock" if jax.process_count() == 1 else f"train.{jax.process_index()}.lock"
    lock = hold_lock(workdir / name, f"training workdir {workdir}")
    try:
        with deferred_signals("stopping after this step and checkpointing") as stop:
            summary = _train(cfg, workdir, stop)
    finally:
        lock.close()
    if summary["stopped"] == "interrupted":
        print(f"interrupted: checkpoint of step {summary['step']} saved in "
              f"{workdir / 'checkpoints'}; run the same command again to resume", flush=True)
        raise KeyboardInterrupt
    return summary


def _train(cfg: Any, workdir: Path, stop: threading.Event) -> dict[str, Any]:
    t_start = time.time()
    mesh = make_mesh(cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.seq)
    model = build_model(cfg)
    shardings = step_lib.state_shardings(model, cfg, mesh)
    create = step_lib.jit_create_state(model, cfg, shardings)
    abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                            jax.eval_shape(create), shardings)
    ckpt = Checkpointer(workdir, keep=cfg.checkpoint.keep, async_save=cfg.checkpoint.async_save)
    restored = ckpt.restore_latest(abstract, cfg.to_dict())
    source = make_source(cfg)
    leg_prev = None  # the metadata of the model a leg started from (`legs`)
    if restored is None:
        meta, recordings_seen = None, 0
        if not cfg.train.init_from:
            state = create()
        else:
            from lcasr_jax.train.legs import start_from

            state, leg_prev = start_from(cfg.train.init_from, create, cfg, shardings)
            print(f"leg: weights from {cfg.train.init_from} ({leg_prev.get('legs', 0)} legs, "
                  f"{leg_prev.get('total_steps', leg_prev.get('step', 0))} steps before); "
                  "fresh optimizer state", flush=True)
    else:
        _, state, meta = restored
        source.load_state_dict(hosts.own_state(meta["data"], jax.process_index(),
                                               jax.process_count()))
        recordings_seen = int(meta["recordings_seen"])
    epochs_done = int(meta.get("epochs_done", recordings_seen // source.total_recordings())
                      if meta is not None else 0)
    seq, lr_state = _schedules(cfg, meta)
    lr_plan = schedules.LRPlan.from_config(cfg.optim)
    plan, original_stop_told = None, False
    if cfg.train.batching == "original":  # the original's batches and lockstep chunk walk
        if not hasattr(source, "source") or jax.process_count() > 1:
            raise ValueError("config.train.batching='original' needs one process and "
                             "data.kind corpus, recordings or original_pairs")
        examples = source.source
        plan = OriginalPlan(examples, durations_of(examples), cfg,
                            state=meta["original"] if meta is not None else None,
                            padded=cfg.train.lockstep_shapes == "padded")
    if meta is None and leg_prev and leg_prev.get("sequence"):
        running = plan.seq if plan is not None else seq
        for k in ("cur_sequence_length", "cur_batch_size", "cur_position",
                  "steps_since_last_increase"):  # continue the lengths; settings from cfg
            setattr(running, k, leg_prev["sequence"][k])
    if meta is not None:
        leg_prev = meta.get("leg_prev")
    total_recordings = source.total_recordings() * int(cfg.train.max_epochs)
    jitted_step = step_lib.jit_train_step(model, cfg, mesh, shardings)
    train_step = started_together(jitted_step, "train_step")
    ahead, ahead_asked = None, set()  # the next stages' steps, compiled on threads
    if ahead_lib.enabled(cfg.train.compile_ahead):
        ahead = train_step = ahead_lib.CompileAhead(jitted_step)
    step = int(jax.device_get(state.step))
    if meta is not None:
        print(f"resumed from {ckpt.directory / str(step)} (step {step}, "
              f"{recordings_seen} recordings seen)", flush=True)
    log = _Log(cfg, workdir, step)
    dev = DevSet(cfg) if cfg.log.dev_every_steps > 0 and cfg.data.kind != "synthetic" else None
    sample_ids, dev_ids = greedy_ids(model, mesh, "sample_ids"), greedy_ids(model, mesh, "dev_ids")

    def meta_now() -> dict[str, Any]:  # "data": every process's loader state
        return {"sequence": seq.state_dict(), "lr": lr_state.state_dict(),
                "data": hosts.gather_states(source.state_dict(), jax.process_count()),
                "original": plan.state_dict() if plan is not None else None,
                "recordings_seen": recordings_seen, "epochs_done": epochs_done,
                "config": cfg.to_dict(), "leg_prev": leg_prev}

    last_saved, t_log, frames_since = step, time.time(), 0
    reason, time_up, interrupted = "max_epochs", False, False
    time_limit = cfg.train.time_limit_s
    while epochs_done < int(cfg.train.max_epochs):  # every chunk of every recording
        if 0 < cfg.train.max_steps <= step:
            reason = "max_steps"
            break
        if time_up:
            reason = "interrupted" if interrupted else "time_limit"
            break
        if jax.process_count() == 1 and stop.is_set():  # came after the last batch was read
            reason = "interrupted"
            break
        loss_norm = None
        if plan is not None:
            planned = plan.next_step()
            if plan.original_stop is not None and not original_stop_told:
                original_stop_told = True
                log.text(step, "note", "a sequence stage changed on an epoch's last batch "
                         f"(recording {plan.original_stop}): the original's exp/train.py "
                         "stops here with an error; this run goes on to the next epoch")
            if planned is None:
                epochs_done = plan.epochs_done()
                break
            # read after the batch: a Ctrl-C while it was read stops the run after this step
            interrupted = stop.is_set()
            batch, frames, batch_size = planned.batch, planned.seq_len, planned.batch_size
            lr, loss_norm = np.float32(planned.lr), np.float32(planned.loss_norm)
            recordings_seen, epoch = planned.recordings_seen, planned.epoch
            epochs_done, frames_valid = plan.epochs_done(), int(batch["lengths"].sum())
            time_up = interrupted or 0 < time_limit <= time.time() - t_start
            warming = plan.lr.cosine_start < 0
        else:
            frames, batch_size = seq.cur_sequence_length, seq.cur_batch_size
            batch, info = source.next_batch(frames, batch_size)
            interrupted = stop.is_set()  # after the read, as above; every process agrees
            recordings, frames_valid, epoch, time_up, epochs_done = hosts.exchange_progress(
                info["recordings"], int(batch["lengths"].sum()), info["epoch"],
                interrupted or 0 < time_limit <= time.time() - t_start, jax.process_count(),
                epochs_done=info["epochs_done"])
            recordings_seen += recordings
            lr_state = schedules.begin_batch(lr_plan, lr_state, recordings_seen, total_recordings)
            lr = np.float32(schedules.learning_rate(lr_plan, lr_state))
            warming = lr_state.cosine_start < 0
            lr_state = schedules.end_batch(lr_state, 1, recordings_seen)
            seq.step(recordings)
        augment = np.bool_(0 <= cfg.train.spec_augment_after_n_epochs <= epoch and not warming)
        state, metrics = train_step(state, put_batch(batch, mesh), lr, augment, loss_norm)
        step += 1
        frames_since += frames_valid
        if ahead is not None:  # the schedule's next stages, compiled while this one trains
            running = plan.seq if plan is not None else seq
            for frames_rows in running.upcoming_stages(cfg.train.compile_ahead_stages):
                if frames_rows not in ahead_asked:
                    ahead_asked.add(frames_rows)
                    ahead.prepare(abstract, put_batch(ahead_lib.next_stage_batch(
                        batch, *frames_rows, ahead_lib.target_width(source, frames_rows[0])),
                        mesh), lr, augment, loss_norm)
        if log.bar is not None:
            log.bar.update(1)
        if step % cfg.log.every_steps == 0:
            m = {k: float(v) for k, v in jax.device_get(metrics).items()}
            now = time.time()
            m.update(seq_len=frames, batch=batch_size, epoch=epoch,
                     audio_h_per_s=frames_since / FRAMES_PER_SECOND / 3600 / (now - t_log))
            log.scalars(step, m)
            t_log, frames_since = now, 0
        if cfg.log.sample_every_steps > 0 and step % cfg.log.sample_every_steps == 0:
            hyp, ref = _sample_transcript(sample_ids, state, batch)
            log.text(step, "sample", f"HYP: {hyp!r} | REF: {ref!r}")
        if dev is not None and step % cfg.log.dev_every_steps == 0:
            wer, hyp, ref = dev.wer(dev_ids, state.variables())
            log.scalars(step, {"dev_wer": wer}, bar=False)
            log.text(step, "dev", f"WER {wer:.3f} | HYP: {hyp!r} | REF: {ref!r}")
        if step % cfg.checkpoint.every_steps == 0:
            ckpt.save(step, state, meta_now())
            last_saved = step
    if last_saved != step or (reason == "interrupted" and restored is None and step == 0):
        ckpt.save(step, state, meta_now())  # Ctrl-C before step 1 too: the message names it
    if ahead is not None:
        ahead.stop()
    ckpt.wait()
    ckpt.close()
    log.close()
    if cfg.checkpoint.export_dtype and jax.process_count() > 1:
        print("multi-host run: WORKDIR/model not written (orbax barriers); the checkpoints "
              "hold the weights", flush=True)
    elif cfg.checkpoint.export_dtype and reason != "interrupted":
        from lcasr_jax.train.legs import leg_metadata

        export_model(state.variables(), cfg, workdir / "model", cfg.checkpoint.export_dtype,
                     metadata=leg_metadata(step, recordings_seen,
                                           (plan.seq if plan is not None else seq).state_dict(),
                                           leg_prev))
    seq = plan.seq if plan is not None else seq
    return {"step": step, "recordings_seen": recordings_seen, "stopped": reason,
            "seq_len": seq.cur_sequence_length, "batch": seq.cur_batch_size}
