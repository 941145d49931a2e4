"""Long-form evaluation modes: which windows of a recording the model sees, and how the
per-window CTC log-probs are merged back into one (frames_out, classes) matrix.

Units: input frames (10 ms spectrogram frames) for window bounds, output frames (one per
`factor` input frames, 80 ms) for merged positions. `context` is what the model sees, in
input frames (the original's and the results table's `seq_len`): the window length, or in
windowed_attention mode the attention span.

Modes (same semantics as the original's `lcasr/eval/` and `eval/run.py`):
  * averaged_moving_window: windows of `context` frames every `context - overlap` frames;
    where windows overlap, the *probabilities* (exp of log-probs) are averaged, then the log
    taken (`lcasr.eval.utils.fetch_logits`).
  * buffered: each window ("buffer") of `context` frames contributes only its central chunk
    of `context - overlap` frames; chunks are concatenated (`buffered_transcription.py`).
  * windowed_attention: the whole recording in one window (up to `max_seq_len`, 10 hours by
    default, moving-window merged beyond) with the model's attention restricted to
    `(context // factor) // 2` output frames each side (`eval/run.py`).

Repairs of the original's defects (results are unchanged):
  * The original allocated two (1, frames // 4 + seq_len, classes) float32 buffers (logits
    and a per-class counter), i.e. ~15 GB for one hour at full context, and trimmed unused
    rows afterwards. Here the merged length is computed exactly from the plan and the
    counter is one number per output frame.
  * The buffered mode wrote each chunk at `position + chunk_offset`, leaving gaps that the
    original squeezed out afterwards; the plan here places chunks contiguously directly.
Kept on purpose (they change the numbers): the moving window loop's stop rule (the first
window shorter than its predecessor is processed, the rest skipped, so a trailing window
fully inside the previous one can still be averaged in) and the original's rounding of
window positions (`int(overlap / (frames / frames_out))`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from lcasr_jax import validate
from lcasr_jax.model.lengths import output_lengths

MODES = ("averaged_moving_window", "buffered", "windowed_attention")
MAX_SEQ_LEN = 3_600_000  # frames (10 hours): the original's windowed-attention chunk


@dataclasses.dataclass(frozen=True)
class Window:
    """One model call: input frames [start, end); its output frames [keep_start, keep_end)
    land at merged output frames [out_pos, out_pos + keep_end - keep_start)."""

    start: int
    end: int
    keep_start: int
    keep_end: int
    out_pos: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclasses.dataclass(frozen=True)
class Plan:
    """Windows of one recording, the merge rule and the merged length (output frames)."""

    mode: str
    windows: tuple[Window, ...]
    out_frames: int
    average: bool  # True: average probabilities of overlapping windows; False: concatenate
    factor: int  # the model's subsampling factor (input frames per output frame)


def overlap_frames(context: int, overlap: int | None, ratio: float | None, factor: int) -> int:
    """Overlap in input frames: given directly, or int(context * ratio) (as the original's
    eval_manager) rounded down to a multiple of the subsampling factor; 0 if neither."""
    if overlap is not None:
        return overlap
    if ratio is None:
        return 0
    validate.check("overlap_ratio", ratio, validate.fraction())
    return int(context * ratio) // factor * factor


def _clamp(n_frames: int, context: int, overlap: int) -> tuple[int, int]:
    if n_frames <= 0:
        raise ValueError(f"recording has no frames ({n_frames})")
    if context <= 0:
        raise ValueError(f"context must be positive (got {context})")
    if context > n_frames:
        return n_frames, 0
    if not 0 <= overlap < context:
        raise ValueError(f"overlap must be in [0, context) (got {overlap}, context {context})")
    return context, overlap


def moving_window_plan(n_frames: int, context: int, overlap: int, factor: int,
                       mode: str = "averaged_moving_window") -> Plan:
    """The original's `fetch_logits` loop (lcasr/eval/utils.py) as a plan."""
    context, overlap = _clamp(n_frames, context, overlap)
    if overlap % factor:
        raise ValueError(f"overlap ({overlap}) must be a multiple of the subsampling factor "
                         f"({factor})")
    windows: list[Window] = []
    position, last_len, stop_next = 0, None, False
    for start in range(0, n_frames, context - overlap):
        length = min(context, n_frames - start)
        if stop_next:
            break
        if last_len is not None and length < last_len:
            stop_next = True
        last_len = length
        n_out = output_lengths(length, factor)
        if start != 0:
            position -= int(overlap / (length / n_out))
        windows.append(Window(start, start + length, 0, n_out, position))
        position += n_out
    out = max(w.out_pos + w.keep_end for w in windows)
    return Plan(mode, tuple(windows), out, average=True, factor=factor)


