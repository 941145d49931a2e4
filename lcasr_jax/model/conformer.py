"""SCConformerXL: the self-conditioned CTC conformer of the lcasr paper, in Flax Linen."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from lcasr_jax.model.attention import ATTENTION_OUT, SelfAttention
from lcasr_jax.model.config import ModelConfig
from lcasr_jax.model.convolution import ConvModule
from lcasr_jax.model.decoder import CTCDecoder
from lcasr_jax.model.feedforward import FeedForward
from lcasr_jax.model.lengths import output_lengths
from lcasr_jax.model.norms import make_norm
from lcasr_jax.model.positions import FourierPositions, RotaryFrequencies, rotary_table
from lcasr_jax.model.runtime import SUBSAMPLING_CHUNK_FRAMES, Runtime
from lcasr_jax.model.subsampling import DepthwiseStridingSubsampling, chunked_subsampling
from lcasr_jax.sharding import bound_mesh

ACTIVATION_AXES = ("batch", "length", "embed")


class ConformerLayer(nn.Module):
    """Macaron conformer layer, (batch, time, d_model) -> same.

    x += 0.5 FF1(norm x); x += MHSA(norm x); x += Conv(norm x); x += 0.5 FF2(norm x);
    x = norm_out(x). `transformer` drops FF1 and Conv; `sandwich_norm` adds output norms.
    `renorm_updates`: BatchRenorm updates per training step (2: as a layer the original
    wraps in torch.utils.checkpoint; `ModelConfig.batch_renorm_rerun_every`).
    """

    config: ModelConfig
    runtime: Runtime = Runtime()
    renorm_updates: int = 1  # BatchRenorm updates per step (ModelConfig.batch_renorm_rerun_every)

    @nn.compact
    def __call__(self, x, lengths, valid, rotary, train: bool = False):
        cfg, rt = self.config, self.runtime
        sandwich = cfg.sandwich_norm

        def feed_forward(x, name):
            h = FeedForward(cfg, rt.dtype, name=f"{name}_fn")(make_norm(cfg, f"{name}_norm")(x))
            if sandwich:
                h = make_norm(cfg, f"{name}_norm_out")(h)
            self.sow("intermediates", f"{name}_out", 0.5 * h)
            return x + 0.5 * h

        if not cfg.transformer:
            x = feed_forward(x, "ff1")
        h = SelfAttention(cfg, rt, name="attn")(
            make_norm(cfg, "attn_norm")(x), lengths, valid, rotary)
        if sandwich:
            h = make_norm(cfg, "attn_norm_out")(h)
        self.sow("intermediates", "attn_out", h)
        x = x + h
        if not cfg.transformer:
            h = ConvModule(cfg, rt, self.renorm_updates, name="conv")(
                make_norm(cfg, "conv_norm")(x), valid, train)
            self.sow("intermediates", "conv_out", h)
            x = x + h
        x = feed_forward(x, "ff2")
        x = make_norm(cfg, "norm_out")(x)
        return nn.with_logical_constraint(x, ACTIVATION_AXES, mesh=bound_mesh())


REMAT_POLICIES = ("none", "layers", "full", "save_attention")
# Outputs of the attention kernels (their fwd rules' residuals: output and log-sum-exp) kept
# by remat 'save_attention': our Pallas kernels (GPU flash, TPU splash) and cuDNN's.
_ATTENTION_PRIMITIVES = frozenset({"pallas_call", "dot_product_attention_fwd_wrapper",
                                   "dot_product_attention_fwd"})


def _attention_kernels_saveable(prim, *_, **__) -> bool:
    return prim.name in _ATTENTION_PRIMITIVES


SAVE_ATTENTION = jax.checkpoint_policies.save_from_both_policies(
    jax.checkpoint_policies.save_only_these_names(ATTENTION_OUT), _attention_kernels_saveable)


def remat_policy(value: bool | str) -> str:
    """One of REMAT_POLICIES from a policy name or a bool (True: 'full')."""
    if isinstance(value, bool):
        return "full" if value else "none"
    if value not in REMAT_POLICIES:
        raise ValueError(f"remat={value!r}: choose one of {', '.join(REMAT_POLICIES)}")
    return value


def _self_condition(decoder: CTCDecoder, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Intermediate logits of x (batch, tokens, d_model) and x conditioned on them; a
    function of the module, so that nn.remat can lift it."""
    logits = decoder.logits(x)
    return logits, decoder.condition(x, logits)


