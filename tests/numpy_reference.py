"""Independent float64 numpy forward of the original SCConformerXL (eval mode, CPU path).

Written from shared/reference/checkpoint-format.md (sections 4, 5 and 7) only; it reads a
released state_dict (torch key -> numpy array) and the original's `config.model` mapping,
with the original class's defaults for absent keys. It never imports lcasr_jax.

Emulated float32 roundings of the original: rotary angles t * inv_freq and Fourier phases
n * w are formed in float32 (as torch does), everything else is float64.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

try:  # exact GELU of torch.nn.GELU() in the subsampling; scipy is optional
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover
    _erf = np.vectorize(math.erf)

F64 = np.float64
VOCAB_SIZE = 4095  # the original always builds SCConformerXL(vocab_size=4095, ...)

# SCConformerXL.__init__ defaults (and kwargs.get defaults) of the original.
ORIGINAL_DEFAULTS: dict[str, Any] = {
    "feat_in": 80, "subsampling": "dw_striding", "subsampling_factor": 8,
    "subsampling_conv_channels": 256, "subsampling_act": "silu", "subsampling_norm_out": False,
    "n_layers": 6, "d_model": 768, "n_heads": 6, "head_dim": 128, "conv_kernel_size": 9,
    "conv_expansion_factor": 1, "decoder_norm": False, "use_rotary": False,
    "fourier_pos_enc": False, "self_conditioning": True, "default_norm": "layer_norm",
    "sandwich_norm": False, "bias_in_ff": False, "transformer": False,
    "legasee_double_norm": True, "conv_norm": "batch_renorm", "qkv_bias": False,
    "attention_window_size": -1,
}


def bf16(x) -> np.ndarray:
    """x rounded to the nearest bfloat16 (ties to even) via float32, returned as float64:
    what a torch op on bf16 tensors stores (it computes in float32, then rounds)."""
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return bits.astype(np.uint32).view(np.float32).astype(F64)


def window_from_config(cfg: Mapping[str, Any]) -> tuple[int, int]:
    """(left, right) as the original's get_window_size: a side key that is not None wins
    (0 included), else attention_window_size, else -1 (unbounded)."""
    out = []
    for side in ("left", "right"):
        v = cfg.get(f"attention_window_size_{side}")
        out.append(int(v) if v is not None else int(cfg.get("attention_window_size", -1)))
    return out[0], out[1]


def output_lengths(lengths: np.ndarray, factor: int) -> np.ndarray:
    """floor((L + 2 - 3) / 2 + 1) in float, log2(factor) times (the original's calc_length)."""
    out = np.asarray(lengths, F64)
    for _ in range(int(round(math.log2(factor)))):
        out = np.floor((out + 2.0 - 3.0) / 2.0 + 1.0)
    return out.astype(np.int64)


class _Weights:
    """state_dict access in float64 that records which keys were read."""

    def __init__(self, state_dict: Mapping[str, np.ndarray]):
        self.sd = state_dict
        self.used: set[str] = set()

    def __contains__(self, key: str) -> bool:
        return key in self.sd

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.sd:
            raise KeyError(f"state_dict has no key {key!r}")
        self.used.add(key)
        return np.asarray(self.sd[key], F64)


def _silu(x):
    return x / (1.0 + np.exp(-x))


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def _act(name: str):
    return {"silu": _silu, "relu": lambda x: np.maximum(x, 0.0),
            "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
            "none": lambda x: x}[name]


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _log_softmax(x, axis=-1):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


def _layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _norm(W: _Weights, prefix: str, default_norm: str, x):
    """default_norm over the last axis; the rms flavour follows the key names (apex or not)."""
    if default_norm == "layer_norm":
        return _layer_norm(x, W[f"{prefix}.weight"], W[f"{prefix}.bias"])
    if f"{prefix}.scale" in W:  # lcasr RMSNorm (apex absent): eps on the RMS
        rms = np.sqrt((x ** 2).sum(-1, keepdims=True)) / math.sqrt(x.shape[-1])
        return W[f"{prefix}.scale"] * x / (rms + 1e-8)
    return W[f"{prefix}.weight"] * x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-5)  # apex


def apply_norm(state_dict: Mapping[str, np.ndarray], prefix: str, default_norm: str,
               x: np.ndarray) -> np.ndarray:
    """The norm stored under `prefix` (e.g. 'layers.0.norm_out') applied to x in float64."""
    return _norm(_Weights(state_dict), prefix, default_norm, np.asarray(x, F64))


