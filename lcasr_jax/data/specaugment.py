"""SpecAugment in JAX with the original's parameters and sampling (lcasr.utils.augmentation).

The original applies `n_time_masks` time masks then `n_freq_masks` frequency masks with
torchaudio's `mask_along_axis_iid`: per example (iid_masks) and per mask,
width = floor(u1 * param) and start = floor(u2 * (size - u1 * param)), u1, u2 ~ U[0, 1);
frames [start, start + width) get the fill value. Parameters:
- frequency: param = freq_mask_param, capped at int(80 * max_p) when max_p < 1;
- time: param = time_mask_param, or, when min_p != -1, int(int(T * min_p) / n_time_masks)
  ("masks by proportion"), then capped at int(T * max_p) when max_p < 1; T is the padded
  length of the batch (as in the original; `per_example_length=True` uses each example's own
  length instead and keeps time masks inside it);
- fill: 0 (zero_masking) or the mean of the batch over valid frames (lengths) and all bins.
The original's experiment config (exp_set_seq_sched_spec_aug.yaml): 2 time masks by
proportion (min_p 0.1, max_p 0.5), 2 frequency masks of up to 27 bins, mean fill.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class SpecAugmentConfig:
    n_time_masks: int = 2
    n_freq_masks: int = 2
    freq_mask_param: int = 27
    time_mask_param: int = -1
    min_p: float = 0.1
    max_p: float = 0.5
    zero_masking: bool = False
    iid_masks: bool = True
    per_example_length: bool = False

    def __post_init__(self):
        if self.n_time_masks and self.min_p == -1 and self.time_mask_param == -1:
            raise ValueError("SpecAugment: time masks need min_p or time_mask_param")
        if not (self.min_p == -1 or 0 <= self.min_p <= 1) or not 0 <= self.max_p <= 1:
            raise ValueError("SpecAugment: min_p and max_p must lie in [0, 1]")

    @classmethod
    def from_original(cls, cfg: Mapping[str, Any]) -> SpecAugmentConfig:
        """From the original's `spec_augment` config mapping (its keys and defaults)."""
        known = {f.name for f in dataclasses.fields(cls)} - {"per_example_length"}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f"SpecAugment: unknown config keys {sorted(unknown)}")
        defaults = {"time_mask_param": -1, "min_p": -1, "max_p": 1.0, "zero_masking": False,
                    "iid_masks": True}
        return cls(**{**defaults, **dict(cfg)})

    def time_param(self, frames: int) -> int:
        param, n = self.time_mask_param, self.n_time_masks
        if self.min_p != -1:
            param = int(int(frames * self.min_p) / n) if n else 0
        return param if self.max_p == 1.0 else min(param, int(frames * self.max_p))

    def freq_param(self, bins: int) -> int:
        p = self.freq_mask_param
        return p if self.max_p == 1.0 else min(p, int(bins * self.max_p))


def _masks(key, n_masks: int, param, size, axis_len: int, n_draws: int) -> jax.Array:
    """Union of n_masks masks along an axis: (n_draws, axis_len) bool."""
    pos = jnp.arange(axis_len)
    out = jnp.zeros((n_draws, axis_len), bool)
    for k in jax.random.split(key, n_masks):
        k1, k2 = jax.random.split(k)
        value = jax.random.uniform(k1, (n_draws,)) * param
        start = jnp.floor(jax.random.uniform(k2, (n_draws,)) * (size - value))
        end = start + jnp.floor(value)
        out |= (pos[None] >= start[:, None]) & (pos[None] < end[:, None])
    return out


def spec_augment(key: jax.Array, spec: jax.Array, lengths: jax.Array | None,
                 config: SpecAugmentConfig) -> jax.Array:
    """Mask spec (batch, bins, frames); lengths (batch,) valid frames (None = all). Jit-able."""
    b, f, t = spec.shape
    valid = (jnp.ones((b, t), bool) if lengths is None
             else jnp.arange(t)[None] < jnp.asarray(lengths)[:, None])
    if config.zero_masking:
        fill = jnp.zeros((), spec.dtype)
    else:
        total = jnp.sum(jnp.where(valid[:, None, :], spec.astype(jnp.float32), 0.0))
        fill = (total / jnp.maximum(f * jnp.sum(valid), 1)).astype(spec.dtype)
    draws = b if config.iid_masks else 1
    kt, kf = jax.random.split(key)
    mask = jnp.zeros((draws, f, t), bool)
    if config.n_time_masks:
        if config.per_example_length and lengths is not None:
            n = jnp.asarray(lengths).astype(jnp.float32)
            if config.min_p != -1:
                param = jnp.floor(jnp.floor(n * config.min_p) / config.n_time_masks)
            else:
                param = jnp.full_like(n, config.time_mask_param)
            if config.max_p != 1.0:
                param = jnp.minimum(param, jnp.floor(n * config.max_p))
            param, size = param[:draws], n[:draws]
        else:
            param, size = config.time_param(t), t
        tm = _masks(kt, config.n_time_masks, param, size, t, draws)
        mask |= tm[:, None, :]
    fparam = config.freq_param(f)
    if config.n_freq_masks and fparam >= 1:
        fm = _masks(kf, config.n_freq_masks, fparam, f, f, draws)
        mask |= fm[:, :, None]
    return jnp.where(mask, fill, spec)
