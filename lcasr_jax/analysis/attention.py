"""Attention scores, probabilities and attended distance, captured only when asked.

The model sows each layer's q and k (after rotary) into the 'attention' collection when
`apply` is given `mutable=['attention']` (`capture`); otherwise nothing changes and the
fused kernels run as usual. From q and k the probabilities are recomputed here in float32,
block by block over queries (never a whole (tokens, tokens) matrix unless asked for one),
with the masks of the attention backends (key padding, the model's `attention_window`;
padded query rows are zero).

The original's `get_attention_weights` runs each whole recording in one pass and saves, per
layer, the pre-softmax scaled scores q.k / sqrt(head_dim) of every head (its
ReturnAttention output, disallowed pairs at -finfo.max) in bfloat16: `scores` gives those,
`probabilities` their softmax, `layer_weights` either for every layer of a capture.

For long windows only the attended-distance summary is kept: per layer and head, the mass
of attention at distance |key - query| beyond each of a set of distances (`far`), summed
over valid queries. One output frame (token) is `factor` x 10 ms = 80 ms. From prefix and
suffix cumulative sums of each probability row, the mass beyond distance e of query i is
P[i - e - 1] + S[i + e + 1]: exact tails (no 1 - near cancellation) at O(tokens) per row.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from lcasr_jax.kernels.attention.xla import NEG_INF, attention_mask

THRESHOLDS_S = (10.0, 30.0, 60.0)  # the paper's question: how much mass lies this far away


@dataclasses.dataclass(frozen=True)
class Captured:
    """q[i], k[i]: layer i's (batch, tokens, heads, head_dim); lengths (batch,) valid tokens."""

    q: list[jax.Array]
    k: list[jax.Array]
    lengths: jax.Array
    window: tuple[int, int]


@functools.cache
def _capture_fn(model):
    @jax.jit
    def run(variables, spec, lengths):
        out, state = model.apply(variables, spec, lengths, mutable=["attention"])
        return out["length"], state["attention"]  # the log-probs are not kept

    return run


def capture(model, variables, spec, lengths=None) -> Captured:
    """Forward spec (batch, feat, frames) [lengths (batch,) frames] keeping q, k per layer.
    For time-padded inputs give a model with `mask_subsampling=True` (as evaluation does)."""
    spec = jnp.asarray(spec, jnp.float32)
    if lengths is None:
        lengths = jnp.full((spec.shape[0],), spec.shape[-1], jnp.int32)
    variables = {k: v for k, v in variables.items() if k != "attention"}
    out_lengths, sown = _capture_fn(model)(
        variables, spec, jnp.asarray(lengths, jnp.int32))
    n = model.config.n_layers
    q = [sown[f"layer_{i}"]["attn"]["q"][0] for i in range(n)]
    k = [sown[f"layer_{i}"]["attn"]["k"][0] for i in range(n)]
    return Captured(q, k, out_lengths, tuple(model.config.attention_window))


def _block_probs(q_blk, k, q_pos, lengths, window, scale):
    """Probabilities (batch, heads, block, tokens) float32 of queries q_pos."""
    mask = attention_mask(q_pos, jnp.arange(k.shape[1]), lengths, window)[:, None]
    logits = jnp.einsum("bqhd,bkhd->bhqk", q_blk.astype(jnp.float32),
                        k.astype(jnp.float32)) * scale
    probs = jax.nn.softmax(jnp.where(mask, logits, NEG_INF), axis=-1)
    return jnp.where(mask, probs, 0.0)