def _conv2d(x, w, b, stride: int, pad: int, groups: int):
    """torch Conv2d: x (B, Cin, H, W), w (Cout, Cin/groups, kh, kw)."""
    _, cin, h, wd = x.shape
    cout, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((x.shape[0], cout, ho, wo), F64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
            if groups == 1:
                out += np.einsum("bchw,oc->bohw", patch, w[:, :, i, j])
            else:
                assert groups == cin == cout, "only full or depthwise convolutions"
                out += patch * w[:, 0, i, j][None, :, None, None]
    return out + b[None, :, None, None]


def subsampling(W: _Weights, cfg: Mapping[str, Any], spec: np.ndarray) -> np.ndarray:
    """dw_striding: spec (B, 80, T) -> (B, N, d). Padded frames are NOT masked."""
    if cfg["subsampling"] != "dw_striding":
        raise NotImplementedError(f"subsampling={cfg['subsampling']!r}")
    act = _act(cfg["subsampling_act"])
    x = np.asarray(spec, F64).transpose(0, 2, 1)[:, None]  # (B, 1, T, F): time = height
    x = act(_conv2d(x, W["subsampling.conv.0.weight"], W["subsampling.conv.0.bias"], 2, 1, 1))
    for stage in range(int(round(math.log2(cfg["subsampling_factor"]))) - 1):
        dw, pw = 2 + 3 * stage, 3 + 3 * stage
        x = _conv2d(x, W[f"subsampling.conv.{dw}.weight"], W[f"subsampling.conv.{dw}.bias"],
                    2, 1, x.shape[1])
        x = act(_conv2d(x, W[f"subsampling.conv.{pw}.weight"], W[f"subsampling.conv.{pw}.bias"],
                        1, 0, 1))
    b, c, n, f = x.shape
    x = x.transpose(0, 2, 1, 3).reshape(b, n, c * f)  # channel-major: index c * F + f
    x = x @ W["subsampling.out.weight"].T
    if cfg["subsampling_norm_out"]:
        x = x + W["subsampling.out.bias"]
        x = _layer_norm(x, W["subsampling.norm_out.weight"], W["subsampling.norm_out.bias"])
    return x


def _rotary_tables(W: _Weights, n: int):
    inv_freq = np.asarray(W.sd["rotary_pos_emb.inv_freq"], np.float32)
    factor = np.float32(W.sd["rotary_pos_emb.rotary_interpolation_factor"])
    W.used |= {"rotary_pos_emb.inv_freq", "rotary_pos_emb.rotary_interpolation_factor"}
    t = np.arange(n, dtype=np.float32) / factor
    angles = (t[:, None] * inv_freq[None, :]).astype(F64)  # float32 product, as torch
    angles = np.concatenate([angles, angles], -1)
    return np.cos(angles), np.sin(angles)


def _rotate(x, cos, sin):
    """Half-split rotary on x (B, N, H, Dh) with tables (N, Dh)."""
    half = x.shape[-1] // 2
    rot = np.concatenate([-x[..., half:], x[..., :half]], -1)
    return x * cos[None, :, None] + rot * sin[None, :, None]


def attention(W: _Weights, p: str, cfg, x, valid, masked: bool, rotary, probs_out=None,
              scores_out=None):
    """MHSA; x (B, N, d) already normed. q/k/v rows are laid out (head, dim, q|k|v).
    probs_out / scores_out: lists that receive the probabilities and the pre-softmax scaled
    scores q.k / sqrt(head_dim) (B, H, N, N; scores unmasked)."""
    h, dh = cfg["n_heads"], cfg["head_dim"]
    b, n, _ = x.shape
    if masked:
        x = np.where(valid[..., None], x, 0.0)
    qkv = x @ W[f"{p}.qkv_proj.weight"].T
    if cfg["qkv_bias"]:
        qkv = qkv + W[f"{p}.qkv_proj.bias"]
    qkv = qkv.reshape(b, n, h, dh, 3)
    q, k, v = qkv[..., 0], qkv[..., 1], qkv[..., 2]
    if rotary is not None:
        q, k = _rotate(q, *rotary), _rotate(k, *rotary)
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dh)
    if scores_out is not None:
        scores_out.append(scores)
    allowed = np.ones((b, 1, n, n), bool)
    if masked:
        allowed &= valid[:, None, :, None] & valid[:, None, None, :]
    left, right = window_from_config(cfg)
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    if left >= 0:
        allowed &= (j >= i - left)[None, None]
    if right >= 0:
        allowed &= (j <= i + right)[None, None]
    rows = allowed.any(-1, keepdims=True)  # False only on padded query rows
    probs = _softmax(np.where(allowed, scores, np.where(rows, -np.inf, 0.0)))
    probs = np.where(rows, probs, 0.0)
    if probs_out is not None:
        probs_out.append(probs)
    out = np.einsum("bhqk,bkhd->bqhd", probs, v).reshape(b, n, h * dh)
    if masked:
        out = np.where(valid[..., None], out, 0.0)
    return out @ W[f"{p}.out_proj.weight"].T


