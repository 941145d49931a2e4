"""Fresh weights with param_init='torch' have the spread and centre of the original's fresh
model, tensor by tensor; this project's default ('lecun') does not.

The reference is tests/fixtures/original_replay/init_stats.json: the per-tensor mean and std
of the original's SCConformerXL built as its exp/train.py builds it (torch.manual_seed(12345))
for the paper template of the 6L-256D model (that folder's README says how it was made).
"""

import json
from pathlib import Path

import flax.linen as nn
import jax
import numpy as np
import pytest

from lcasr_jax.checkpoints.mapping import variables_to_state_dict
from lcasr_jax.model import SCConformerXL, from_original
from lcasr_jax.train.state import init_variables

STATS = Path(__file__).resolve().parent / "fixtures" / "original_replay" / "init_stats.json"
MODEL = "6L-256D"  # exp_set_rot_encodings_6l_256.yaml


def _original() -> dict:
    """{"model": the template's config.model, "tensors": {key: shape, mean, std}} of the
    float tensors (the counters num_batches_tracked are integers)."""
    doc = json.loads(STATS.read_text())[MODEL]
    tensors = {k: v for k, v in doc["tensors"].items() if not k.endswith("num_batches_tracked")}
    return {"model": doc["model"], "tensors": tensors}


def _fresh_state_dict(param_init: str, seed: int = 0) -> tuple[dict, dict]:
    """(the original's statistics, our fresh model's state_dict as float64 numpy)."""
    doc = _original()
    cfg = from_original(doc["model"]).replace(param_init=param_init)
    variables = jax.device_get(
        jax.tree.map(np.asarray, init_variables(SCConformerXL(cfg), jax.random.key(seed))))
    state = variables_to_state_dict(nn.unbox(variables), cfg)
    return doc["tensors"], {k: np.asarray(v, np.float64) for k, v in state.items()
                            if np.issubdtype(np.asarray(v).dtype, np.floating)}


def differences(reference: dict, state: dict) -> list[str]:
    """The tensors whose spread (std) is more than 20 % off the original's, or whose centre
    (mean) is further from it than 20 % of its spread plus five standard errors of the
    difference of two sample means (a constant tensor's mean must match to 1e-6)."""
    assert set(state) == set(reference), set(state) ^ set(reference)
    bad = []
    for key, ref in reference.items():
        x = state[key]
        assert list(x.shape) == ref["shape"], key
        mean, std = float(x.mean()), float(x.std())
        if ref["std"] == 0:
            ok = std == 0 and abs(mean - ref["mean"]) <= 1e-6
        else:
            noise = 5 * ref["std"] * np.sqrt(2 / x.size)
            ok = (abs(std / ref["std"] - 1) <= 0.2
                  and abs(mean - ref["mean"]) <= 0.2 * ref["std"] + noise)
        if not ok:
            bad.append(f"{key}: mean {mean:.4g} std {std:.4g}, original's "
                       f"{ref['mean']:.4g} {ref['std']:.4g}")
    return bad


@pytest.fixture(scope="module")
def fresh():
    return {init: _fresh_state_dict(init) for init in ("torch", "lecun")}


def test_torch_init_matches_the_originals_fresh_model_per_tensor(fresh):
    reference, state = fresh["torch"]
    assert len(reference) == 175  # 173 weights + the rotary buffers
    assert differences(reference, state) == []


def test_lecun_init_differs_from_the_original(fresh):
    reference, state = fresh["lecun"]
    bad = differences(reference, state)
    # every linear/conv weight (wider spread) and bias (zero), none of the norms and buffers
    weights = [k for k, v in reference.items() if v["std"] > 0 and k.endswith(("weight",
                                                                                 "bias"))]
    assert len(weights) == 87 and sorted(b.split(":")[0] for b in bad) == sorted(weights)


def test_torch_bounds_follow_torchs_fan_in():
    """Weights and biases lie in ±1/sqrt(fan_in) with torch's fan_in: input features x
    taps / groups (a depthwise conv's is its taps), and fill most of that range."""
    reference, state = _fresh_state_dict("torch", seed=1)
    cfg = _original()["model"]
    d, c = cfg["d_model"], cfg["subsampling_conv_channels"]
    fan_in = {"decoder.ff": d, "decoder.reprojection": 4096, "subsampling.out": c * 10,
              "subsampling.conv.0": 9, "subsampling.conv.2": 9, "subsampling.conv.3": c,
              "layers.0.conv.fn.pointwise_conv1": d, "layers.0.conv.fn.depthwise_conv": 9,
              "layers.0.conv.fn.pointwise_conv2": d, "layers.0.ff1.fn.fn.fc1": d,
              "layers.0.ff1.fn.fn.fc2": 4 * d, "layers.0.attend.fn.qkv_proj": d,
              "layers.0.attend.fn.out_proj": d}
    for prefix, n in fan_in.items():
        for key in (f"{prefix}.weight", f"{prefix}.bias"):
            if key in state:
                bound = np.abs(state[key]).max()
                assert 0.9 / np.sqrt(n) < bound <= 1 / np.sqrt(n), (key, bound, n)
