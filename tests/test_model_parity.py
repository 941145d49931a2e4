"""Parity with the original PyTorch model on its fixtures (tests/fixtures/parity), through the
converter."""

from __future__ import annotations

import numpy as np
import pytest

import lcasr_jax
from lcasr_jax.checkpoints import convert

FIXTURES = ("rotary_ln", "nopos_ln")
HIDDEN_ATOL = 1e-4
LOGPROB_ATOL = 5e-4


@pytest.fixture(scope="module", params=FIXTURES)
def converted(request, parity_dir, tmp_path_factory):
    """(model, variables, fixture dir) loaded from a converted model dir."""
    src = parity_dir / request.param / "checkpoint.pt"
    dest = tmp_path_factory.mktemp(request.param) / "model"
    convert.torch_to_flax(src, dest)
    model, variables = lcasr_jax.load_pretrained(dest)
    return model, variables, parity_dir / request.param


def _stages(intermediates: dict) -> dict[str, np.ndarray]:
    """Flatten sown intermediates to the fixture's key names (layer0_ff1_out, ...)."""
    flat = {}
    for key, value in intermediates.items():
        if key.startswith("layer_"):
            i = key.split("_")[1]
            for sub, v in value.items():
                flat[f"layer{i}_{sub}"] = np.asarray(v[0])
        else:
            flat[key] = np.asarray(value[0])
    return flat


@pytest.mark.parametrize("io_name", ["io", "io_long"])
def test_outputs_and_every_stage_match(converted, io_name):
    model, variables, fixture = converted
    io = np.load(fixture / f"{io_name}.npz")
    out, state = model.apply(variables, io["spec"], io["lengths"].astype(np.int32),
                             mutable=["intermediates"])
    valid = io["valid_frame_mask"]
    np.testing.assert_array_equal(np.asarray(out["length"]), io["length"])

    stages = _stages(state["intermediates"])
    stored = [k for k in io.files if k in stages]
    assert "subsampling_out" in stored and "decoder_in" in stored
    if io_name == "io":
        sub_blocks = {"layer0_ff1_out", "layer0_attn_out", "layer0_conv_out", "layer0_ff2_out"}
        assert sub_blocks <= set(stored)
    for key in stored:
        err = np.abs(stages[key] - io[key])[valid].max()
        assert err < HIDDEN_ATOL, f"{key}: max abs error {err:.2e}"

    log_probs = np.asarray(out["final_posteriors"])
    vocab = io["vocab_index"]
    err = np.abs(log_probs[..., vocab] - io["final_posteriors"])[valid].max()
    assert err < LOGPROB_ATOL, f"log-probs: max abs error {err:.2e}"
    np.testing.assert_array_equal(log_probs.argmax(-1)[valid], io["final_posteriors_argmax"][valid])
    np.testing.assert_allclose(log_probs.max(-1)[valid], io["final_posteriors_max"][valid],
                               atol=LOGPROB_ATOL)
    np.testing.assert_allclose(log_probs[..., -1][valid], io["final_posteriors_blank"][valid],
                               atol=LOGPROB_ATOL)

    logits = np.asarray(model.apply(variables, io["spec"], io["lengths"].astype(np.int32),
                                    return_logits=True)["final_posteriors"])
    err = np.abs(logits[..., vocab] - io["logits"])[valid].max()
    assert err < LOGPROB_ATOL, f"logits: max abs error {err:.2e}"


def test_equal_lengths_shorter_than_input_are_masked(converted):
    """The original crashes (rotary) or attends to padding here; we mask. With zero padding,
    valid outputs must equal running on the truncated input."""
    model, variables, fixture = converted
    spec = np.load(fixture / "io.npz")["spec"][:1, :, :600]
    padded = np.concatenate([spec, np.zeros((1, 80, 400), np.float32)], axis=-1)
    padded = np.repeat(padded, 2, axis=0)
    lengths = np.array([600, 600], np.int32)
    out = model.apply(variables, padded, lengths)
    ref = model.apply(variables, spec, np.array([600], np.int32))
    n = int(ref["length"][0])
    assert out["length"].tolist() == [n, n]
    np.testing.assert_allclose(np.asarray(out["final_posteriors"])[:, :n],
                               np.repeat(np.asarray(ref["final_posteriors"]), 2, 0), atol=2e-4)


def test_bf16_compute_stays_close(converted):
    import jax.numpy as jnp

    model, variables, fixture = converted
    io = np.load(fixture / "io.npz")
    lengths = io["lengths"].astype(np.int32)
    ref = np.asarray(model.apply(variables, io["spec"], lengths)["final_posteriors"])
    bf16 = model.clone(dtype=jnp.bfloat16, position_dtype=jnp.bfloat16)
    out = np.asarray(bf16.apply(variables, io["spec"], lengths)["final_posteriors"])
    assert out.dtype == np.float32
    valid = io["valid_frame_mask"]
    err = np.abs(out - ref)[valid]
    assert err.mean() < 0.1 and err.max() < 1.0, (err.mean(), err.max())
    top2 = np.sort(ref, axis=-1)[..., -2:]
    clear = valid & (top2[..., 1] - top2[..., 0] > 0.3)  # random weights: small margins
    assert clear.sum() >= 10
    assert (out.argmax(-1) == ref.argmax(-1))[clear].mean() >= 0.95


def test_window_covering_everything_equals_full_attention(converted):
    model, variables, fixture = converted
    io = np.load(fixture / "io.npz")
    lengths = io["lengths"].astype(np.int32)
    full = np.asarray(model.apply(variables, io["spec"], lengths)["final_posteriors"])
    wide = model.clone(config=model.config.replace(attention_window=(200, 200)))
    np.testing.assert_allclose(
        np.asarray(wide.apply(variables, io["spec"], lengths)["final_posteriors"]), full,
        atol=1e-5)
    narrow = model.clone(config=model.config.replace(attention_window=(4, 4)))
    out = np.asarray(narrow.apply(variables, io["spec"], lengths)["final_posteriors"])
    assert np.isfinite(out).all() and np.abs(out - full).max() > 1e-3
