"""Recording hooks around the original's train(): they observe, they never change a value.

`Recorder.install(train_module)` replaces, in the original's exp/train.py module namespace,
`backwards_pass` (called once per optimizer step), `chunk_spectogram` (once per recording
batch) and `GradScaler` (a `torch.amp.GradScaler` on the run's device that also remembers
the value handed to `scale()`), and wraps `torch.nn.utils.clip_grad_norm_` to keep its
return value. Each wrapper calls the original function with the same arguments; the per-step
facts the loop keeps in local variables (the chunk, its rows, targets, loss, sequence length)
are read from train()'s frame.
"""
from __future__ import annotations

import hashlib
import sys
import time
from typing import Any

import numpy as np
import torch


def feature_checksum(chunk: np.ndarray) -> float:
    """Sum of a (80, frames) feature chunk in float64: cheap, order-independent identity."""
    return float(np.asarray(chunk, dtype=np.float64).sum())


def tensor_norms(model: torch.nn.Module) -> dict[str, float]:
    """L2 norm (float64) of every parameter and buffer of model, by state_dict name."""
    return {k: float(v.detach().double().norm()) for k, v in model.state_dict().items()}


def state_arrays(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """Every parameter and buffer as a numpy array (float tensors as float32)."""
    out = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        out[k] = (v.float() if v.is_floating_point() else v).numpy().copy()  # not a view
    return out


class Recorder:
    """Collects per-step and per-batch records of one run of the original's train()."""

    def __init__(self, snapshot_steps: set[int], max_steps: int | None = None,
                 time_limit_s: float | None = None, grad_steps: set[int] = frozenset(),
                 optimizer_state: bool = False, light: bool = False) -> None:
        self.snapshot_steps = snapshot_steps
        # light: no per-row CTC, feature sums or parameter norms (each step's posteriors,
        # features and every parameter's norm copied to the host: at 128 rows ~1 s a step)
        self.light = light
        self.grad_steps = set(grad_steps)
        self.optimizer_state = optimizer_state
        # step k -> {"grad/<name>": unscaled gradient before clipping, and with
        # optimizer_state "opt/<name>/<key>": MADGRAD's state before the step, "opt_k"}
        self.grads: dict[int, dict[str, np.ndarray]] = {}
        self._names: dict[int, str] = {}
        self.max_steps = max_steps
        self.deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
        self.steps: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.batches: list[dict[str, Any]] = []
        self.norms: list[dict[str, float]] = []
        self.snapshots: dict[int, dict[str, np.ndarray]] = {}
        self._chunks_ref: list | None = None
        self._chunk_index: dict[int, int] = {}
        self._grad_norm: float | None = None
        self.scaler: torch.amp.GradScaler | None = None

    # ---- wrappers ---------------------------------------------------------------------
    def install(self, train_module: Any, device_type: str, scaler: str = "amp") -> None:
        """Put the recording wrappers into the original's train module (and clip_grad_norm_).

        scaler 'amp': `torch.amp.GradScaler(device_type)` (skips inf steps on any device);
        'original': exp/train.py's own `torch.cuda.amp.GradScaler()`, disabled without CUDA.
        """
        recorder = self
        orig_bp, orig_chunk = train_module.backwards_pass, train_module.chunk_spectogram
        orig_clip = torch.nn.utils.clip_grad_norm_
        base = torch.amp.GradScaler if scaler == "amp" else train_module.GradScaler
        base_args = (device_type,) if scaler == "amp" else ()

        class RecordingScaler(base):
            """The GradScaler, remembering what scale() was given."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*base_args, *args, **kwargs)
                self.last_input: float | None = None
                recorder.scaler = self

            def scale(self, outputs):  # noqa: ANN001, ANN201 - torch's signature
                self.last_input = float(outputs.detach())
                return super().scale(outputs)

        def clip_grad_norm_(parameters, *args: Any, **kwargs: Any) -> torch.Tensor:  # noqa: ANN001
            parameters = list(parameters)  # the same parameters, read twice
            step = len(recorder.steps) + 1
            if step in recorder.grad_steps:  # after unscale_, before clipping
                recorder.grads.setdefault(step, {}).update({
                    f"grad/{recorder._names[id(p)]}": p.grad.detach().float().numpy().copy()
                    for p in parameters if p.grad is not None})
            total = orig_clip(parameters, *args, **kwargs)
            recorder._grad_norm = float(total)
            return total

        def chunk_spectogram(spec: torch.Tensor, chunk_size: int, chunk_overlap: int) -> list:
            recorder._batch(sys._getframe(1).f_locals, spec, chunk_size)
            return orig_chunk(spec=spec, chunk_size=chunk_size, chunk_overlap=chunk_overlap)

        def backwards_pass(model, clip_value, optimizer, scheduler, scaler) -> None:  # noqa: ANN001
            frame = sys._getframe(1).f_locals
            lr = float(optimizer.param_groups[0]["lr"])
            was_warmup = bool(scheduler.is_warmup)
            scale = float(scaler.get_scale())
            recorder._grad_norm = None
            step = len(recorder.steps) + 1
            if step in recorder.grad_steps:
                recorder._names = {id(p): n for n, p in model.named_parameters()}
                recorder.grads[step] = (recorder._optimizer_state(optimizer)
                                        if recorder.optimizer_state else {})
            orig_bp(model=model, clip_value=clip_value, optimizer=optimizer,
                    scheduler=scheduler, scaler=scaler)
            skipped = float(scaler.get_scale()) < scale  # the scaler backs off after an inf
            recorder._step(frame, model, lr, was_warmup, scale, skipped)

        train_module.GradScaler = RecordingScaler
        train_module.chunk_spectogram = chunk_spectogram
        train_module.backwards_pass = backwards_pass
        torch.nn.utils.clip_grad_norm_ = clip_grad_norm_

    def _optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, np.ndarray]:
        """MADGRAD's per-parameter state (grad_sum_sq, s; x0 is the initial weights) and its
        counter k, as they are before optimizer.step()."""
        out = {"opt_k": np.array(int(optimizer.state["k"].item()) if "k" in optimizer.state
                                 else 0)}
        for group in optimizer.param_groups:
            for p in group["params"]:
                for key in ("grad_sum_sq", "s"):
                    if key in optimizer.state.get(p, {}):
                        out[f"opt/{self._names[id(p)]}/{key}"] = (
                            optimizer.state[p][key].detach().float().numpy().copy())
        return out

    # ---- records ----------------------------------------------------------------------
    def _batch(self, f: dict[str, Any], spec: torch.Tensor, chunk_size: int) -> None:
        """One recording batch, as train() holds it just before chunking."""
        lengths = f["audio_lengths"].tolist()
        self.batches.append({
            "batch": len(self.batches), "ids": list(f["ids"]), "lengths": lengths,
            "chunk_size": int(chunk_size), "batch_size": int(f["batch_size"]),
            "rows": int(spec.shape[0]), "padded_frames": int(spec.shape[-1]),
            "cur_podcast": int(f["cur_podcast"]), "epoch": int(f["epoch"]),
            "first_step": len(self.steps), "n_steps": 0, "used_chunks": [],
            "n_splits": -(-int(spec.shape[-1]) // int(chunk_size)),
        })

    def _match_chunks(self, f: dict[str, Any]) -> None:
        """Map each chunk train() kept to its index among chunk_spectogram's splits."""
        splits, kept = f["audio_chunks_"], f["chunks"]
        self._chunks_ref, self._chunk_index, k = kept, {}, 0
        for c in kept:
            audio, mask = c["audio"].cpu(), c["selection_mask"].cpu()
            while not (splits[k].shape[-1] == audio.shape[-1]
                       and torch.equal(splits[k].cpu()[mask], audio)):
                k += 1  # raises IndexError if a kept chunk matched no split: a recorder bug
            self._chunk_index[id(c)] = k
            k += 1
        self.batches[-1]["used_chunks"] = list(self._chunk_index.values())

    def _step(self, f: dict[str, Any], model: torch.nn.Module, lr: float, was_warmup: bool,
              scale: float, skipped: bool) -> None:
        """One optimizer step: train()'s locals right after its backward of this chunk."""
        if f["chunks"] is not self._chunks_ref:
            self._match_chunks(f)
        chunk = f["chunk_json"]
        k = self._chunk_index[id(chunk)]
        chunk_size = int(f["chunk_size"])
        batch = self.batches[-1]
        mask = chunk["selection_mask"].cpu().numpy()
        rows_in_batch = np.nonzero(mask)[0]
        a_lengths = f["a_lengths"].cpu().tolist()
        t_lengths = f["t_lengths"].cpu().tolist()
        targets = f["txt"].cpu().numpy()
        out = f["out"]
        if self.light:
            row_ctc = feat_sum = [float("nan")] * len(rows_in_batch)
        else:
            probs = out["final_posteriors"].detach().float()
            with torch.no_grad():
                row_ctc = torch.nn.functional.ctc_loss(
                    probs.transpose(0, 1).cpu(), f["txt"].cpu(), out["length"].cpu(),
                    f["t_lengths"].cpu(), blank=probs.shape[-1] - 1, reduction="none").tolist()
            feat_sum = [float(a.sum()) for a in chunk["audio"].detach().cpu().double().numpy()]
        step = len(self.steps) + 1
        for r, b in enumerate(rows_in_batch):
            toks = targets[r, : t_lengths[r]].astype(np.int64)
            full = batch["lengths"][b]
            self.rows.append({
                "step": step, "row": r, "batch_row": int(b), "rec_id": batch["ids"][b],
                "chunk_start": k * chunk_size, "audio_length": int(a_lengths[r]),
                "valid_frames": int(min(max(full - k * chunk_size, 0), chunk_size)),
                "out_length": int(out["length"][r]), "tokens": toks.tolist(),
                "row_ctc": float(row_ctc[r]), "feat_sum": float(feat_sum[r]),
                "tok_sha": hashlib.sha1(toks.tobytes()).hexdigest()[:12],
            })
        self.steps.append({
            "step": step, "batch": batch["batch"], "chunk_index": k,
            "kept_chunk": int(f["ix"]), "kept_chunks": len(f["chunks"]),
            "ctc_sum": float(f["loss"].detach()), "backprop_loss": self.scaler.last_input,
            "grad_scale": scale, "logged_loss": float(f["loss_to_log"]),
            "frames_in_loss": int(sum(a_lengths)),
            "grad_norm": self._grad_norm if self._grad_norm is not None else float("nan"),
            "skipped": bool(skipped), "lr": lr, "warmup": was_warmup,
            "seq_len": chunk_size, "batch_size": int(f["batch_size"]), "rows": len(rows_in_batch),
            "cur_podcast": int(f["cur_podcast"]), "epoch": int(f["epoch"]),
        })
        batch["n_steps"] += 1
        if not self.light:
            self.norms.append(tensor_norms(model))
        if step in self.snapshot_steps:
            self.snapshots[step] = state_arrays(model)
        if (self.max_steps is not None and step >= self.max_steps) or (
                self.deadline is not None and time.monotonic() > self.deadline):
            raise StopReplay(step)


class StopReplay(Exception):
    """Raised from the step hook after --steps optimizer steps or past --time-limit-s."""