class SCConformerXL(nn.Module):
    """Spectrogram (batch, feat_in, frames) -> CTC log-probs (batch, frames/8, classes).

    Stage outputs are sown into the 'intermediates' collection (subsampling_out,
    pos_enc_out, layer{i}_in, layer{i}_out, decoder_in; per layer ff1_out, attn_out,
    conv_out, ff2_out); pass `mutable=['intermediates']` to `apply` to get them.

    Attributes:
      config: model hyper-parameters.
      dtype: compute dtype (float32, or bfloat16 with float32 params).
      attention_impl: attention backend name ('auto', 'xla', ...).
      position_dtype: precision of the position tables, rotary cos/sin and learnable
        Fourier (bfloat16 computes them as the original's training did under CUDA autocast,
        model/positions.py; float32 as its evaluation).
      remat: activation checkpointing, one of REMAT_POLICIES: 'none'; 'layers'
        (rematerialise each conformer layer in the backward pass); 'full' (also the
        subsampling and each self-conditioning head: only the spectrogram, the layer inputs
        and the logits are kept between forward and backward); 'save_attention' ('full',
        but each layer also keeps its attention output, and the attention kernel's
        residuals (output, log-sum-exp) where it is a Pallas or cuDNN kernel, so the
        backward does not run attention forward again). True means 'full'.
      mask_subsampling: zero padded frames inside the subsampling, so a time-padded input
        gives the outputs of the unpadded one (batched evaluation); the original does not
        (its training leaks padding into the last valid frames), hence off by default.
      depthwise_impl: depthwise convolutions as XLA grouped convs ('conv') or summed
        strided slices ('shifts'); 'auto' picks per platform and stride (model/depthwise.py).
      subsampling_chunk_frames: inputs longer than this many frames (a multiple of the
        subsampling factor; 0: never) go through the subsampling in chunks of it
        (`chunked_subsampling`: equal results, and under remat 'full' its backward too), so
        its peak memory is one chunk's: at 32,768 frames (5.5 min) ~0.34 GB in bf16 for the
        first conv's output instead of 3.7 GB at one hour.
    """

    config: ModelConfig
    dtype: jnp.dtype = jnp.float32
    attention_impl: str = "auto"
    position_dtype: jnp.dtype = jnp.float32
    remat: bool | str = "none"
    mask_subsampling: bool = False
    depthwise_impl: str = "auto"
    subsampling_chunk_frames: int = SUBSAMPLING_CHUNK_FRAMES

    @property
    def runtime(self) -> Runtime:
        """These settings as the one `Runtime` that every block is given."""
        return Runtime(self.dtype, self.position_dtype, self.attention_impl, self.depthwise_impl,
                       self.remat, self.mask_subsampling, self.subsampling_chunk_frames)

    @nn.compact
    def __call__(self, spec: jax.Array, lengths: jax.Array | None = None, *,
                 return_logits: bool = False, train: bool = False) -> dict[str, jax.Array]:
        cfg, rt = self.config, self.runtime
        batch, _, frames = spec.shape
        if lengths is None:
            lengths = jnp.full((batch,), frames, jnp.int32)
        lengths = jnp.asarray(lengths, jnp.int32)
        remat = remat_policy(rt.remat)
        full = remat in ("full", "save_attention")  # subsampling and heads recomputed too
        chunk = rt.subsampling_chunk_frames
        sub_lengths = lengths if rt.mask_subsampling else None
        if chunk and frames > chunk and not self.is_initializing():
            x = chunked_subsampling(
                DepthwiseStridingSubsampling(cfg, rt, name="subsampling"),
                jnp.swapaxes(spec, 1, 2), sub_lengths, chunk, remat=full)
        else:
            subsampling = (nn.remat(DepthwiseStridingSubsampling) if full
                           else DepthwiseStridingSubsampling)
            x = subsampling(cfg, rt, name="subsampling")(
                jnp.swapaxes(spec, 1, 2), sub_lengths)
        x = nn.with_logical_constraint(x, ACTIVATION_AXES, mesh=bound_mesh())
        self.sow("intermediates", "subsampling_out", x)
        tokens = x.shape[1]
        out_lengths = jnp.minimum(output_lengths(lengths, cfg.subsampling_factor), tokens)
        valid = jnp.arange(tokens)[None, :] < out_lengths[:, None]

        rotary = None
        if cfg.use_rotary:
            inv_freq, factor = RotaryFrequencies(cfg, name="rotary")()
            rotary = rotary_table(tokens, inv_freq, factor, rt.position_dtype)
        if cfg.fourier_pos_enc:
            x = FourierPositions(cfg.d_model, rt.position_dtype, name="fourier_pos")(x)
            self.sow("intermediates", "pos_enc_out", x)

        decoder = CTCDecoder(cfg, rt.dtype, name="decoder")
        if self.is_initializing() and not (cfg.self_conditioning and cfg.n_layers > 1):
            # The released format always has decoder.reprojection, used or not.
            decoder.condition(x[:, :1], jnp.zeros((batch, 1, cfg.num_classes)))
        policy = SAVE_ATTENTION if remat == "save_attention" else None
        layer_cls = (nn.remat(ConformerLayer, static_argnums=(5,), policy=policy)
                     if remat != "none" else ConformerLayer)
        self_condition = nn.remat(_self_condition) if full else _self_condition
        intermediate_logits = []
        for i in range(cfg.n_layers):
            self.sow("intermediates", f"layer{i}_in", x)
            every = cfg.batch_renorm_rerun_every
            x = layer_cls(cfg, rt, 2 if every and i % every == 0 else 1, name=f"layer_{i}")(
                x, out_lengths, valid, rotary, train)
            self.sow("intermediates", f"layer{i}_out", x)
            if cfg.self_conditioning and i != cfg.n_layers - 1:
                logits, x = self_condition(decoder, x)
                intermediate_logits.append(logits)

        if cfg.legasee_double_norm:  # historical double norm; released checkpoints need it
            x = decoder.apply_norm(x)
        self.sow("intermediates", "decoder_in", x)
        logits = decoder.logits(x)
        posteriors = (logits if return_logits
                      else jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1))
        result = {"final_posteriors": posteriors, "length": out_lengths}
        if cfg.self_conditioning:
            result["intermediate_logits"] = intermediate_logits
        return result
