"""What the training step keeps between forward and backward, per remat policy (any platform).

jax's saved-residual accounting of the train loss of the paper 6L-768D model (bf16, batch 1,
CTC 'pallas_gpu' traced, not run): the arrays the backward pass needs, grouped by shape and
origin, largest first. It needs no accelerator and no compile, so it runs on the CPU for the
one-hour shape; device peak memory adds the state, the gradients and the backward's own
temporaries (benchmarks/model_step.py measures that on a GPU).

  PYTHONPATH=. python3 benchmarks/step_residuals.py --frames 360000 --remat none layers full
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
GIB = 2.0**30


def residuals(frames: int, remat: str, ctc_impl: str) -> list[tuple[str, str, int]]:
    """[(shape, origin, bytes)] of the loss's saved residuals."""
    # The accounting behind jax.ad_checkpoint.print_saved_residuals, as data.
    from jax._src.ad_checkpoint import saved_residuals
    from model_step import make_batch, paper_config

    from lcasr_jax.train import step as step_lib
    from lcasr_jax.train.state import build_model

    cfg = paper_config(remat, ctc_impl)
    model = build_model(cfg)
    state = jax.eval_shape(step_lib.jit_create_state(model, cfg, None))
    host = make_batch(frames, 1)
    host["weight"] = np.ones((1,), np.float32)
    batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in host.items()}
    loss_fn = step_lib.make_loss_fn(model, cfg, None)
    found = saved_residuals(lambda p, s, b: loss_fn(p, s, b)[0], state.params, state, batch)
    short = lambda desc: re.sub(r"/\S*/(lcasr_jax|site-packages)/", r"\1/", desc.split(" (")[0])
    return [(aval.str_short(), short(desc), aval.size * aval.dtype.itemsize)
            for aval, desc in found if hasattr(aval, "size")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=360000)
    p.add_argument("--remat", nargs="+", default=["none", "layers", "full"])
    p.add_argument("--ctc", default="pallas_gpu", help="CTC implementation traced")
    p.add_argument("--top", type=int, default=4, help="largest groups listed per policy")
    args = p.parse_args(argv)
    print(f"# saved residuals of the train loss, 6L-768D bf16, {args.frames} frames x 1; "
          f"jax {jax.__version__}")
    print("| remat | residuals GiB | largest (GiB, shape, origin) |\n|---|---|---|")
    for policy in args.remat:
        groups = collections.Counter()
        for shape, origin, size in residuals(args.frames, policy, args.ctc):
            groups[(shape, origin)] += size
        top = "; ".join(f"{n / GIB:.2f} {shape} {origin}"
                        for (shape, origin), n in groups.most_common(args.top))
        print(f"| {policy} | {sum(groups.values()) / GIB:.2f} | {top} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