@functools.partial(jax.jit, static_argnames=("window",))
def scores(q, k, lengths, window=(-1, -1), scale=None):
    """Pre-softmax scaled scores (batch, heads, tokens, tokens) float32 of q, k (batch,
    tokens, heads, head_dim): q.k * scale (default head_dim ** -0.5); pairs the masks
    disallow (padding, `window`) at -finfo(float32).max, as the original's ReturnAttention."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    tokens = q.shape[1]
    mask = attention_mask(jnp.arange(tokens), jnp.arange(k.shape[1]), lengths, window)
    logits = jnp.einsum("bqhd,bkhd->bhqk", q.astype(jnp.float32),
                        k.astype(jnp.float32)) * scale
    return jnp.where(mask[:, None], logits, -jnp.finfo(jnp.float32).max)


WEIGHT_VALUES = ("scores", "probs")


def layer_weights(captured: Captured, values: str = "scores"):
    """Per layer (in order) its (batch, heads, tokens, tokens) float32 numpy array of
    `values`: 'scores' (pre-softmax, the original's saved weights) or 'probs'."""
    if values not in WEIGHT_VALUES:
        raise ValueError(f"attention values must be one of {', '.join(WEIGHT_VALUES)} "
                         f"(got {values!r})")
    fn = scores if values == "scores" else probabilities
    for q, k in zip(captured.q, captured.k, strict=True):
        yield np.asarray(fn(q, k, captured.lengths, captured.window))


def _blocks(q, block_q):
    batch, tokens, heads, dim = q.shape
    n = -(-tokens // block_q)
    qp = jnp.pad(q, ((0, 0), (0, n * block_q - tokens), (0, 0), (0, 0)))
    return qp.reshape(batch, n, block_q, heads, dim).swapaxes(0, 1), jnp.arange(n) * block_q


@functools.partial(jax.jit, static_argnames=("window", "block_q"))
def probabilities(q, k, lengths, window=(-1, -1), scale=None, block_q: int = 256):
    """Full attention probabilities (batch, heads, tokens, tokens) float32 of q, k
    (batch, tokens, heads, head_dim); rows of valid queries sum to 1 over allowed keys."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    tokens = q.shape[1]
    qb, starts = _blocks(q, block_q)
    out = jax.lax.map(lambda a: _block_probs(a[0], k, a[1] + jnp.arange(block_q), lengths,
                                             window, scale), (qb, starts))
    out = jnp.moveaxis(out, 0, 2)  # (batch, heads, blocks, block, tokens)
    return out.reshape(*out.shape[:2], -1, tokens)[:, :, :tokens]


@functools.partial(jax.jit, static_argnames=("window", "block_q"))
def distance_sums(q, k, lengths, edges, window=(-1, -1), scale=None, block_q: int = 128):
    """Attended-distance sums over valid queries, computed block by block.

    edges: (E,) int32 distances in tokens. Returns (far (batch, heads, E): attention mass at
    |key - query| > edges[e]; distance (batch, heads): mass-weighted |key - query| in tokens).
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    tokens = k.shape[1]
    qb, starts = _blocks(q, block_q)

    def block(args):
        q_blk, start = args
        q_pos = start + jnp.arange(block_q)
        p = _block_probs(q_blk, k, q_pos, lengths, window, scale)  # (b, h, Bq, T)
        prefix = jnp.cumsum(p, axis=-1)
        suffix = jnp.flip(jnp.cumsum(jnp.flip(p, -1), axis=-1), -1)
        left = q_pos[:, None] - edges[None, :] - 1  # (Bq, E): last key left of the edge
        right = q_pos[:, None] + edges[None, :] + 1

        def gather(c, idx):
            got = jnp.take_along_axis(c, jnp.clip(idx, 0, tokens - 1)[None, None], axis=-1)
            return jnp.where(((idx >= 0) & (idx < tokens))[None, None], got, 0.0)

        far = (gather(prefix, left) + gather(suffix, right)).sum(2)
        dist = jnp.abs(jnp.arange(tokens)[None, :] - q_pos[:, None]).astype(jnp.float32)
        return far, jnp.einsum("bhqk,qk->bh", p, dist)

    far, dist = jax.lax.map(block, (qb, starts))
    return far.sum(0), dist.sum(0)


def default_edges(tokens: int) -> np.ndarray:
    """Distance edges in tokens: 0, then about 8 per doubling up to `tokens`."""
    grid = np.round(np.geomspace(1, max(tokens, 2), 8 * int(np.log2(max(tokens, 2)))))
    return np.unique(np.concatenate([[0], grid])).astype(np.int32)


@dataclasses.dataclass
class DistanceSummary:
    """Attended distance per layer and head, accumulated over windows."""

    edges: np.ndarray  # (E,) tokens
    seconds_per_token: float
    far: np.ndarray  # (layers, heads, E) mass beyond each edge, summed over queries
    distance: np.ndarray  # (layers, heads) summed mass-weighted distance (tokens)
    queries: int = 0

    @classmethod
    def empty(cls, layers: int, heads: int, edges: np.ndarray, seconds_per_token: float):
        """A zero summary over `edges` (tokens; the THRESHOLDS_S distances are added)."""
        marks = np.round(np.array(THRESHOLDS_S) / seconds_per_token)
        edges = np.unique(np.concatenate([np.asarray(edges), marks])).astype(np.int32)
        return cls(edges, seconds_per_token,
                   np.zeros((layers, heads, len(edges))), np.zeros((layers, heads)))

    def add(self, captured: Captured, block_q: int = 128) -> None:
        edges = jnp.asarray(self.edges)
        for i, (q, k) in enumerate(zip(captured.q, captured.k, strict=True)):
            far, dist = distance_sums(q, k, captured.lengths, edges, captured.window,
                                      block_q=block_q)
            self.far[i] += np.asarray(far, np.float64).sum(0)
            self.distance[i] += np.asarray(dist, np.float64).sum(0)
        self.queries += int(np.asarray(captured.lengths).sum())

    def share_beyond(self, seconds: float) -> np.ndarray:
        """(layers, heads) share of attention mass farther than `seconds` (an edge)."""
        hit = np.flatnonzero(self.edges == round(seconds / self.seconds_per_token))
        if not hit.size:
            raise ValueError(f"{seconds} s is not a distance edge of this summary")
        return self.far[..., hit[0]] / max(self.queries, 1)

    def histogram(self) -> np.ndarray:
        """(layers, heads, E) share of mass with edges[e-1] < distance <= edges[e]."""
        far = self.far / max(self.queries, 1)
        near = 1.0 - far
        return np.diff(near, axis=-1, prepend=0.0)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"edges_s": self.edges * self.seconds_per_token, "edges_tokens": self.edges,
               "far_share": self.far / max(self.queries, 1), "histogram": self.histogram(),
               "mean_distance_s": self.distance / max(self.queries, 1) * self.seconds_per_token,
               "queries": np.array(self.queries)}
        for s in THRESHOLDS_S:
            out[f"beyond_{s:g}s"] = self.share_beyond(s)
        return out
