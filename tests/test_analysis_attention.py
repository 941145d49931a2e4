"""Captured attention probabilities and attended distance against float64 numpy."""

from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np
import numpy_reference as ref
import pytest

import lcasr_jax
from lcasr_jax.analysis import attention
from lcasr_jax.checkpoints import convert

torch = pytest.importorskip("torch")
omegaconf = pytest.importorskip("omegaconf")
PROB_ATOL = 1e-4  # float32 forward through the layers vs float64


@pytest.fixture(scope="module", params=["rotary_ln", "nopos_ln"])
def fixture(request, parity_dir, tmp_path_factory):
    src = parity_dir / request.param / "checkpoint.pt"
    dest = tmp_path_factory.mktemp(request.param) / "model"
    convert.torch_to_flax(src, dest)
    model, variables = lcasr_jax.load_pretrained(dest)
    ckpt = torch.load(src, map_location="cpu", weights_only=False)
    state = {k: v.numpy() for k, v in ckpt["model"].items()}
    cfg = omegaconf.OmegaConf.to_container(ckpt["config"], resolve=True)["model"]
    return model, variables, state, cfg, np.load(parity_dir / request.param / "io.npz")


@pytest.mark.parametrize("window", [None, 5])
def test_probabilities_match_float64_softmax(fixture, window):
    model, variables, state, cfg, io = fixture
    if window is not None:
        model = model.clone(config=model.config.replace(attention_window=(window, window)))
        cfg = {**cfg, "attention_window_size": window}
    spec, lengths = io["spec"], io["lengths"].astype(np.int32)  # 1000 and 700 frames
    want = ref.forward(state, cfg, spec, lengths)
    got = attention.capture(model, variables, spec, lengths)
    valid = want["valid"]  # (batch, tokens)
    assert not valid.all()  # padding is exercised
    np.testing.assert_array_equal(np.asarray(got.lengths), want["length"])
    for i in range(model.config.n_layers):
        probs = np.asarray(attention.probabilities(got.q[i], got.k[i], got.lengths,
                                                   got.window, block_q=48))
        expect = want[f"layer{i}_attn_probs"]
        rows = valid[:, None, :, None]
        err = np.abs(np.where(rows, probs - expect, 0)).max()
        assert err < PROB_ATOL, f"layer {i}: max abs error {err:.2e}"
        sums = probs.sum(-1)
        np.testing.assert_allclose(sums[np.broadcast_to(valid[:, None], sums.shape)], 1,
                                   atol=1e-5)
        assert not probs[~np.broadcast_to(rows, probs.shape)].any()  # padded query rows
        keys = np.broadcast_to(valid[:, None, None, :], probs.shape)
        assert not probs[~keys].any()  # padded keys get nothing
        if window is not None:
            n = probs.shape[-1]
            far = np.abs(np.arange(n)[:, None] - np.arange(n)[None]) > window
            assert not probs[..., far].any()
            assert (expect[..., ~far] > 0)[np.broadcast_to(rows & keys, probs.shape)[..., ~far]
                                           ].all()


def test_scores_before_softmax_match_float64(fixture):
    """The original's saved weights (ReturnAttention's a_weight): q.k / sqrt(head_dim) of
    every layer and head, one pass over the whole input; padded pairs at -finfo.max."""
    model, variables, state, cfg, io = fixture
    spec, lengths = io["spec"], io["lengths"].astype(np.int32)
    want = ref.forward(state, cfg, spec, lengths)
    got = attention.capture(model, variables, spec, lengths)
    valid = want["valid"]
    pairs = valid[:, None, :, None] & valid[:, None, None, :]
    layers = list(attention.layer_weights(got, "scores"))
    assert len(layers) == model.config.n_layers
    for i, scores in enumerate(layers):
        expect = want[f"layer{i}_attn_scores"]
        assert scores.shape == expect.shape and scores.dtype == np.float32
        keep = np.broadcast_to(pairs, scores.shape)
        scale = np.abs(expect[keep]).max()
        err = np.abs(scores[keep] - expect[keep]).max()
        assert err < 1e-4 * max(scale, 1), f"layer {i}: max abs error {err:.2e}"
        assert (scores[~keep] == -np.finfo(np.float32).max).all()
        probs = next(p for j, p in enumerate(attention.layer_weights(got, "probs")) if j == i)
        rows = np.broadcast_to(valid[:, None, :, None], probs.shape)
        np.testing.assert_allclose(np.where(rows, probs, 0),
                                   np.where(rows, want[f"layer{i}_attn_probs"], 0), atol=1e-4)


