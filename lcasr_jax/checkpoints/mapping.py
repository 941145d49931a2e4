"""The one table between released state_dict keys and Flax variables, used both ways.

Each `Rule` names a torch key, the Flax collection and path it maps to, and the layout
change: linear weights are transposed, convolutions permuted to HWIO / WIO, the fused q/k/v
rows (head, dim, q|k|v) become a (d_model, 3, heads, head_dim) kernel, and the output
projection (d_model, heads * head_dim) becomes (heads, head_dim, d_model).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from lcasr_jax.model.config import ModelConfig

Array = np.ndarray


@dataclasses.dataclass(frozen=True)
class Rule:
    torch_key: str
    collection: str  # 'params' | 'batch_stats' | 'buffers'
    path: tuple[str, ...]
    to_flax: Callable[[Array], Array]
    to_torch: Callable[[Array], Array]
    torch_dtype: str = "float32"


_same = (lambda a: a, lambda a: a)
_linear = (lambda w: w.T, lambda k: k.T)
_conv1x1 = (lambda w: w[:, :, 0].T, lambda k: k.T[:, :, None])
_conv1d = (lambda w: w.transpose(2, 1, 0), lambda k: k.transpose(2, 1, 0))
_conv2d = (lambda w: w.transpose(2, 3, 1, 0), lambda k: k.transpose(3, 2, 0, 1))


def _qkv(cfg: ModelConfig):
    h, dh, d = cfg.n_heads, cfg.head_dim, cfg.d_model
    fwd = lambda w: w.reshape(h, dh, 3, d).transpose(3, 2, 0, 1)
    back = lambda k: k.transpose(2, 3, 1, 0).reshape(h * dh * 3, d)
    return fwd, back


def _qkv_bias(cfg: ModelConfig):
    h, dh = cfg.n_heads, cfg.head_dim
    return (lambda b: b.reshape(h, dh, 3).transpose(2, 0, 1),
            lambda b: b.transpose(1, 2, 0).reshape(-1))


def _out_proj(cfg: ModelConfig):
    h, dh, d = cfg.n_heads, cfg.head_dim, cfg.d_model
    return (lambda w: w.reshape(d, h, dh).transpose(1, 2, 0),
            lambda k: k.transpose(2, 0, 1).reshape(d, h * dh))


def _norm(cfg: ModelConfig, torch_prefix: str, path: tuple[str, ...],
          kind: str | None = None) -> Iterator[Rule]:
    kind = kind or ("rms_" + cfg.rms_norm_style if cfg.default_norm == "rms_norm" else "layer")
    if kind == "layer":
        yield Rule(f"{torch_prefix}.weight", "params", (*path, "scale"), *_same)
        yield Rule(f"{torch_prefix}.bias", "params", (*path, "bias"), *_same)
    elif kind == "rms_lcasr":
        yield Rule(f"{torch_prefix}.scale", "params", (*path, "scale"), *_same)
    else:  # apex FusedRMSNorm
        yield Rule(f"{torch_prefix}.weight", "params", (*path, "scale"), *_same)


def _linear_rules(torch_prefix: str, path: tuple[str, ...], bias: bool) -> Iterator[Rule]:
    yield Rule(f"{torch_prefix}.weight", "params", (*path, "kernel"), *_linear)
    if bias:
        yield Rule(f"{torch_prefix}.bias", "params", (*path, "bias"), *_same)


def _layer_rules(cfg: ModelConfig, i: int) -> Iterator[Rule]:
    t, f = f"layers.{i}", f"layer_{i}"
    if not cfg.transformer:
        yield from _norm(cfg, f"{t}.conv.norm", (f, "conv_norm"))
        c = f"{t}.conv.fn"
        yield Rule(f"{c}.pointwise_conv1.weight", "params",
                   (f, "conv", "pointwise_conv1", "kernel"), *_conv1x1)
        yield Rule(f"{c}.pointwise_conv1.bias", "params",
                   (f, "conv", "pointwise_conv1", "bias"), *_same)
        yield Rule(f"{c}.depthwise_conv.weight", "params",
                   (f, "conv", "depthwise_conv", "kernel"), *_conv1d)
        yield Rule(f"{c}.depthwise_conv.bias", "params",
                   (f, "conv", "depthwise_conv", "bias"), *_same)
        if cfg.conv_norm == "batch_renorm":
            br = (f, "conv", "batch_renorm")
            yield Rule(f"{c}.batch_norm.weight", "params", (*br, "scale"), *_same)
            yield Rule(f"{c}.batch_norm.bias", "params", (*br, "bias"), *_same)
            yield Rule(f"{c}.batch_norm.running_mean", "batch_stats", (*br, "mean"), *_same)
            yield Rule(f"{c}.batch_norm.running_std", "batch_stats", (*br, "std"), *_same)
            yield Rule(f"{c}.batch_norm.num_batches_tracked", "batch_stats", (*br, "steps"),
                       lambda a: a.astype(np.float32), lambda a: np.rint(a).astype(np.int64),
                       torch_dtype="int64")
        elif cfg.conv_norm == "layer_norm":
            yield from _norm(cfg, f"{c}.batch_norm", (f, "conv", "layer_norm"), kind="layer")
        yield Rule(f"{c}.pointwise_conv2.weight", "params",
                   (f, "conv", "pointwise_conv2", "kernel"), *_conv1x1)
        yield Rule(f"{c}.pointwise_conv2.bias", "params",
                   (f, "conv", "pointwise_conv2", "bias"), *_same)
    ffs = ("ff2",) if cfg.transformer else ("ff1", "ff2")
    for ff in ffs:
        yield from _norm(cfg, f"{t}.{ff}.fn.norm", (f, f"{ff}_norm"))
        for fc in ("fc1", "fc2"):
            yield from _linear_rules(f"{t}.{ff}.fn.fn.{fc}", (f, f"{ff}_fn", fc), cfg.bias_in_ff)
        if cfg.sandwich_norm:
            yield from _norm(cfg, f"{t}.{ff}.fn.norm_out", (f, f"{ff}_norm_out"))
    yield from _norm(cfg, f"{t}.attend.norm", (f, "attn_norm"))
    yield Rule(f"{t}.attend.fn.qkv_proj.weight", "params", (f, "attn", "qkv", "kernel"),
               *_qkv(cfg))
    if cfg.qkv_bias:
        yield Rule(f"{t}.attend.fn.qkv_proj.bias", "params", (f, "attn", "qkv", "bias"),
                   *_qkv_bias(cfg))
    yield Rule(f"{t}.attend.fn.out_proj.weight", "params", (f, "attn", "out", "kernel"),
               *_out_proj(cfg))
    if cfg.sandwich_norm:
        yield from _norm(cfg, f"{t}.attn_norm_out", (f, "attn_norm_out"))
    yield from _norm(cfg, f"{t}.norm_out", (f, "norm_out"))


def rules(cfg: ModelConfig) -> list[Rule]:
    """All rules for `cfg`, in the released state_dict's key order."""
    out: list[Rule] = []
    if cfg.use_rotary:
        out.append(Rule("rotary_pos_emb.inv_freq", "params" if cfg.learned_rotary else "buffers",
                        ("rotary", "inv_freq"), *_same))
        out.append(Rule("rotary_pos_emb.rotary_interpolation_factor", "buffers",
                        ("rotary", "interpolation_factor"), *_same))
    if cfg.fourier_pos_enc:
        out.append(Rule("fourier_pos_enc.w_r", "params", ("fourier_pos", "w_r"), *_same))
    out += _linear_rules("decoder.ff", ("decoder", "ff"), True)
    out += _linear_rules("decoder.reprojection", ("decoder", "reprojection"), True)
    if cfg.decoder_norm:
        out += _norm(cfg, "decoder.norm", ("decoder", "norm"))
    s = "subsampling"
    if cfg.subsampling_norm_out:  # registered before `out` in the original
        out += _norm(cfg, f"{s}.norm_out", (s, "norm_out"), kind="layer")
    out += _linear_rules(f"{s}.out", (s, "out"), cfg.subsampling_norm_out)
    stages = [("0", "conv_in")]
    for stage in range(1, cfg.subsampling_factor.bit_length() - 1):
        base = 3 * stage - 1
        stages += [(str(base), f"depthwise_{stage}"), (str(base + 1), f"pointwise_{stage}")]
    for idx, name in stages:
        out.append(Rule(f"{s}.conv.{idx}.weight", "params", (s, name, "kernel"), *_conv2d))
        out.append(Rule(f"{s}.conv.{idx}.bias", "params", (s, name, "bias"), *_same))
    for i in range(cfg.n_layers):
        out += _layer_rules(cfg, i)
    return out


