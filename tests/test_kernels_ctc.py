"""CTC loss vs float64 numpy references (alpha-beta and brute force) and optax."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lcasr_jax.kernels.ctc import IMPLS as IMPL_NAMES
from lcasr_jax.kernels.ctc import Tuning, ctc_loss, resolve_impl

jax.config.update("jax_enable_x64", False)


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def ref_ctc(logits, frames, labels, blank):
    """float64 loss and d loss / d logits for one sequence; (inf, 0) when infeasible."""
    lp = _log_softmax(logits[:frames].astype(np.float64))
    ext = [blank]
    for lab in labels:
        ext += [lab, blank]
    n = len(ext)
    alpha = np.full((frames, n), -np.inf)
    beta = np.full((frames, n), -np.inf)  # includes the emission at t
    if frames == 0:
        return (0.0 if len(labels) == 0 else np.inf), np.zeros_like(logits, np.float64)
    alpha[0, 0] = lp[0, ext[0]]
    if n > 1:
        alpha[0, 1] = lp[0, ext[1]]
    for t in range(1, frames):
        for s in range(n):
            terms = [alpha[t - 1, s]]
            if s >= 1:
                terms.append(alpha[t - 1, s - 1])
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                terms.append(alpha[t - 1, s - 2])
            alpha[t, s] = np.logaddexp.reduce(terms) + lp[t, ext[s]]
    beta[frames - 1, n - 1] = lp[frames - 1, ext[n - 1]]
    if n > 1:
        beta[frames - 1, n - 2] = lp[frames - 1, ext[n - 2]]
    for t in range(frames - 2, -1, -1):
        for s in range(n):
            terms = [beta[t + 1, s]]
            if s + 1 < n:
                terms.append(beta[t + 1, s + 1])
            if s + 2 < n and ext[s + 2] != blank and ext[s + 2] != ext[s]:
                terms.append(beta[t + 1, s + 2])
            beta[t, s] = np.logaddexp.reduce(terms) + lp[t, ext[s]]
    ll = np.logaddexp.reduce(alpha[frames - 1, n - 2:] if n > 1 else alpha[frames - 1])
    grad = np.zeros_like(logits, np.float64)
    if not np.isfinite(ll):
        return np.inf, grad
    occ = np.zeros_like(lp)
    for s in range(n):
        occ[:, ext[s]] += np.exp(alpha[:, s] + beta[:, s] - lp[:, ext[s]] - ll)
    grad[:frames] = np.exp(lp) - occ
    return -ll, grad


def brute_force_nll(logits, labels, blank):
    """Sum over every frame labelling that collapses to `labels` (tiny cases only)."""
    lp = _log_softmax(logits.astype(np.float64))
    frames, classes = lp.shape
    total = -np.inf
    for path in itertools.product(range(classes), repeat=frames):
        collapsed = [c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1])]
        if collapsed == list(labels):
            total = np.logaddexp(total, sum(lp[t, c] for t, c in enumerate(path)))
    return -total


def _case(rng, batch, frames, classes, max_labels, blank, repeats=False):
    logits = rng.normal(size=(batch, frames, classes)).astype(np.float32) * 2
    frame_len = rng.integers(1, frames + 1, size=batch).astype(np.int32)
    frame_len[0] = frames
    label_len = rng.integers(0, max_labels + 1, size=batch).astype(np.int32)
    non_blank = [c for c in range(classes) if c != blank]
    labels = rng.choice(non_blank, size=(batch, max_labels)).astype(np.int32)
    if repeats:
        labels[:, 1::2] = labels[:, ::2][:, : labels[:, 1::2].shape[1]]
    for b in range(batch):
        labels[b, label_len[b]:] = rng.integers(0, classes)  # padding is arbitrary
    return logits, frame_len, labels, label_len


def _check(impl, logits, frame_len, labels, label_len, blank, tuning=None):
    args = (jnp.asarray(logits), jnp.asarray(frame_len), jnp.asarray(labels),
            jnp.asarray(label_len))
    loss_fn = lambda x: ctc_loss(x, *args[1:], blank_id=blank, implementation=impl,
                                 interpret=True, tuning=tuning)

    def loss_and_grad(x):  # per-item losses and d(sum of losses)/d logits, one compile
        loss, vjp = jax.vjp(loss_fn, x)
        return loss, vjp(jnp.ones_like(loss))[0]

    loss, grad = map(np.asarray, jax.jit(loss_and_grad)(args[0]))
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
    for b in range(logits.shape[0]):
        ref_loss, ref_grad = ref_ctc(logits[b], frame_len[b], labels[b, : label_len[b]], blank)
        if np.isinf(ref_loss):
            ref_loss = 0.0
            ref_grad = np.zeros_like(ref_grad)
        np.testing.assert_allclose(loss[b], ref_loss, rtol=2e-5, atol=2e-4)
        np.testing.assert_allclose(grad[b], ref_grad, rtol=1e-4, atol=2e-5)
    return loss


IMPLS = ["xla", "pallas_gpu"]  # Pallas in interpret mode (CPU)


def test_auto_and_bad_implementation():
    rng = np.random.default_rng(7)
    logits, frame_len, labels, label_len = _case(rng, 2, 12, 5, 3, 4)
    args = [jnp.asarray(x) for x in (logits, frame_len, labels, label_len)]
    auto = ctc_loss(*args, blank_id=4)  # CPU: the XLA backend
    np.testing.assert_array_equal(np.asarray(auto),
                                  np.asarray(ctc_loss(*args, blank_id=4, implementation="xla")))
    pallas = ctc_loss(*args, blank_id=4, implementation="pallas_gpu", interpret=True)
    np.testing.assert_allclose(np.asarray(auto), np.asarray(pallas), rtol=1e-5)
    with pytest.raises(ValueError, match="unknown implementation"):
        ctc_loss(*args, blank_id=4, implementation="nope")
    with pytest.raises(ValueError, match="unknown implementation"):  # not a backend name
        ctc_loss(*args, blank_id=4, implementation="pallas_interpret")


def test_resolve_impl_by_platform_and_size():
    assert resolve_impl("auto", "cpu", frames=100, classes=10) == "xla"
    assert resolve_impl("auto", "gpu", frames=100, classes=10) == "pallas_gpu"
    assert resolve_impl("auto", "gpu", frames=2**20, classes=2**12) == "xla"  # int32 offsets
    assert resolve_impl("optax", "gpu") == "optax"
    assert set(IMPL_NAMES) == {"auto", "xla", "pallas_gpu", "optax"}


def test_optax_backend_matches_the_reference_and_zeroes_infeasible_rows():
    """optax.ctc_loss through the same table: same padding and zero_infinity rules."""
    rng = np.random.default_rng(3)
    logits, frame_len, labels, label_len = _case(rng, 3, 20, 6, 5, 5)
    frame_len[2], label_len[2] = 3, 5  # 5 labels in 3 frames: infeasible
    loss = _check("optax", logits, frame_len, labels, label_len, 5)
    assert loss[2] == 0.0


@pytest.mark.parametrize("impl", IMPLS)
def test_padding_values_do_not_matter(impl):
    """-1 or out-of-vocabulary ids beyond label_lengths change nothing (and read no memory
    out of bounds in the kernel)."""
    rng = np.random.default_rng(8)
    logits, frame_len, labels, label_len = _case(rng, 2, 15, 5, 4, 0)
    label_len[:] = [2, 3]
    loss_fn = jax.jit(lambda y: ctc_loss(jnp.asarray(logits), jnp.asarray(frame_len), y,
                                         jnp.asarray(label_len), blank_id=0,
                                         implementation=impl, interpret=True))
    # one compile, three inputs
    losses = []
    for pad in (-1, 99, 3):
        padded = labels.copy()
        padded[0, 2:] = pad
        padded[1, 3:] = pad
        losses.append(np.asarray(loss_fn(jnp.asarray(padded))))
    np.testing.assert_array_equal(losses[0], losses[1])
    np.testing.assert_array_equal(losses[0], losses[2])


def test_reference_matches_brute_force():
    rng = np.random.default_rng(0)
    for labels in ([], [1], [1, 1], [2, 1], [1, 2, 1]):
        logits = rng.normal(size=(5, 3)).astype(np.float64)
        ref, _ = ref_ctc(logits, 5, labels, blank=0)
        np.testing.assert_allclose(ref, brute_force_nll(logits, labels, blank=0), rtol=1e-10)


def test_reference_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 4))
    labels = [1, 1, 3]
    _, grad = ref_ctc(logits, 6, labels, blank=0)
    eps = 1e-6
    for t, c in [(0, 0), (2, 1), (5, 3), (3, 2)]:
        up, down = logits.copy(), logits.copy()
        up[t, c] += eps
        down[t, c] -= eps
        fd = (ref_ctc(up, 6, labels, 0)[0] - ref_ctc(down, 6, labels, 0)[0]) / (2 * eps)
        np.testing.assert_allclose(grad[t, c], fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("impl", IMPLS)
def test_random_cases_match_reference(impl):
    rng = np.random.default_rng(2)
    blank = 6
    logits, frame_len, labels, label_len = _case(rng, 4, 23, 7, 6, blank)
    _check(impl, logits, frame_len, labels, label_len, blank)


@pytest.mark.parametrize("impl", IMPLS)
def test_edge_cases(impl):
    """Empty targets, repeated labels, infeasible, zero frames, exactly-tight alignments."""
    rng = np.random.default_rng(3)
    blank = 0
    logits = rng.normal(size=(6, 9, 5)).astype(np.float32) * 3
    frame_len = np.array([9, 4, 3, 9, 0, 5], np.int32)
    labels = np.array([[0, 0, 0, 0, 0], [2, 2, 2, 0, 0], [1, 2, 2, 3, 4], [3, 3, 3, 3, 3],
                       [1, 0, 0, 0, 0], [4, 4, 1, 0, 0]], np.int32)
    label_len = np.array([0, 3, 3, 5, 1, 3], np.int32)
    # item 1: 3 repeats need 5 frames > 4 -> infeasible; item 2: needs 4 > 3 -> infeasible;
    # item 3: 5 repeats need 9 frames = 9 -> one alignment; item 4: zero frames.
    loss = _check(impl, logits, frame_len, labels, label_len, blank)
    assert loss[1] == 0.0 and loss[2] == 0.0 and loss[4] == 0.0
    assert loss[3] > 0


@pytest.mark.parametrize("impl", IMPLS)
def test_matches_optax(impl):
    rng = np.random.default_rng(4)
    blank = 9
    logits, frame_len, labels, label_len = _case(rng, 3, 40, 10, 8, blank, repeats=True)
    label_len = np.minimum(label_len, frame_len // 2)  # keep feasible: optax has no zero_infinity
    ours = jax.jit(lambda *a: ctc_loss(*a, blank_id=blank, implementation=impl, interpret=True))(
        jnp.asarray(logits), jnp.asarray(frame_len), jnp.asarray(labels), jnp.asarray(label_len))
    pad = lambda n, size: (np.arange(size)[None] >= n[:, None]).astype(np.float32)
    theirs = optax.ctc_loss(jnp.asarray(logits), pad(frame_len, 40), jnp.asarray(labels),
                            pad(label_len, 8), blank_id=blank)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-5, atol=1e-4)


# Several lane chunks and frame blocks of the Pallas wavefront (and a ragged last block),
# even for short test inputs.
SMALL_TILES = Tuning(chunk=4, block=16)


@pytest.mark.parametrize("impl", IMPLS)
def test_many_segments(impl):
    rng = np.random.default_rng(6)
    logits, frame_len, labels, label_len = _case(rng, 3, 37, 6, 7, 5, repeats=True)
    _check(impl, logits, frame_len, labels, label_len, 5, SMALL_TILES)


@pytest.mark.parametrize("impl", IMPLS)
def test_halves_meet_at_every_kind_of_split(impl):
    """Each sequence runs as a first half and a reversed second half that meet in the middle
    (Pallas: at a block edge, kernels/ctc/halves.py; XLA: after ceil(frames / 2)): lengths around
    the block size (16 here) put the meeting after one frame, at the end (an empty second
    half: its virtual end state), mid-block, and where the second half is a ragged block;
    labels up to the row's limit and none at all."""
    rng = np.random.default_rng(11)
    frame_len = np.array([1, 15, 16, 17, 31, 33, 48, 40], np.int32)
    logits = rng.normal(size=(8, 48, 6)).astype(np.float32) * 2
    label_len = np.minimum(np.array([0, 7, 8, 3, 9, 1, 9, 0], np.int32), frame_len // 2)
    labels = rng.integers(1, 6, size=(8, 9)).astype(np.int32)
    labels[:, 1::3] = labels[:, 0::3][:, :3]  # repeats need a blank between them
    _check(impl, logits, frame_len, labels, label_len, 0, SMALL_TILES)


@pytest.mark.parametrize("impl", IMPLS)
def test_bfloat16_logits_are_read_exactly(impl):
    """bf16 logits (the model's output under bf16 compute) give the loss of their float32
    values and a gradient in bf16 equal to the float32 one rounded."""
    rng = np.random.default_rng(10)
    logits, frame_len, labels, label_len = _case(rng, 2, 21, 6, 5, 0)
    x16 = jnp.asarray(logits, jnp.bfloat16)
    args = (jnp.asarray(frame_len), jnp.asarray(labels), jnp.asarray(label_len))
    loss_fn = lambda x: ctc_loss(x, *args, blank_id=0, implementation=impl, interpret=True).sum()
    loss16, grad16 = jax.value_and_grad(loss_fn)(x16)
    loss32, grad32 = jax.value_and_grad(loss_fn)(x16.astype(jnp.float32))
    assert grad16.dtype == jnp.bfloat16
    np.testing.assert_allclose(float(loss16), float(loss32), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(grad16, np.float32), np.asarray(grad32), rtol=1e-2,
                               atol=1e-3)
    np.testing.assert_array_equal(np.asarray(grad16),
                                  np.asarray(grad32.astype(jnp.bfloat16)))


@pytest.mark.parametrize("impl", IMPLS)
def test_long_sequence_is_finite_and_matches_reference(impl):
    """Long enough that a probability-space recursion would underflow; for Pallas, 8 lane
    chunks whose offsets drift far apart, so values cross chunks through the rebasing."""
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(1, 700, 12)).astype(np.float32) * 4
    labels = rng.integers(1, 12, size=(1, 120)).astype(np.int32)
    lens = np.array([700], np.int32), np.array([120], np.int32)
    loss_fn = lambda x: ctc_loss(x, lens[0], jnp.asarray(labels), lens[1], blank_id=0,
                                 implementation=impl, interpret=True,
                                 tuning=Tuning(chunk=16, block=64))
    ours, grad = jax.jit(jax.value_and_grad(lambda x: loss_fn(x).sum()))(jnp.asarray(logits))
    theirs = optax.ctc_loss(jnp.asarray(logits), jnp.zeros((1, 700)), jnp.asarray(labels),
                            jnp.zeros((1, 120)), blank_id=0)
    assert np.isfinite(ours) and ours > 1000
    np.testing.assert_allclose(float(ours), float(theirs[0]), rtol=2e-5)
    ref_loss, ref_grad = ref_ctc(logits[0], 700, labels[0], blank=0)
    np.testing.assert_allclose(float(ours), ref_loss, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(grad[0]), ref_grad, rtol=1e-3, atol=1e-4)


def test_tuning_is_an_argument_that_reaches_the_tiles():
    """Tile sizes and loop settings come from the `Tuning` passed in, clipped to the
    problem; a bad value is refused when the settings are made."""
    from lcasr_jax.kernels.ctc import pallas_gpu

    g = pallas_gpu._geometry(jnp.zeros((1, 37, 6)), 7, 5, True, SMALL_TILES)
    assert (g.chunk, g.n_chunks, g.block, g.tuning) == (4, 2, 16, SMALL_TILES)
    g = pallas_gpu._geometry(jnp.zeros((1, 37, 6)), 7, 5, True, Tuning())
    assert (g.chunk, g.block) == (8, 32)  # 128 lanes clipped to 8 labels' power of 2
    with pytest.raises(ValueError, match="power of 2"):
        Tuning(chunk=12)
    with pytest.raises(ValueError, match="occ_mode"):
        Tuning(occ_mode="deferred")