def test_capture_off_leaves_the_forward_unchanged(fixture, monkeypatch):
    model, variables, _, _, io = fixture
    spec, lengths = io["spec"], io["lengths"].astype(np.int32)
    plain = model.apply(variables, spec, lengths)
    assert isinstance(plain, dict)  # no collection comes back when capture is off
    captured, state = model.apply(variables, spec, lengths, mutable=["attention"])
    np.testing.assert_array_equal(np.asarray(plain["final_posteriors"]),
                                  np.asarray(captured["final_posteriors"]))
    assert set(state["attention"]) == {f"layer_{i}" for i in range(model.config.n_layers)}
    # with capture off the sow calls add nothing to the traced computation
    traced = str(jax.make_jaxpr(lambda s: model.apply(variables, s, lengths))(spec))
    monkeypatch.setattr(nn.Module, "sow", lambda self, *a, **k: False)
    assert traced == str(jax.make_jaxpr(lambda s: model.apply(variables, s, lengths))(spec))


def _distance_reference(probs, lengths, edges):
    """far (batch, heads, E) and mass-weighted distance (batch, heads), float64."""
    n = probs.shape[-1]
    d = np.abs(np.arange(n)[:, None] - np.arange(n)[None])
    far = np.stack([(probs * (d > e)).sum((-1, -2)) for e in edges], -1)
    return far, (probs * d).sum((-1, -2))


@pytest.mark.parametrize("window", [(-1, -1), (3, 7)])
def test_distance_sums_match_full_matrix(window):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(2, 70, 3, 8)).astype(np.float32)
    k = rng.normal(size=(2, 70, 3, 8)).astype(np.float32)
    lengths = np.array([70, 41], np.int32)
    edges = np.array([0, 1, 2, 5, 9, 30, 69, 100], np.int32)
    full = np.asarray(attention.probabilities(q, k, lengths, window), np.float64)
    # the full matrix itself, against a float64 softmax
    s = np.einsum("bqhd,bkhd->bhqk", q.astype(np.float64), k) / np.sqrt(8)
    n = np.arange(70)
    allowed = (n[None, None, :] < lengths[:, None, None]) & (n[None, :, None] < lengths[:, None,
                                                                                        None])
    if window[0] >= 0:
        allowed &= (n[None, :] - n[:, None] >= -window[0]) & (n[None, :] - n[:, None] <= window[1])
    e = np.where(allowed[:, None], np.exp(s - s.max(-1, keepdims=True)), 0)
    want = e / np.maximum(e.sum(-1, keepdims=True), 1e-300)
    np.testing.assert_allclose(full, want, atol=1e-6)
    far, dist = attention.distance_sums(q, k, lengths, edges, window, block_q=16)
    want_far, want_dist = _distance_reference(want, lengths, edges)
    np.testing.assert_allclose(np.asarray(far), want_far, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(dist), want_dist, rtol=1e-5)
    if window[0] >= 0:
        assert not np.asarray(far)[..., edges >= 7].any()


def test_summary_shares_and_histogram():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(1, 50, 2, 4)).astype(np.float32)
    k = rng.normal(size=(1, 50, 2, 4)).astype(np.float32)
    lengths = np.array([50], np.int32)
    cap = attention.Captured([q], [k], lengths, (-1, -1))
    summary = attention.DistanceSummary.empty(1, 2, np.array([0, 4, 125, 375]), 0.08)
    summary.add(cap)
    full = np.asarray(attention.probabilities(q, k, lengths), np.float64)[0]
    d = np.abs(np.arange(50)[:, None] - np.arange(50)[None]) * 0.08
    np.testing.assert_allclose(summary.share_beyond(0.32)[0],
                               (full * (d > 0.33)).sum((1, 2)) / 50, atol=1e-6)
    with pytest.raises(ValueError, match="not a distance edge"):
        summary.share_beyond(0.5)
    assert not summary.share_beyond(10).any()  # 50 tokens are 4 s: nothing beyond 10 s
    hist = summary.histogram()
    np.testing.assert_allclose(hist.sum(-1), 1, atol=1e-6)
    np.testing.assert_allclose(hist[0, :, 0], np.trace(full, axis1=1, axis2=2) / 50, atol=1e-6)
    arrays = summary.arrays()
    assert arrays["beyond_10s"].shape == (1, 2) and arrays["edges_s"][2] == 10.0


def test_capture_with_fresh_init_variables():
    import jax.numpy as jnp

    from lcasr_jax.model import ModelConfig, SCConformerXL

    cfg = ModelConfig(n_layers=2, d_model=32, n_heads=2, head_dim=16,
                      subsampling_conv_channels=8)
    model = SCConformerXL(cfg)
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 80, 64)))
    assert "attention" not in variables  # init does not sow the 64-frame q/k
    cap = attention.capture(model, variables, np.ones((1, 80, 400), np.float32))
    assert cap.q[0].shape == (1, 50, 2, 16) and int(cap.lengths[0]) == 50
