"""Where the eval forward's time goes: each part of the model timed alone at one length.

  PYTHONPATH=. python3 benchmarks/forward_parts.py [--frames 360000] [--small]

Model: the paper's 6L-768D SCConformerXL (random weights, bf16 compute, attention and
depthwise convs 'auto'; the depthwise convs are also timed in both implementations);
`--small` a tiny config for a CPU smoke run. Each part runs jitted on inputs of its real
shape (frames for the subsampling, frames / 8 tokens after it), median of --repeats after
a compile run. The table gives ms per call, calls per forward and their product, then the
sum against the whole forward (to log-probs), so the parts that miss a target show.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=360000)
    p.add_argument("--small", action="store_true", help="tiny model (CPU smoke run)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np
    from bench_utils import bench_config, header, time_ms

    from lcasr_jax.model import SCConformerXL
    from lcasr_jax.model import subsampling as subsampling_lib
    from lcasr_jax.model.attention import SelfAttention
    from lcasr_jax.model.conformer import ConformerLayer
    from lcasr_jax.model.convolution import ConvModule
    from lcasr_jax.model.decoder import CTCDecoder
    from lcasr_jax.model.depthwise import DepthwiseConv
    from lcasr_jax.model.feedforward import FeedForward
    from lcasr_jax.model.lengths import output_lengths
    from lcasr_jax.model.positions import rotary_table
    from lcasr_jax.model.subsampling import DepthwiseStridingSubsampling

    cfg = bench_config(args.small)
    dtype = jnp.bfloat16
    model = SCConformerXL(cfg, dtype=dtype)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, 80, 64)))

    def part(*path: str) -> dict:
        """Every collection's subtree at `path` (params, batch_stats, buffers)."""
        out = {}
        for collection, tree in variables.items():
            for key in path:
                tree = tree.get(key, {}) if isinstance(tree, dict) else {}
            if tree:
                out[collection] = tree
        return out

    rng = np.random.default_rng(0)
    frames = args.frames
    tokens = int(output_lengths(jnp.array(frames), cfg.subsampling_factor))
    spec = jnp.asarray(rng.standard_normal((1, 80, frames)), jnp.float32)
    x = jnp.asarray(rng.standard_normal((1, tokens, cfg.d_model)), dtype)
    lengths = jnp.array([tokens])
    valid = jnp.ones((1, tokens), bool)
    rotary = None
    if cfg.use_rotary:
        buf = variables["buffers"]["rotary"]
        rotary = rotary_table(tokens, buf["inv_freq"], buf["interpolation_factor"])
    logits = jnp.asarray(rng.standard_normal((1, tokens, cfg.num_classes)), dtype)
    layer = ("layer_0",)
    heads = cfg.n_layers - 1 if cfg.self_conditioning else 0
    channels = cfg.conv_channels
    act = subsampling_lib._ACTIVATIONS[cfg.subsampling_act]
    conv_in = subsampling_lib.PatchConv(channels, (3, 3), 2, dtype)
    pointwise = subsampling_lib.PatchConv(channels, (1, 1), 1, dtype)
    image = jnp.swapaxes(spec, 1, 2)[..., None].astype(dtype)  # (1, frames, mels, 1)
    stage1 = jnp.zeros((1, -(-frames // 2), cfg.feat_in // 2, channels), dtype)
    inner = jnp.zeros((1, tokens, cfg.conv_inner), dtype)
    runtime = model.runtime  # the blocks' settings, as the whole model gives them

    def depthwise(impl, x, window, strides, padding, *path):
        layer = DepthwiseConv(x.shape[-1], window, strides, padding, dtype, impl)
        return jax.jit(lambda x: layer.apply(part(*path), x)), (x,)

    parts = [  # (name, function, arguments, calls per forward)
        ("subsampling", jax.jit(lambda s: DepthwiseStridingSubsampling(cfg, runtime).apply(
            part("subsampling"), jnp.swapaxes(s, 1, 2))), (spec,), 1),
        ("  first conv (1 -> C, stride 2) + activation", jax.jit(
            lambda x: act(conv_in.apply(part("subsampling", "conv_in"), x))), (image,), 1),
        ("  pointwise conv of stage 1 + activation", jax.jit(
            lambda x: act(pointwise.apply(part("subsampling", "pointwise_1"), x))),
         (stage1[:, ::2, ::2],), 1),
        *[(f"  depthwise stride-2 conv of stage 1 ({impl})",
           *depthwise(impl, stage1, (3, 3), (2, 2), ((1, 1), (1, 1)), "subsampling",
                      "depthwise_1"), 1) for impl in ("conv", "shifts")],
        ("conformer layer", jax.jit(lambda x: ConformerLayer(cfg, runtime).apply(
            part(*layer), x, lengths, valid, rotary)), (x,), cfg.n_layers),
        ("  attention (with projections)", jax.jit(lambda x: SelfAttention(cfg, runtime).apply(
            part(*layer, "attn"), x, lengths, valid, rotary)), (x,), cfg.n_layers),
        ("  convolution module", jax.jit(lambda x: ConvModule(cfg, runtime).apply(
            part(*layer, "conv"), x, valid, False)), (x,), cfg.n_layers),
        *[(f"    its depthwise conv ({impl})",
           *depthwise(impl, inner, (cfg.conv_kernel_size,), (1,),
                      (((cfg.conv_kernel_size - 1) // 2,) * 2,), *layer, "conv",
                      "depthwise_conv"), cfg.n_layers) for impl in ("conv", "shifts")],
        ("  feed-forward", jax.jit(lambda x: FeedForward(cfg, dtype).apply(
            part(*layer, "ff1_fn"), x)), (x,), 2 * cfg.n_layers),
        ("decoder logits", jax.jit(lambda x: CTCDecoder(cfg, dtype).apply(
            part("decoder"), x, method="logits")), (x,), cfg.n_layers),
        ("self-conditioning", jax.jit(lambda x, lg: CTCDecoder(cfg, dtype).apply(
            part("decoder"), x, lg, method="condition")), (x, logits), heads),
        ("log-softmax (float32)", jax.jit(
            lambda lg: jax.nn.log_softmax(lg.astype(jnp.float32), -1)), (logits,), 1),
    ]
    whole = jax.jit(lambda s: model.apply(variables, s, jnp.array([frames]))["final_posteriors"])
    print(f"# {header()} | {frames} frames, {tokens} tokens, {cfg.n_layers}L-{cfg.d_model}D "
          "bf16")
    print("| part | ms per call | calls | ms per forward |\n|---|---|---|---|")
    total = 0.0
    for name, fn, fn_args, calls in parts:
        ms = time_ms(fn, *fn_args, warmup=1, reps=args.repeats)
        if not name.startswith(" "):  # sub-parts are inside the part above them
            total += ms * calls
        print(f"| {name} | {ms:.2f} | {calls} | {ms * calls:.1f} |", flush=True)
    print(f"| sum of the top-level parts | | | {total:.1f} |")
    print(f"| whole forward | | | {time_ms(whole, spec, warmup=1, reps=args.repeats):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