def conv_module(W: _Weights, p: str, cfg, x, valid, masked: bool):
    """pointwise -> GLU -> zero pads -> depthwise -> conv_norm -> SiLU -> pointwise."""
    h = np.einsum("bnc,oc->bno", x, W[f"{p}.pointwise_conv1.weight"][..., 0])
    h = h + W[f"{p}.pointwise_conv1.bias"]
    inner = h.shape[-1] // 2
    h = h[..., :inner] * (1.0 / (1.0 + np.exp(-h[..., inner:])))
    if masked:
        h = np.where(valid[..., None], h, 0.0)
    w = W[f"{p}.depthwise_conv.weight"][:, 0]  # (inner, k)
    k = w.shape[-1]
    pad = (k - 1) // 2
    hp = np.pad(h, ((0, 0), (pad, pad), (0, 0)))
    h = sum(hp[:, t:t + h.shape[1]] * w[:, t] for t in range(k)) + W[f"{p}.depthwise_conv.bias"]
    norm, bn = cfg["conv_norm"], f"{p}.batch_norm"
    if norm == "batch_renorm":  # eval: stored running std, no epsilon
        h = (h - W[f"{bn}.running_mean"]) / W[f"{bn}.running_std"] * W[f"{bn}.weight"] \
            + W[f"{bn}.bias"]
        W.used.add(f"{bn}.num_batches_tracked")
    elif norm == "batch_norm":
        h = (h - W[f"{bn}.running_mean"]) / np.sqrt(W[f"{bn}.running_var"] + 1e-5) \
            * W[f"{bn}.weight"] + W[f"{bn}.bias"]
        W.used.add(f"{bn}.num_batches_tracked")
    elif norm == "layer_norm":  # torch.nn.LayerNorm over the inner channels
        h = _layer_norm(h, W[f"{bn}.weight"], W[f"{bn}.bias"])
    elif norm != "none":
        raise NotImplementedError(f"conv_norm={norm!r}")
    h = _silu(h)
    return np.einsum("bnc,oc->bno", h, W[f"{p}.pointwise_conv2.weight"][..., 0]) \
        + W[f"{p}.pointwise_conv2.bias"]


def feed_forward(W: _Weights, p: str, cfg, x):
    """Linear(d -> 4d), tanh GELU, Linear(4d -> d); optional biases."""
    h = x @ W[f"{p}.fc1.weight"].T
    if cfg["bias_in_ff"]:
        h = h + W[f"{p}.fc1.bias"]
    h = _gelu_tanh(h) @ W[f"{p}.fc2.weight"].T
    if cfg["bias_in_ff"]:
        h = h + W[f"{p}.fc2.bias"]
    return h


def conformer_layer(W: _Weights, i: int, cfg, x, valid, masked: bool, rotary, stages: dict):
    p, dn, sandwich = f"layers.{i}", cfg["default_norm"], cfg["sandwich_norm"]

    def ff(x, name):
        h = feed_forward(W, f"{p}.{name}.fn.fn", cfg, _norm(W, f"{p}.{name}.fn.norm", dn, x))
        if sandwich:
            h = _norm(W, f"{p}.{name}.fn.norm_out", dn, h)
        stages[f"layer{i}_{name}_out"] = 0.5 * h
        return x + 0.5 * h

    if not cfg["transformer"]:
        x = ff(x, "ff1")
    probs: list = []
    scores: list = []
    h = attention(W, f"{p}.attend.fn", cfg, _norm(W, f"{p}.attend.norm", dn, x), valid,
                  masked, rotary, probs, scores)
    stages[f"layer{i}_attn_probs"] = probs[0]
    stages[f"layer{i}_attn_scores"] = scores[0]
    if sandwich:
        h = _norm(W, f"{p}.attn_norm_out", dn, h)
    stages[f"layer{i}_attn_out"] = h
    x = x + h
    if not cfg["transformer"]:
        h = conv_module(W, f"{p}.conv.fn", cfg, _norm(W, f"{p}.conv.norm", dn, x), valid, masked)
        stages[f"layer{i}_conv_out"] = h
        x = x + h
    x = ff(x, "ff2")
    return _norm(W, f"{p}.norm_out", dn, x)