def _set(tree: dict, path: tuple[str, ...], value: Any) -> None:
    for p in path[:-1]:
        tree = tree.setdefault(p, {})
    tree[path[-1]] = value


def _get(tree: Mapping, path: tuple[str, ...]) -> Any:
    for p in path:
        tree = tree[p]
    return tree


def state_dict_to_variables(state_dict: Mapping[str, Array], cfg: ModelConfig,
                            expected: Mapping[str, Any], source: str = "checkpoint") -> dict:
    """Released state_dict (numpy arrays) -> Flax variables, checked against `expected`
    (the abstract variables of a freshly built model). Raises ValueError on the first
    missing key, unexpected key or shape mismatch, naming it."""
    table = rules(cfg)
    known = {r.torch_key for r in table}
    for key in state_dict:
        if key not in known:
            raise ValueError(f"{source}: unexpected key {key!r} for this model config")
    variables: dict = {}
    for rule in table:
        if rule.torch_key not in state_dict:
            raise ValueError(f"{source}: missing key {rule.torch_key!r}")
        want = _get(expected, (rule.collection, *rule.path))
        try:
            value = rule.to_flax(np.asarray(state_dict[rule.torch_key]))
        except ValueError:  # a reshape by the config's sizes that the array does not fit
            value = None
        if value is None or tuple(value.shape) != tuple(want.shape):
            sizes = "" if ".attend.fn." not in rule.torch_key else (
                f" (config.model n_heads={cfg.n_heads}, head_dim={cfg.head_dim}, "
                f"d_model={cfg.d_model})")
            raise ValueError(
                f"{source}: shape mismatch for {rule.torch_key!r}: got "
                f"{tuple(np.asarray(state_dict[rule.torch_key]).shape)}, the config implies "
                f"{tuple(rule.to_torch(np.zeros(want.shape)).shape)}{sizes}")
        _set(variables, (rule.collection, *rule.path), value.astype(want.dtype))
    return variables


def variables_to_state_dict(variables: Mapping[str, Any], cfg: ModelConfig) -> dict[str, Array]:
    """Flax variables -> released state_dict (numpy arrays, released key order)."""
    out: dict[str, Array] = {}
    for rule in rules(cfg):
        value = np.asarray(_get(variables, (rule.collection, *rule.path)))
        out[rule.torch_key] = np.array(rule.to_torch(value), dtype=rule.torch_dtype, order="C")
    return out
