"""Check on a CUDA machine that this project's bf16 options compute what CUDA autocast does
(the CPU tests can only emulate it: CPU autocast leaves the rotary einsum in float32).

    python3 scripts/check_autocast_cuda.py [--out DIR]

Needs torch with CUDA and this repo (jax on any backend). Written from the original's
behaviour, not its code: under `torch.autocast('cuda', dtype=torch.bfloat16)`
  rotary:   angles = einsum('i,j->ij', positions, inv_freq); cos/sin of cat(angles, angles)
  fourier:  phase = matmul(positions (n, 1), w (1, d/2)); cat(cos, sin) / sqrt(d)
  renorm:   a depthwise Conv1d's output (bf16) -> batch mean and biased std (+1e-3) over
            (batch, time), (x - mean) / std * r + d with float32 running statistics
are compared with `rotary_table`/`FourierPositions` at position_dtype bfloat16 (and float32,
which must differ) at 45,000 tokens (one hour), and with `BatchRenorm(stats_dtype=bfloat16)`.
Prints one line per check and exits 1 if a bf16 option is further from autocast than one
bf16 step on more than 0.1 % of the values.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TOKENS = 45_000
ULP = 2.0 ** -8
DEV = "cuda"  # --device cpu: a smoke test of this script (CPU autocast leaves the rotary
# einsum in float32, so that check is expected to fail there)
STEPS = 36_000  # BatchRenorm's counter: rmax 2.77, dmax 5 (r and d both active)


def _mismatch(ours: np.ndarray, reference: np.ndarray) -> dict:
    diff = np.abs(np.asarray(ours, np.float64) - np.asarray(reference, np.float64))
    scale = np.maximum(np.abs(reference), 0.5)
    return {"max_abs": float(diff.max()), "frac_over_1ulp": float((diff > ULP * scale).mean()),
            "frac_differ": float((diff > 0).mean())}


def check_rotary(torch, jnp, head_dim: int, base: float) -> dict:
    from lcasr_jax.model.positions import rotary_inv_freq, rotary_table

    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=DEV).float() / head_dim))
    t = torch.arange(TOKENS, device=DEV).float()
    with torch.autocast(DEV, dtype=torch.bfloat16):
        angles = torch.einsum("i,j->ij", t, inv)
        emb = torch.cat((angles, angles), dim=-1)
        cos = emb.cos()
    ref = cos.float().cpu().numpy()
    out = {"einsum_dtype": str(angles.dtype), "cos_dtype": str(cos.dtype)}
    for name, dtype in (("bf16", jnp.bfloat16), ("f32", jnp.float32)):
        ours = rotary_table(TOKENS, rotary_inv_freq(head_dim, base), jnp.float32(1.0), dtype)[0]
        out[name] = _mismatch(np.asarray(ours.astype(jnp.float32)), ref)
    return out


def check_fourier(torch, jax, jnp, d_model: int = 256) -> dict:
    from lcasr_jax.model.positions import FourierPositions

    results = {}
    for name, dtype in (("bf16", jnp.bfloat16), ("f32", jnp.float32)):
        module = FourierPositions(d_model, dtype)
        x = jnp.zeros((1, TOKENS, d_model), jnp.float32)
        variables = module.init(jax.random.key(0), x[:, :1])
        ours = np.asarray(module.apply(variables, x)[0])
        w = torch.tensor(np.asarray(variables["params"]["w_r"]), device=DEV)
        position = torch.arange(TOKENS, dtype=torch.float32, device=DEV).unsqueeze(1)
        with torch.autocast(DEV, dtype=torch.bfloat16):
            phase = torch.matmul(position, w)
            table = torch.cat((torch.cos(phase), torch.sin(phase)), -1)
            table /= math.sqrt(d_model)
        results[name] = _mismatch(ours, table.float().cpu().numpy())
        results["matmul_dtype"] = str(phase.dtype)
    return results


def check_renorm(torch, jnp) -> dict:
    from lcasr_jax.model.convolution import BatchRenorm

    gen = torch.Generator(device=DEV).manual_seed(0)
    channels, time = 64, 1000
    x = torch.randn(4, channels, time, device=DEV, generator=gen) * 1.7 + 0.3
    conv = torch.nn.Conv1d(channels, channels, 9, padding=4, groups=channels).to(DEV)
    ra_mean = torch.zeros(channels, device=DEV)
    ra_std = torch.full((channels,), 0.8, device=DEV)
    with torch.no_grad(), torch.autocast(DEV, dtype=torch.bfloat16):
        h = conv(x).transpose(1, -1)  # (batch, time, channels), bf16
        mean = h.mean([0, 1])
        std = h.std([0, 1], unbiased=False) + 1e-3
        rmax = min(max(2 / 35000 * STEPS + 25 / 35, 1.0), 3.0)
        dmax = min(max(5 / 20000 * STEPS - 25 / 20, 0.0), 5.0)
        r = (std / ra_std).clamp(1 / rmax, rmax)
        d = ((mean - ra_mean) / ra_std).clamp(-dmax, dmax)
        y = (h - mean) / std * r + d
    module = BatchRenorm(include_padding=True, stats_dtype=jnp.bfloat16)
    variables = {"params": {"scale": jnp.ones(channels), "bias": jnp.zeros(channels)},
                 "batch_stats": {"mean": jnp.zeros(channels), "std": jnp.full(channels, 0.8),
                                 "steps": jnp.float32(STEPS)}}
    hj = jnp.asarray(h.float().cpu().numpy(), jnp.bfloat16)
    ours, updates = module.apply(variables, hj, jnp.ones(hj.shape[:2], bool), True,
                                 mutable=["batch_stats"])
    new_mean = ra_mean + 0.01 * (mean - ra_mean)
    new_std = ra_std + 0.01 * (std - ra_std)
    return {"conv_dtype": str(h.dtype), "mean_dtype": str(mean.dtype), "y_dtype": str(y.dtype),
            "y": _mismatch(np.asarray(ours), y.float().cpu().numpy()),
            "running_mean_max_abs": float(np.abs(np.asarray(updates["batch_stats"]["mean"])
                                                 - new_mean.cpu().numpy()).max()),
            "running_std_max_abs": float(np.abs(np.asarray(updates["batch_stats"]["std"])
                                                - new_std.cpu().numpy()).max())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    args = parser.parse_args()
    global DEV
    DEV = args.device
    import jax
    import jax.numpy as jnp
    import torch

    if DEV == "cuda" and not torch.cuda.is_available():
        sys.exit("check_autocast_cuda: needs torch with a CUDA device")
    results = {"torch": torch.__version__, "jax": jax.__version__,
               "device": torch.cuda.get_device_name() if DEV == "cuda" else "cpu",
               "rotary_1.5M_128": check_rotary(torch, jnp, 128, 1_500_000.0),
               "rotary_10k_32": check_rotary(torch, jnp, 32, 10_000.0),
               "fourier_256": check_fourier(torch, jax, jnp), "renorm": check_renorm(torch, jnp)}
    ok = True
    for name, res in results.items():
        if isinstance(res, dict):
            bf16 = res.get("bf16", res.get("y"))
            good = bf16["frac_over_1ulp"] <= 1e-3 and (
                "f32" not in res or res["f32"]["frac_over_1ulp"] > 1e-3)
            ok &= good
            print(f"{'ok ' if good else 'BAD'} {name}: {json.dumps(res)}")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "autocast_check.json").write_text(json.dumps(results, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
