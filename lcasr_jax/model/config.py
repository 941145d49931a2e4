"""Model hyper-parameters of SCConformerXL, as data.

`ModelConfig` holds every option a released lcasr checkpoint can carry. `from_original`
reads the `config.model` mapping of a released checkpoint (keys as the original names
them), applies the original's defaults for absent keys and refuses anything it does not
understand, so a converted model never silently computes something else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from lcasr_jax.data.vocab import VOCAB_SIZE
from lcasr_jax.validate import check, either, int_at_least, is_int, is_number, number_above, one_of

# Keys the original accepts and ignores (swallowed by **kwargs or training-only).
IGNORED_KEYS = frozenset({
    "dropout_ff", "dropout_attn", "dropout_conv", "checkpoint_every_n_layers",
    "ff_checkpoint_lvl", "encoder_mode", "flash_attn", "checkpoint_subsampling",
    "expansion_factor", "return_attention_weights", "vocab_size", "feat_out",
})
# ModelConfig fields about training a fresh model, absent from the original's config.model:
# a released checkpoint gets their defaults, and an export leaves them out.
TRAINING_FIELDS = ("param_init", "batch_renorm_padding", "batch_renorm_dtype",
                   "batch_renorm_rerun_every")
# Leftovers of other model classes in released configs: harmless when off, but some change
# what the original computes when on, so only false/absent is accepted.
OFF_ONLY_KEYS = frozenset({
    "self_condition_subsampling", "qk_rms_norm", "shift_kvs", "gated_sc", "causal",
})


_TYPE_RULES = {
    "int": (is_int, "an integer"), "float": (is_number, "a finite number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "tuple[int, int]": (lambda v: isinstance(v, tuple) and len(v) == 2
                        and all(is_int(x) and x >= -1 for x in v), "[left, right] of ints >= -1"),
}
_FIELD_RULES = {
    **{name: int_at_least(1) for name in ("feat_in", "n_layers", "d_model", "n_heads",
                                          "head_dim", "vocab_size", "conv_kernel_size")},
    "param_init": one_of("lecun", "torch"),
    "batch_renorm_dtype": one_of("float32", "bfloat16"),
    "batch_renorm_rerun_every": int_at_least(0),
    "subsampling_conv_channels": either(-1, int_at_least(1)),
    **{name: number_above(0) for name in ("conv_expansion_factor", "rotary_base_freq",
                                          "rotary_interpolation_factor")},
}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """SCConformerXL hyper-parameters (names follow the original's `config.model`).

    Lengths are in frames; `attention_window` is (left, right) in subsampled tokens,
    -1 meaning unbounded on that side.
    """

    feat_in: int = 80
    n_layers: int = 6
    d_model: int = 768
    n_heads: int = 6
    head_dim: int = 128
    vocab_size: int = VOCAB_SIZE
    subsampling: str = "dw_striding"
    subsampling_factor: int = 8
    subsampling_act: str = "silu"
    subsampling_conv_channels: int = 256
    subsampling_norm_out: bool = False
    conv_kernel_size: int = 9
    conv_expansion_factor: float = 1.0
    conv_norm: str = "batch_renorm"
    self_conditioning: bool = True
    decoder_norm: bool = True
    legasee_double_norm: bool = True
    use_rotary: bool = True
    rotary_base_freq: float = 10_000.0
    rotary_interpolation_factor: float = 1.0
    learned_rotary: bool = False
    fourier_pos_enc: bool = False
    default_norm: str = "layer_norm"
    rms_norm_style: str = "lcasr"  # "lcasr" (no apex: `scale`, eps on the RMS) or "apex"
    sandwich_norm: bool = False
    bias_in_ff: bool = False
    qkv_bias: bool = False
    transformer: bool = False
    attention_window: tuple[int, int] = (-1, -1)
    # How a fresh model is trained, not what a checkpoint computes (TRAINING_FIELDS): the
    # original's behaviour where set as in experiments/paper.py's FIDELITY, else this
    # project's (README, "Fidelity to the original").
    param_init: str = "lecun"  # "lecun" or "torch" (model/init.py)
    batch_renorm_padding: bool = False  # batch statistics also over padded frames
    batch_renorm_dtype: str = "float32"  # "bfloat16": statistics as under CUDA autocast
    # n: layers i with i % n == 0 update BatchRenorm twice per step, as the original's
    # checkpoint_every_n_layers (torch.utils.checkpoint reruns their forward); 0: never
    batch_renorm_rerun_every: int = 0

    @property
    def num_classes(self) -> int:
        return self.vocab_size + 1

    @property
    def conv_channels(self) -> int:
        c = self.subsampling_conv_channels
        return self.d_model if c == -1 else c

    @property
    def conv_inner(self) -> int:
        return int(self.d_model * self.conv_expansion_factor)

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def validate(self) -> ModelConfig:
        """Raise ValueError naming the first field of the wrong type or out of range."""
        for f in dataclasses.fields(self):
            check(f.name, getattr(self, f.name), _FIELD_RULES.get(f.name, _TYPE_RULES[f.type]))
        if self.subsampling != "dw_striding":
            raise ValueError(
                f"subsampling={self.subsampling!r} is not supported (only 'dw_striding')")
        if self.subsampling_factor < 2 or self.subsampling_factor & (self.subsampling_factor - 1):
            raise ValueError(
                f"subsampling_factor={self.subsampling_factor} must be a power of two >= 2")
        if self.subsampling_act not in ("silu", "relu", "gelu", "none"):
            raise ValueError(f"subsampling_act={self.subsampling_act!r} is not supported")
        if self.default_norm not in ("layer_norm", "rms_norm"):
            raise ValueError(f"default_norm={self.default_norm!r} is not supported")
        if self.rms_norm_style not in ("lcasr", "apex"):
            raise ValueError(f"rms_norm_style={self.rms_norm_style!r} must be 'lcasr' or 'apex'")
        if self.conv_norm not in ("batch_renorm", "layer_norm", "none"):
            raise ValueError(f"conv_norm={self.conv_norm!r} is not supported")
        if self.conv_kernel_size % 2 != 1:
            raise ValueError(f"conv_kernel_size={self.conv_kernel_size} must be odd")
        if self.use_rotary and self.head_dim % 2:
            raise ValueError(f"head_dim={self.head_dim} must be even for rotary positions")
        if self.fourier_pos_enc and self.d_model % 2:
            raise ValueError(f"d_model={self.d_model} must be even for Fourier positions")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["attention_window"] = list(self.attention_window)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"unknown model config key {unknown[0]!r}")
        d = dict(d)
        if isinstance(d.get("attention_window"), (list, tuple)):
            d["attention_window"] = tuple(d["attention_window"])
        return cls(**d).validate()


# The original class's own defaults for keys absent from config.model (these differ from
# the released templates: e.g. decoder_norm and use_rotary are False unless written).
ORIGINAL_DEFAULTS: dict[str, Any] = {
    "feat_in": 80, "subsampling": "dw_striding", "subsampling_factor": 8,
    "subsampling_conv_channels": 256, "subsampling_act": "silu", "subsampling_norm_out": False,
    "n_layers": 6, "d_model": 768, "n_heads": 6, "head_dim": 128, "conv_kernel_size": 9,
    "conv_expansion_factor": 1.0, "decoder_norm": False, "use_rotary": False,
    "rotary_base_freq": 10_000.0, "rotary_interpolation_factor": 1.0, "learned_rotary": False,
    "fourier_pos_enc": False, "self_conditioning": True, "default_norm": "layer_norm",
    "sandwich_norm": False, "bias_in_ff": False, "transformer": False,
    "legasee_double_norm": True, "conv_norm": "batch_renorm", "qkv_bias": False,
}


def _window_from_original(model_cfg: Mapping[str, Any]) -> tuple[int, int]:
    """(left, right) as the original reads them: a side key that is set wins (0 included),
    else `attention_window_size`, else -1 (unbounded)."""
    size = model_cfg.get("attention_window_size")
    size = -1 if size is None else size
    sides = []
    for side in ("left", "right"):
        value = model_cfg.get(f"attention_window_size_{side}")
        sides.append(size if value is None else value)
        check(f"attention_window_size_{side}", sides[-1], int_at_least(-1))
    return sides[0], sides[1]


def from_original(model_cfg: Mapping[str, Any], rms_norm_style: str = "lcasr") -> ModelConfig:
    """Build a ModelConfig from a released checkpoint's `config.model` mapping.

    Raises ValueError naming the first key it does not understand.
    """
    direct = {f.name for f in dataclasses.fields(ModelConfig)} - {
        "attention_window", "rms_norm_style", "vocab_size", *TRAINING_FIELDS}
    window_keys = {"attention_window_size", "attention_window_size_left",
                   "attention_window_size_right"}
    kwargs: dict[str, Any] = dict(ORIGINAL_DEFAULTS)
    for key, value in model_cfg.items():
        if key in direct:
            kwargs[key] = value
        elif key in IGNORED_KEYS or key in window_keys:
            continue
        elif key in OFF_ONLY_KEYS:
            if value:
                raise ValueError(f"unsupported model config option {key}={value!r}")
        else:
            raise ValueError(f"unknown model config key {key!r}")
    for name in ("rotary_base_freq", "rotary_interpolation_factor", "conv_expansion_factor"):
        if is_number(kwargs.get(name)):
            kwargs[name] = float(kwargs[name])
    kwargs["attention_window"] = _window_from_original(model_cfg)
    kwargs["rms_norm_style"] = rms_norm_style
    return ModelConfig(**kwargs).validate()