def forward(state_dict: Mapping[str, np.ndarray], model_cfg: Mapping[str, Any],
            spec: np.ndarray, lengths: np.ndarray | None = None,
            strict: bool = True) -> dict[str, np.ndarray]:
    """The original's eval forward in float64.

    Args:
      state_dict: released `model` entry, torch key -> array.
      model_cfg: the checkpoint's `config.model` (original key spellings).
      spec: (B, feat_in, T) features before time.
      lengths: (B,) frames, None = all T.
      strict: raise if a state_dict key was never read (an unexpected key).

    Returns a dict of float64 arrays: log_probs and logits (B, N, 4096), length (B,),
    valid (B, N) bool, the stages subsampling_out, pos_enc_out, layer{i}_in,
    layer{i}_out, layer{i}_{ff1,attn,conv,ff2}_out, decoder_in (all (B, N, d)), the attention
    probabilities layer{i}_attn_probs (B, H, N, N), and the
    self-conditioning logits layer{i}_sc_logits (B, N, 4096) of every layer but the last.
    """
    cfg = {**ORIGINAL_DEFAULTS, **dict(model_cfg)}
    if cfg["subsampling_conv_channels"] == -1:
        cfg["subsampling_conv_channels"] = cfg["d_model"]
    W = _Weights(state_dict)
    spec = np.asarray(spec)
    b, _, t = spec.shape
    lengths = np.full((b,), t) if lengths is None else np.asarray(lengths)
    out_len = output_lengths(lengths, cfg["subsampling_factor"])
    stages: dict[str, np.ndarray] = {}

    x = subsampling(W, cfg, spec)
    stages["subsampling_out"] = x
    n = x.shape[1]
    valid = np.arange(n)[None, :] < out_len[:, None]
    masked = bool(out_len.max() != out_len.min())  # quirk 6: no masks for equal lengths
    if masked and out_len.max() != n:
        raise ValueError("the original needs max(length) to reach the input length")
    rotary = _rotary_tables(W, n) if cfg["use_rotary"] else None
    if cfg["fourier_pos_enc"]:
        w = np.asarray(W.sd["fourier_pos_enc.w_r"], np.float32)[0]
        W.used.add("fourier_pos_enc.w_r")
        phase = (np.arange(n, dtype=np.float32)[:, None] * w[None, :]).astype(F64)
        x = x + np.concatenate([np.cos(phase), np.sin(phase)], -1) / math.sqrt(cfg["d_model"])
        stages["pos_enc_out"] = x

    def decoder_norm(x):
        return _norm(W, "decoder.norm", cfg["default_norm"], x) if cfg["decoder_norm"] else x

    def decoder_logits(x):
        return decoder_norm(x) @ W["decoder.ff.weight"].T + W["decoder.ff.bias"]

    for i in range(cfg["n_layers"]):
        stages[f"layer{i}_in"] = x
        x = conformer_layer(W, i, cfg, x, valid, masked, rotary, stages)
        stages[f"layer{i}_out"] = x
        if cfg["self_conditioning"] and i != cfg["n_layers"] - 1:
            stages[f"layer{i}_sc_logits"] = decoder_logits(x)
            probs = _softmax(stages[f"layer{i}_sc_logits"])
            x = x + probs @ W["decoder.reprojection.weight"].T + W["decoder.reprojection.bias"]
    if cfg["legasee_double_norm"]:
        x = decoder_norm(x)
    stages["decoder_in"] = x
    logits = decoder_logits(x)
    W["decoder.reprojection.weight"], W["decoder.reprojection.bias"]  # always built
    unused = sorted(set(state_dict) - W.used)
    if strict and unused:
        raise ValueError(f"state_dict keys the original would not have: {unused[:5]}")
    return {"log_probs": _log_softmax(logits), "logits": logits, "length": out_len,
            "valid": valid, **stages}
