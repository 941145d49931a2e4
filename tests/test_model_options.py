"""Every released-checkpoint option, end to end through the converter, against float64 numpy.

For each option combination: random Flax variables with non-trivial values -> released
state_dict (`variables_to_state_dict`) -> released .pt (`save_released`, config.model in the
original's key spellings) -> `load_pretrained` -> log-probs, compared on valid frames with
tests/numpy_reference.py run on the state_dict read back from the .pt file.
"""

from __future__ import annotations

import zlib

import flax.linen as nn
import jax
import numpy as np
import numpy_reference as ref
import pytest

import lcasr_jax
from lcasr_jax.checkpoints import convert, mapping, torch_format
from lcasr_jax.model import ModelConfig, SCConformerXL
from lcasr_jax.model.norms import RMSNorm

torch = pytest.importorskip("torch")
omegaconf = pytest.importorskip("omegaconf")

SUBSAMPLING_ATOL = 2e-5  # one linear stage: float32 noise is ~1e-7
HIDDEN_ATOL = 2e-4
LOGPROB_ATOL = 5e-4
ARGMAX_MARGIN = 1e-3

# A released config.model (small), with the leftover keys the templates carry.
BASE = {
    "feat_in": 80, "n_layers": 2, "d_model": 32, "n_heads": 2, "head_dim": 16,
    "dropout_ff": 0.0, "dropout_attn": 0.0, "dropout_conv": 0.0,
    "subsampling_factor": 8, "subsampling": "dw_striding", "subsampling_act": "silu",
    "subsampling_conv_channels": 16, "self_condition_subsampling": False,
    "subsampling_norm_out": False, "conv_kernel_size": 9, "qk_rms_norm": False,
    "shift_kvs": False, "self_conditioning": True, "gated_sc": False, "decoder_norm": True,
    "use_rotary": True, "rotary_base_freq": 1500000, "encoder_mode": "conformer",
    "default_norm": "layer_norm", "sandwich_norm": False, "bias_in_ff": False,
    "checkpoint_every_n_layers": 0,
}

# (name, changes to BASE (None value = key absent), rms style of the key names, frames T)
COMBOS = [
    ("released_rotary_ln", {}, "lcasr", 256),
    ("sine_fourier", {"use_rotary": False, "fourier_pos_enc": True, "d_model": 48,
                      "head_dim": 24}, "lcasr", 256),
    ("nopos_factor4_relu_c-1", {"use_rotary": False, "subsampling_factor": 4,
                                "subsampling_act": "relu", "subsampling_conv_channels": -1},
     "lcasr", 128),
    ("rms_lcasr_sandwich_bias_ff", {"default_norm": "rms_norm", "sandwich_norm": True,
                                    "bias_in_ff": True, "rotary_base_freq": 10000,
                                    "rotary_interpolation_factor": 4.0},  # the buffer wins
     "lcasr", 256),
    ("rms_apex_qkv_bias_learned_rotary", {"default_norm": "rms_norm", "qkv_bias": True,
                                          "learned_rotary": True, "n_heads": 3},
     "apex", 256),
    ("transformer_no_decoder_norm_window_16_4", {"transformer": True, "decoder_norm": False,
                                                 "d_model": 64, "head_dim": 32,
                                                 "attention_window_size": 8,
                                                 "attention_window_size_left": 16,
                                                 "attention_window_size_right": 4},
     "lcasr", 256),
    ("conv_k5_exp2_norm_none_single_norm", {"conv_kernel_size": 5, "conv_expansion_factor": 2,
                                            "conv_norm": "none", "legasee_double_norm": False,
                                            "expansion_factor": 2},  # ignored: FF is 4 d
     "lcasr", 256),
    ("subsampling_norm_out_act_none_rms", {"subsampling_norm_out": True,
                                           "subsampling_act": "none",
                                           "default_norm": "rms_norm"}, "lcasr", 256),
    ("window_8", {"attention_window_size": 8, "flash_attn": False}, "lcasr", 256),
    ("conv_norm_layer_norm_rms_apex", {"conv_norm": "layer_norm", "conv_expansion_factor": 1.5,
                                       "default_norm": "rms_norm"}, "apex", 256),
    # Cases that once isolated a bug each (fixed).
    ("no_self_conditioning", {"self_conditioning": False}, "lcasr", 256),
    ("one_layer", {"n_layers": 1}, "lcasr", 256),
    ("subsampling_gelu", {"subsampling_act": "gelu"}, "lcasr", 256),
    ("window_left12_right0", {"attention_window_size_left": 12,
                              "attention_window_size_right": 0}, "lcasr", 256),
    ("old_config_no_rotary_no_decoder_norm_keys", {"use_rotary": None, "decoder_norm": None},
     "lcasr", 256),
]

