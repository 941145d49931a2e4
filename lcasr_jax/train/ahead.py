"""The train step compiled ahead: the next sequence stages' programs are built on a thread.

A sequence stage switch (chunk length x2, batch x0.5) gives the step new shapes, and XLA
compiles it again while the accelerator waits: on an H100 host each stage of the 6L-256D
paper model cost ~90 s (2026-12-07, 277 s of a 360-s run went to three stages). The next
stages' shapes are known from the schedule, so `CompileAhead.prepare` queues them and one
background thread compiles them in schedule order while the current stage trains (XLA
compiles outside the GIL), and the call that first meets those shapes runs the prepared
executable. One thread, in order: four stages compiled at once on the same host (2026-12-07,
H100, two runs side by side) made the very next stage wait 154 s instead of ~90 s, since
every compile slowed the others and the one needed first finished no sooner. Same jitted
function, same shapes and shardings, so the same program as a compile on first use: only
the wait moves. Shapes nobody prepared go through the jitted function as before.

One process only (several processes start each new program together: `distributed`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

Signature = tuple[Any, ...]


def _dtype(x: Any) -> np.dtype:
    return x.dtype if hasattr(x, "dtype") else np.result_type(x)


def batch_signature(batch: Mapping[str, Any], loss_norm: Any) -> Signature:
    """What selects a program, given one state: the batch's shapes and dtypes (its
    shardings follow from its shapes: `sharding.put_batch`) and whether a loss_norm is set."""
    return (tuple((k, tuple(np.shape(v)), str(_dtype(v))) for k, v in
                  sorted(batch.items())), loss_norm is None)


def abstract(tree: Any) -> Any:
    """ShapeDtypeStructs (with shardings) of a tree of arrays, for lowering."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), _dtype(x),
                                                       sharding=getattr(x, "sharding", None)),
                        tree)


class CompileAhead:
    """`jitted(state, batch, lr, augment, loss_norm)`, with programs prepared ahead, one at a
    time in the order asked."""

    def __init__(self, jitted: Any, log: Callable[[str], None] = print):
        self._jitted = jitted
        self._log = log
        self._queue: queue.Queue = queue.Queue()
        self._done: dict[Signature, threading.Event] = {}
        self._ready: dict[Signature, Any] = {}
        self._errors: dict[Signature, BaseException] = {}
        self._worker: threading.Thread | None = None
        self.used: set[Signature] = set()  # signatures served by a prepared program

    def prepare(self, state: Any, batch: Mapping[str, jax.Array], lr: Any, augment: Any,
                loss_norm: Any) -> bool:
        """Queue a compile for these arguments' shapes (arrays or ShapeDtypeStructs); False
        when that program is already prepared or queued."""
        key = batch_signature(batch, loss_norm)
        if key in self._done:
            return False
        self._done[key] = threading.Event()
        self._queue.put((key, abstract((state, dict(batch), lr, augment, loss_norm))))
        if self._worker is None:
            self._worker = threading.Thread(target=self._compile_queued, name="compile-ahead",
                                            daemon=True)
            self._worker.start()
        return True

    def _compile_queued(self) -> None:
        while (item := self._queue.get()) is not None:
            key, args = item
            try:
                self._ready[key] = self._jitted.lower(*args).compile()
            except Exception as e:  # noqa: BLE001 - the step then compiles on first use
                self._errors[key] = e
            finally:
                self._done[key].set()

    def __call__(self, state: Any, batch: Mapping[str, jax.Array], lr: Any, augment: Any,
                 loss_norm: Any) -> Any:
        key = batch_signature(batch, loss_norm)
        done = self._done.get(key)
        if done is not None and key not in self.used:
            done.wait()  # queued or compiling: wait for it rather than compile twice
            if key in self._errors:
                self._log(f"compile ahead failed ({self._errors.pop(key)}); compiling now")
        program = self._ready.get(key)
        if program is None:
            return self._jitted(state, batch, lr, augment, loss_norm)
        self.used.add(key)
        return program(state, batch, lr, augment, loss_norm)

    def stop(self) -> None:
        """The end of a run: drop the compiles not started, finish the one running."""
        if self._worker is not None:
            while True:
                try:
                    dropped = self._queue.get_nowait()
                except queue.Empty:
                    break
                self._done.pop(dropped[0]).set()
            self._queue.put(None)
            self._worker.join()
            self._worker = None


def next_stage_batch(batch: Mapping[str, np.ndarray], next_frames: int, next_rows: int,
                     target_width: int) -> dict[str, np.ndarray]:
    """Zero host batch shaped as the next stage's: rows -> next_rows, spec
    (rows, 80, frames) -> next_frames, targets (rows, tokens) -> target_width."""
    out = {}
    for k, v in batch.items():
        shape = [next_rows, *np.shape(v)[1:]]
        if k == "spec":
            shape[-1] = next_frames
        elif k == "targets":
            shape[-1] = target_width
        out[k] = np.zeros(shape, np.asarray(v).dtype)
    return out


def target_width(source: Any, frames: int) -> int:
    """The targets' width a source gives at `frames`: its own `target_width`, else the
    loaders' and the lockstep walk's frames / 8 (a shape guessed wrong only goes unused)."""
    if hasattr(source, "target_width"):
        return int(source.target_width(frames))
    return -(-frames // 8)


def enabled(setting: str) -> bool:
    """`train.compile_ahead`: 'on', 'off', or 'auto' (on off the CPU: on a CPU host the
    thread would take cores from the step itself). One process only."""
    if jax.process_count() > 1 or setting == "off":
        return False
    return setting == "on" or jax.default_backend() != "cpu"