def buffered_plan(n_frames: int, context: int, overlap: int, factor: int) -> Plan:
    """The original's buffered transcription (lcasr/eval/buffered_transcription.py).

    `overlap` is the total overlap around each chunk (half each side); chunk = context -
    overlap frames. Windows at the edges are shifted inwards to stay `context` long.
    """
    context, overlap = _clamp(n_frames, context, overlap)
    if overlap % factor:
        raise ValueError(f"overlap ({overlap}) must be a multiple of the subsampling factor "
                         f"({factor})")
    chunk = context - overlap
    chunk_start, chunk_end = 0, chunk
    bounds = []
    while True:
        buf_start, buf_end = chunk_start - overlap // 2, chunk_end + overlap // 2
        if buf_start < 0:
            buf_start, buf_end = 0, context
        elif buf_end > n_frames:
            buf_start, buf_end = n_frames - context, n_frames
        bounds.append((buf_start, buf_end, chunk_start, chunk_end))
        chunk_start, chunk_end = chunk_start + chunk, chunk_end + chunk
        chunk_end = min(chunk_end, n_frames)
        if chunk_start >= n_frames:
            break
    windows, position = [], 0
    for buf_start, buf_end, c_start, c_end in bounds:
        length = buf_end - buf_start
        ratio = length / output_lengths(length, factor)
        keep_start, keep_end = int((c_start - buf_start) / ratio), int((c_end - buf_start) / ratio)
        windows.append(Window(buf_start, buf_end, keep_start, keep_end, position))
        position += keep_end - keep_start
    return Plan("buffered", tuple(windows), position, average=False, factor=factor)


def attention_window(context: int, factor: int) -> tuple[int, int]:
    """(left, right) attention window in output frames for windowed_attention mode."""
    w = (context // factor) // 2
    return (w, w)


def windowed_model(model, context: int):
    """The same weights with attention limited as in windowed_attention mode: to
    `attention_window(context, factor)` output frames each side."""
    cfg = model.config
    return model.clone(config=cfg.replace(
        attention_window=attention_window(context, cfg.subsampling_factor)))


def make_plan(mode: str, n_frames: int, context: int, overlap: int, factor: int,
              max_seq_len: int = MAX_SEQ_LEN) -> Plan:
    """Plan for `mode`. In windowed_attention mode `context` only sets the attention window
    (see `attention_window`); windows are `max_seq_len` long (the whole recording)."""
    if mode == "averaged_moving_window":
        return moving_window_plan(n_frames, context, overlap, factor)
    if mode == "buffered":
        return buffered_plan(n_frames, context, overlap, factor)
    if mode == "windowed_attention":
        return moving_window_plan(n_frames, max_seq_len, overlap, factor, mode=mode)
    raise ValueError(f"unknown evaluation mode {mode!r} (choose from {', '.join(MODES)})")


class Merger:
    """Accumulates window outputs of one recording into (out_frames, classes) log-probs.

    add() may be called in any order; result() gives the merged log-probs (float32).
    Averaging is done in probability space in float32, as the original does.
    """

    def __init__(self, plan: Plan, classes: int):
        self.plan = plan
        self.total = np.zeros((plan.out_frames, classes), np.float32)
        self.count = np.zeros((plan.out_frames,), np.float32)
        self.pending = len(plan.windows)

    def add(self, index: int, log_probs: np.ndarray) -> None:
        """log_probs: (frames_out >= keep_end, classes) output of window `index`."""
        w = self.plan.windows[index]
        part = np.asarray(log_probs[w.keep_start:w.keep_end], np.float32)
        sl = slice(w.out_pos, w.out_pos + part.shape[0])
        if self.plan.average:
            self.total[sl] += np.exp(part)
        else:
            self.total[sl] = part
        self.count[sl] += 1
        self.pending -= 1

    def result(self) -> np.ndarray:
        if self.pending:
            raise RuntimeError(f"{self.pending} window(s) not merged yet")
        if not self.plan.average:
            return self.total
        with np.errstate(divide="ignore"):
            return np.log(self.total / self.count[:, None])


def merge(plan: Plan, outputs: Sequence[np.ndarray]) -> np.ndarray:
    """Merge all window outputs (in plan order) at once; see Merger."""
    merger = Merger(plan, outputs[0].shape[-1])
    for i, out in enumerate(outputs):
        merger.add(i, out)
    return merger.result()