KNOWN_BUGS: dict[str, str] = {}  # case name -> reason, for strict xfail


def _model_config(changes: dict) -> dict:
    cfg = {**BASE, **changes}
    return {k: v for k, v in cfg.items() if v is not None}


def _jax_config(model_cfg: dict, rms_style: str) -> ModelConfig:
    """Our own reading of an original config.model (original class defaults)."""
    c = {**ref.ORIGINAL_DEFAULTS, **model_cfg}
    names = ("feat_in", "n_layers", "d_model", "n_heads", "head_dim", "subsampling_factor",
             "subsampling_act", "subsampling_conv_channels", "subsampling_norm_out",
             "conv_kernel_size", "conv_norm", "self_conditioning", "decoder_norm",
             "legasee_double_norm", "use_rotary", "fourier_pos_enc", "default_norm",
             "sandwich_norm", "bias_in_ff", "qkv_bias", "transformer")
    return ModelConfig(
        **{n: c[n] for n in names}, conv_expansion_factor=float(c["conv_expansion_factor"]),
        rotary_base_freq=float(c.get("rotary_base_freq", 10000)),
        learned_rotary=bool(c.get("learned_rotary", False)), rms_norm_style=rms_style,
        attention_window=ref.window_from_config(c))


def _random_variables(cfg: ModelConfig, spec: np.ndarray, seed: int) -> dict:
    """Variables with the structure of `SCConformerXL(cfg).init` (traced abstractly, which is
    much cheaper than running init on CPU) and random non-trivial values: kernels ~
    N(0, 1/fan_in), norm scales != 1, biases != 0, running stats away from (0, 1), rotary
    buffers away from their config values."""
    shapes = nn.unbox(jax.eval_shape(SCConformerXL(cfg).init, jax.random.PRNGKey(0), spec))
    rng = np.random.default_rng(seed)

    def value(path, leaf):
        names = [p.key for p in path]
        name, shape = names[-1], leaf.shape
        if name == "kernel":
            fan_in = shape[0] if len(shape) == 2 or "qkv" in names else np.prod(shape[:-1])
            return rng.standard_normal(shape) / np.sqrt(fan_in)
        if name == "scale":
            return 1.0 + 0.2 * rng.standard_normal(shape)
        if name in ("bias", "mean"):
            return 0.1 * rng.standard_normal(shape)
        if name == "std":
            return rng.uniform(0.5, 1.5, shape)
        if name == "steps":
            return np.full(shape, 4242.0)
        if name == "w_r":
            return rng.standard_normal(shape)
        if name == "inv_freq":
            base = cfg.rotary_base_freq ** -(np.arange(0, cfg.head_dim, 2) / cfg.head_dim)
            return base * rng.uniform(0.7, 1.3, shape)
        if name == "interpolation_factor":
            return np.full(shape, 1.37)
        raise AssertionError(f"no random value rule for variable {names}")

    out = jax.tree_util.tree_map_with_path(value, shapes)
    return jax.tree.map(lambda a: np.asarray(a, np.float32), out)


