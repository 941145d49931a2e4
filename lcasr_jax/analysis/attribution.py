"""Context attribution: how much segment i's output depends on segment j's input.

As the original's `eval/bin/run_context_attribution.py` (its "windows"; segments here, so
as not to be taken for eval windows or attention spans): a recording's features are cut
into n segments of `segment` frames (the original's 2,048); for each j, segment j's
features are replaced by their mean (one number) and the whole recording is run again in
one pass; segment i's outputs (output frames int(start / (frames / out)) ..
int(end / (frames / out)), the original's rounding) of each masked run are compared with
the unmasked run's:

  wer[i, j]      the original's result, an n x (n + 1) matrix: WER (%) of the greedy
                 transcript whose segment i comes from the run with segment j masked and
                 the rest from the unmasked run; wer[:, n] is the unmasked run's WER. Needs
                 a (normalised) reference.
  logp[i, j]     (this project's) mean over segment i's output frames of log p(path)
                 unmasked - masked, the path being the unmasked run's greedy (argmax) path:
                 its loss of confidence; needs no reference
  changed[i, j]  share of segment i's output frames whose argmax changes

The n + 1 runs (unmasked first) are independent forwards of the same shape, batched and
sharded over the devices of one process (`eval.engine.make_forward`); only per-frame
reductions (the path's log-prob and the argmax) leave the device.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from lcasr_jax.decode import greedy_ids
from lcasr_jax.eval.normalize import normalize_hypothesis
from lcasr_jax.eval.wer import word_error_rate_detail

SEGMENT = 2048  # frames per attribution segment: the original's --window_size default
MEASURES = ("wer", "logp")  # the original's WER matrix; this project's log-prob drop


@dataclasses.dataclass(frozen=True)
class Attribution:
    id: str
    segment_frames: int  # input frames per segment (10 ms each)
    bounds: np.ndarray  # (n, 2) input frames [start, end) of each segment
    out_bounds: np.ndarray  # (n, 2) output frames of each segment
    logp: np.ndarray  # (n, n) [i, j]: segment i's path log-prob drop when j is masked
    changed: np.ndarray  # (n, n) share of segment i's frames whose argmax changes
    wer: np.ndarray | None  # (n, n + 1) WER %: [i, j<n] segment i from masked run j, [i, n]
    #                         the unmasked run (the original's matrix); None: no reference
    wer_base: float | None  # WER % of the unmasked run (= wer[:, n])

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"bounds": self.bounds, "out_bounds": self.out_bounds, "logp": self.logp,
               "changed": self.changed, "segment_frames": np.array(self.segment_frames)}
        if self.wer is not None:
            out |= {"wer": self.wer, "wer_base": np.array(self.wer_base)}
        return out


def segment_bounds(frames: int, segment: int) -> np.ndarray:
    """(n, 2) [start, end) input frames of consecutive segments (the last may be shorter)."""
    if segment <= 0:
        raise ValueError(f"attribution segment must be positive (got {segment} frames)")
    starts = np.arange(0, frames, segment)
    return np.stack([starts, np.minimum(starts + segment, frames)], 1)


def masked_variants(spec: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """(n + 1, feat, frames): spec, then spec with segment j set to its mean, for each j."""
    out = np.repeat(spec[None], len(bounds) + 1, axis=0)
    for j, (a, b) in enumerate(bounds):
        out[j + 1, :, a:b] = spec[:, a:b].mean()
    return out


@functools.cache
def _reduce_fn():
    @jax.jit
    def reduce(log_probs, path):
        """(rows, T, C), path (T,) -> (log_probs at the path (rows, T), argmax (rows, T))."""
        at = jnp.take_along_axis(log_probs, jnp.broadcast_to(path[None, :, None],
                                                             (*log_probs.shape[:2], 1)), -1)
        return at[..., 0], log_probs.argmax(-1).astype(jnp.int32)

    return reduce


def run_variants(forward, n_devices: int, variants: np.ndarray, batch_size: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Forward every variant (rows, feat, frames), batched; returns (path log-probs
    (rows, T), argmax ids (rows, T)), the path being row 0's argmax."""

    rows = max(n_devices, -(-batch_size // n_devices) * n_devices)
    frames = variants.shape[-1]
    path = None
    logps, ids = [], []
    for start in range(0, len(variants), rows):
        batch = variants[start:start + rows]
        real = len(batch)
        if real < rows:  # dummy rows (copies of the first) fill the last batch
            batch = np.concatenate([batch, np.repeat(batch[:1], rows - real, 0)])
        log_probs, _ = forward(batch, np.full((rows,), frames, np.int32))
        if path is None:
            path = jnp.argmax(log_probs[0], -1)
        logp, argmax = _reduce_fn()(log_probs, path)
        logps.append(np.asarray(logp)[:real])
        ids.append(np.asarray(argmax)[:real])
    return np.concatenate(logps), np.concatenate(ids)


def matrices(logp: np.ndarray, ids: np.ndarray, out_bounds: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """(logp (n, n), changed (n, n)) from per-variant path log-probs and ids (n + 1, T)."""
    n = len(out_bounds)
    drop, changed = np.zeros((n, n)), np.zeros((n, n))
    for i, (a, b) in enumerate(out_bounds):
        if b <= a:
            continue
        drop[i] = (logp[0, a:b][None] - logp[1:, a:b]).mean(-1)
        changed[i] = (ids[1:, a:b] != ids[0, a:b][None]).mean(-1)
    return drop, changed


def wer_matrix(ids: np.ndarray, out_bounds: np.ndarray, reference: str, tokenizer,
               factor: int) -> tuple[np.ndarray, float]:
    """The original's (n, n + 1) WER % matrix: [i, j] of the unmasked path with segment i
    taken from masked run j, [i, n] of the unmasked path; and the unmasked WER %."""

    def wer(path):
        text = greedy_ids(path, tokenizer, factor=factor, timestamps=False).text
        return 100 * word_error_rate_detail([normalize_hypothesis(text)], [reference]).wer

    n = len(out_bounds)
    out = np.zeros((n, n + 1))
    out[:, n] = base = wer(ids[0])
    for i, (a, b) in enumerate(out_bounds):
        for j in range(n):
            path = ids[0].copy()
            path[a:b] = ids[j + 1, a:b]
            out[i, j] = wer(path)
    return out, base


def attribute(forward, n_devices: int, spec: np.ndarray, segment: int, *, factor: int,
              batch_size: int = 8, reference: str | None = None, tokenizer=None,
              recording_id: str = "") -> Attribution:
    """Attribution of one recording's features spec (feat, frames) with `forward`
    (`eval.engine.make_forward`) over segments of `segment` frames."""
    bounds = segment_bounds(spec.shape[1], segment)
    logp, ids = run_variants(forward, n_devices, masked_variants(spec, bounds), batch_size)
    ratio = spec.shape[1] / ids.shape[1]  # the original's downsampled_by
    out_bounds = np.array([[int(a / ratio), int(b / ratio)] for a, b in bounds], int)
    drop, changed = matrices(logp, ids, out_bounds)
    wer = base = None
    if reference is not None:
        from lcasr_jax.data.tokenizer import default_tokenizer

        wer, base = wer_matrix(ids, out_bounds, reference, tokenizer or default_tokenizer(),
                               factor)
    return Attribution(recording_id, segment, bounds, out_bounds, drop, changed, wer, base)


def by_distance(matrix: np.ndarray) -> np.ndarray:
    """(n,) mean of matrix[i, j] over pairs with |i - j| = d, for d = 0 .. n - 1 (of the
    first n columns: the unmasked column of a WER matrix is left out)."""
    n = matrix.shape[0]
    matrix = matrix[:, :n]
    d = np.abs(np.arange(n)[:, None] - np.arange(n)[None])
    return np.array([matrix[d == k].mean() for k in range(n)])