def _read_back(path) -> tuple[dict, dict]:
    """state_dict and config.model as the original would read them (plain torch.load)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    state = {k: v.numpy() for k, v in ckpt["model"].items()}
    return state, omegaconf.OmegaConf.to_container(ckpt["config"], resolve=True)["model"]


def _case(name, changes, rms_style, frames):
    marks = ()
    if name in KNOWN_BUGS:
        marks = pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[name])
    return pytest.param(name, changes, rms_style, frames, id=name, marks=marks)


@pytest.mark.parametrize("name,changes,rms_style,frames", [_case(*c) for c in COMBOS])
def test_option_combination_matches_numpy_reference(name, changes, rms_style, frames,
                                                    tmp_path):
    model_cfg = _model_config(changes)
    cfg = _jax_config(model_cfg, rms_style)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    spec = rng.standard_normal((2, cfg.feat_in, frames)).astype(np.float32)
    lengths = np.array([frames, frames - 70], np.int32)  # padding is non-zero on purpose

    variables = _random_variables(cfg, spec[:, :, :64], seed=1)
    state_dict = mapping.variables_to_state_dict(variables, cfg)
    path = tmp_path / "step_1.pt"
    torch_format.save_released(path, state_dict, {"model": model_cfg, "data": {"path": "x"}})

    model, loaded = lcasr_jax.load_pretrained(path)
    out, state = jax.jit(lambda v, s, n: model.apply(v, s, n, mutable=["intermediates"]))(
        loaded, spec, lengths)
    want = ref.forward(*_read_back(path), spec, lengths)

    valid = want["valid"]
    np.testing.assert_array_equal(np.asarray(out["length"]), want["length"])
    inter = state["intermediates"]
    for key, atol in (("subsampling_out", SUBSAMPLING_ATOL), ("layer0_out", HIDDEN_ATOL),
                      (f"layer{cfg.n_layers - 1}_out", HIDDEN_ATOL), ("decoder_in", HIDDEN_ATOL)):
        err = np.abs(np.asarray(inter[key][0]) - want[key])[valid].max()
        assert err < atol, f"{key}: max abs error {err:.2e}"
    sc_logits = out.get("intermediate_logits", [])
    assert len(sc_logits) == (cfg.n_layers - 1 if cfg.self_conditioning else 0)
    for i, logits in enumerate(sc_logits):
        err = np.abs(np.asarray(logits) - want[f"layer{i}_sc_logits"])[valid].max()
        assert err < LOGPROB_ATOL, f"self-conditioning logits {i}: max abs error {err:.2e}"
    log_probs = np.asarray(out["final_posteriors"], np.float64)
    err = np.abs(log_probs - want["log_probs"])[valid].max()
    assert err < LOGPROB_ATOL, f"log-probs: max abs error {err:.2e}"
    top2 = np.sort(want["log_probs"], -1)[..., -2:]
    clear = valid & (top2[..., 1] - top2[..., 0] > ARGMAX_MARGIN)
    assert clear.sum() > valid.sum() // 2
    np.testing.assert_array_equal(log_probs.argmax(-1)[clear], want["log_probs"].argmax(-1)[clear])


def test_subsampling_norm_out_key_order_matches_original():
    """Hand-checked against the original's state_dict() with subsampling_norm_out: true."""
    cfg = _jax_config(_model_config({"subsampling_norm_out": True}), "lcasr")
    keys = [r.torch_key for r in mapping.rules(cfg) if r.torch_key.startswith("subsampling.")]
    assert keys[:5] == ["subsampling.norm_out.weight", "subsampling.norm_out.bias",
                        "subsampling.out.weight", "subsampling.out.bias",
                        "subsampling.conv.0.weight"]


@pytest.mark.parametrize("style,key", [("lcasr", "scale"), ("apex", "weight")])
def test_rms_norm_epsilon_convention_on_tiny_inputs(style, key):
    """Where the epsilon goes (on the RMS for lcasr, inside the sqrt for apex) only shows on
    inputs whose RMS is near it; rows of RMS 1e-9, 1e-6 and 1."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 16)) * np.array([[1e-9], [1e-6], [1.0]])).astype(np.float32)
    scale = (1.0 + 0.2 * rng.standard_normal(16)).astype(np.float32)
    got = np.asarray(RMSNorm(style=style).apply({"params": {"scale": scale}}, x))
    want = ref.apply_norm({f"n.{key}": scale}, "n", "rms_norm", x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["rms_apex_qkv_bias_learned_rotary",
                                  "transformer_no_decoder_norm_window_16_4", "sine_fourier"])
def test_option_round_trip_through_model_dir_and_export(name, tmp_path):
    """.pt -> converted dir -> .pt: same ModelConfig and variables as loading the .pt, and
    the exported file holds the same state_dict (keys, order, dtypes, values) and config."""
    _, changes, rms_style, _ = next(c for c in COMBOS if c[0] == name)
    model_cfg = _model_config(changes)
    cfg = _jax_config(model_cfg, rms_style)
    variables = _random_variables(cfg, np.zeros((1, cfg.feat_in, 64), np.float32), seed=2)
    src, model_dir, back = tmp_path / "src.pt", tmp_path / "model", tmp_path / "back.pt"
    torch_format.save_released(src, mapping.variables_to_state_dict(variables, cfg),
                               {"model": model_cfg})
    convert.torch_to_flax(src, model_dir)
    model_pt, vars_pt = lcasr_jax.load_pretrained(src)
    model_dir_, vars_dir = lcasr_jax.load_pretrained(model_dir)
    assert model_dir_.config == model_pt.config
    jax.tree.map(np.testing.assert_array_equal, vars_dir, vars_pt)
    convert.flax_to_torch(model_dir, back)
    (sd_src, cfg_src), (sd_back, cfg_back) = _read_back(src), _read_back(back)
    assert list(sd_back) == list(sd_src) and cfg_back == cfg_src
    for key, value in sd_src.items():
        assert sd_back[key].dtype == value.dtype, key
        np.testing.assert_array_equal(sd_back[key], value, err_msg=key)
