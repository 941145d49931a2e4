"""CTC loss forward+backward vs optax (and torch when present) at 512..45,000 output frames.

Usage (GPU): PYTHONPATH=. python3 benchmarks/ctc.py [--sizes 512 2048 ...] [--no-torch]
Batch 1, 4096 classes (blank 4095), labels = frames // 5, float32 logits. Prints a markdown
table: ms for loss+gradient w.r.t. logits, |loss - optax| / |optax|, gradient difference to
the XLA backend, XLA temp bytes, and the ratio to the issue's anchors at 45,000 frames
(torch 1,515 ms, optax 1,819 ms).
"""

from __future__ import annotations

import argparse
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from bench_utils import header, table, temp_bytes, time_ms

from lcasr_jax.kernels.ctc import Tuning, ctc_loss

ANCHOR_TORCH_MS, ANCHOR_OPTAX_MS = 1515.0, 1819.0
CLASSES, BLANK = 4096, 4095


def make(impl, tuning: Tuning | None = None):
    """jit of (summed loss, gradient) through `kernels.ctc.ctc_loss`'s backend `impl`."""
    def loss(logits, n_frames, labels, n_labels):
        return ctc_loss(logits, n_frames, labels, n_labels, blank_id=BLANK,
                        implementation=impl, tuning=tuning).sum()
    return jax.jit(jax.value_and_grad(loss))


def ref64(logits, labels, blank):
    """float64 numpy CTC for one sequence: (nll, d nll / d logits), vectorised over states."""
    x = np.asarray(logits, np.float64)
    lp = x - x.max(1, keepdims=True)
    lp -= np.log(np.exp(lp).sum(1, keepdims=True))
    n_frames = lp.shape[0]
    ext = np.full(2 * len(labels) + 1, blank)
    ext[1::2] = labels
    skip = np.zeros(len(ext), bool)
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    skip_up = np.concatenate([skip[2:], [False, False]])
    em = lp[:, ext]
    shift = lambda a, k: np.concatenate([np.full(k, -np.inf), a[:-k]])
    shift_up = lambda a, k: np.concatenate([a[k:], np.full(k, -np.inf)])
    alpha = np.empty_like(em)
    a = np.full(len(ext), -np.inf)
    a[:2] = em[0, :2]
    alpha[0] = a
    for t in range(1, n_frames):
        a = np.logaddexp(np.logaddexp(a, shift(a, 1)), np.where(skip, shift(a, 2), -np.inf))
        a = a + em[t]
        alpha[t] = a
    ll = np.logaddexp(a[-1], a[-2])
    b = np.full(len(ext), -np.inf)
    b[-2:] = em[-1, -2:]
    occ = np.zeros_like(lp)
    for t in range(n_frames - 1, -1, -1):
        if t < n_frames - 1:
            b = np.logaddexp(np.logaddexp(b, shift_up(b, 1)),
                             np.where(skip_up, shift_up(b, 2), -np.inf)) + em[t]
        np.add.at(occ[t], ext, np.exp(alpha[t] + b - em[t] - ll))
    return -ll, np.exp(lp) - occ


def check(impls, n=4000):
    """Loss and gradient of each implementation vs float64 numpy at n frames."""
    key = jax.random.PRNGKey(7)
    logits = jax.random.normal(key, (1, n, CLASSES), jnp.float32) * 2
    labels = jax.random.randint(jax.random.fold_in(key, 1), (1, n // 5), 0, BLANK)
    ref_loss, ref_grad = ref64(np.asarray(logits[0]), np.asarray(labels[0]), BLANK)
    rows = []
    for impl in impls:
        try:
            loss, grad = make(impl)(logits, jnp.array([n]), labels, jnp.array([n // 5]))
        except Exception as e:  # noqa: BLE001
            print(f"check {impl}: FAILED {type(e).__name__}: {e}"[:600], flush=True)
            continue
        err = np.abs(np.asarray(grad[0], np.float64) - ref_grad)
        rows.append(dict(impl=impl, frames=n, rel_loss_err=abs(float(loss) - ref_loss) / ref_loss,
                         max_grad_err=float(err.max()), mean_grad_err=float(err.mean())))
        print(rows[-1], flush=True)
    print(table(rows, ["impl", "frames", "rel_loss_err", "max_grad_err", "mean_grad_err"]))
    batch_check(impls)


def batch_check(impls):
    """A padded batch (ragged frames and labels, one empty target) vs the XLA backend."""
    key = jax.random.PRNGKey(3)
    logits = jax.random.normal(key, (3, 3000, CLASSES), jnp.float32) * 2
    labels = jax.random.randint(jax.random.fold_in(key, 1), (3, 600), 0, BLANK)
    rest = (jnp.array([3000, 2500, 1234]), labels, jnp.array([600, 0, 240]))
    # bf16 logits (what the model gives under bf16 compute), read as they are by the kernel:
    # the same loss as their float32 values, the gradient rounded to bf16.
    for name, x in (("batch", logits), ("bf16", logits.astype(jnp.bfloat16))):
        ref_loss, ref_grad = make("xla")(x.astype(jnp.float32), *rest)
        for impl in impls:
            if impl in ("xla", "optax"):
                continue
            loss, grad = make(impl)(x, *rest)
            grad = grad.astype(jnp.float32)
            print(f"{name} check {impl}: |loss - xla| / xla = "
                  f"{abs(float(loss) - float(ref_loss)) / abs(float(ref_loss)):.2e}, "
                  f"max |grad - xla| = {float(jnp.max(jnp.abs(grad - ref_grad))):.2e}, "
                  f"finite = {bool(jnp.all(jnp.isfinite(grad)))}, logits {x.dtype}",
                  flush=True)


def tile_sweep(n, reps, tiles=("128x32",), norms=(2,), occ_modes=("atomic",), aheads=(2,),
               warps=(0,)):
    """fwd / fwd+bwd ms of the wavefront kernel at n frames for each tile (chunk x block)
    and normalisation interval."""
    key = jax.random.PRNGKey(n)
    logits = jax.random.normal(key, (1, n, CLASSES), jnp.float32) * 2
    labels = jax.random.randint(jax.random.fold_in(key, 1), (1, n // 5), 0, BLANK)
    args_ = (logits, jnp.array([n]), labels, jnp.array([n // 5]))
    rows = []
    first_grad = None
    for tile, norm, occ, ahead, warp in itertools.product(tiles, norms, occ_modes, aheads,
                                                          warps):
        chunk, block = map(int, tile.split("x"))
        tuning = Tuning(chunk=chunk, block=block, lookahead=ahead, norm_every=norm,
                        occ_mode=occ, warps=warp)
        fn = make("pallas_gpu", tuning)
        try:
            _, grad = fn(*args_)
            ms = time_ms(fn, *args_, warmup=1, reps=reps)
        except Exception as e:  # noqa: BLE001
            print(f"tiles {tile}/{norm}: FAILED {type(e).__name__}: {e}"[:600], flush=True)
            continue
        first_grad = grad if first_grad is None else first_grad
        fwd = jax.jit(lambda *a, t=tuning: ctc_loss(*a, blank_id=BLANK,
                                                   implementation="pallas_gpu", tuning=t))
        rows.append(dict(chunk=chunk, block=block, norm_every=norm, occ=occ, lookahead=ahead,
                         warps=warp,
                         frames=n, fwdbwd_ms=ms, fwd_ms=time_ms(fwd, *args_, warmup=1, reps=reps),
                         grad_diff_vs_first=float(jnp.max(jnp.abs(grad - first_grad)))))
        print(rows[-1], flush=True)
    print(table(rows, ["chunk", "block", "norm_every", "occ", "lookahead", "warps", "frames",
                       "fwd_ms",
                       "fwdbwd_ms", "grad_diff_vs_first"]))


def torch_time(logits, labels, reps):
    import torch

    if not torch.cuda.is_available():
        return None
    x = torch.tensor(np.asarray(logits), device="cuda").requires_grad_(True)
    y = torch.tensor(np.asarray(labels), device="cuda", dtype=torch.long)
    n_x = torch.tensor([x.shape[1]], device="cuda")
    n_y = torch.tensor([y.shape[1]], device="cuda")

    def run():
        lp = torch.log_softmax(x, -1).transpose(0, 1)
        loss = torch.nn.functional.ctc_loss(lp, y, n_x, n_y, blank=BLANK, reduction="sum",
                                            zero_infinity=True)
        (g,) = torch.autograd.grad(loss, x)
        torch.cuda.synchronize()
        return loss.item(), g

    import statistics
    import time

    run()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 2048, 8192, 22500, 45000])
    p.add_argument("--impls", nargs="+", default=None)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--check", type=int, default=0, help="frames of a float64 check first")
    p.add_argument("--tiles", type=int, default=0,
                   help="frames of a chunk x block sweep of the wavefront kernel first")
    p.add_argument("--tile-list", nargs="+", default=["128x32"], help="CHUNKxBLOCK tiles")
    p.add_argument("--norm-list", type=int, nargs="+", default=[2], help="Tuning.norm_every values")
    p.add_argument("--occ-list", nargs="+", default=["atomic"],
                   help="Tuning.occ_mode values: atomic, none (no gradient: timing only)")
    p.add_argument("--warps-list", type=int, nargs="+", default=[0],
                   help="Tuning.warps values (0: chunk // 64)")
    p.add_argument("--ahead-list", type=int, nargs="+", default=[2], help="Tuning.lookahead values")
    args = p.parse_args(argv)
    impls = args.impls or (["pallas_gpu", "xla", "optax"] if jax.default_backend() == "gpu"
                           else ["xla", "optax"])
    print(header(), flush=True)
    if args.check:
        check(impls, args.check)
    if args.tiles:
        tile_sweep(args.tiles, args.reps, args.tile_list, args.norm_list, args.occ_list,
                   args.ahead_list, args.warps_list)
    rows = []
    for n in args.sizes:
        key = jax.random.PRNGKey(n)
        logits = jax.random.normal(key, (1, n, CLASSES), jnp.float32) * 2
        labels = jax.random.randint(jax.random.fold_in(key, 1), (1, n // 5), 0, BLANK)
        n_frames = jnp.array([n], jnp.int32)
        n_labels = jnp.array([n // 5], jnp.int32)
        results = {}
        for impl in impls:
            fn = make(impl)
            args_ = (logits, n_frames, labels, n_labels)
            try:
                loss, grad = jax.block_until_ready(fn(*args_))
                ms = time_ms(fn, *args_, warmup=1, reps=args.reps)
            except Exception as e:  # noqa: BLE001 - report and go on
                print(f"{impl} T={n}: FAILED {type(e).__name__}: {e}"[:600], flush=True)
                continue
            results[impl] = (float(loss), grad)
            mem = temp_bytes(fn, *args_)
            rows.append(dict(impl=impl, frames=n, labels=n // 5, fwdbwd_ms=ms,
                             loss=float(loss), temp_MiB="" if mem is None else mem / 2**20))
            print(rows[-1], flush=True)
        ref_loss = results.get("optax", (None,))[0]
        ref_grad = results.get("xla", (None, None))[1]
        for row in rows:
            if row["frames"] != n:
                continue
            if ref_loss is not None:
                row["rel_loss_vs_optax"] = abs(row["loss"] - ref_loss) / abs(ref_loss)
            if ref_grad is not None and row["impl"] in results:
                g = results[row["impl"]][1]
                row["max_grad_diff_vs_xla"] = float(jnp.max(jnp.abs(g - ref_grad)))
            if n == 45000:
                row["x_faster_than_torch_anchor"] = ANCHOR_TORCH_MS / row["fwdbwd_ms"]
                row["x_faster_than_optax_anchor"] = ANCHOR_OPTAX_MS / row["fwdbwd_ms"]
        if not args.no_torch:
            try:
                ms = torch_time(logits, labels, args.reps)
            except Exception as e:  # noqa: BLE001
                print(f"torch T={n}: FAILED {e}"[:300], flush=True)
                ms = None
            if ms is not None:
                rows.append(dict(impl="torch (cuda)", frames=n, labels=n // 5, fwdbwd_ms=ms))
                print(rows[-1], flush=True)
    print(f"\n{header()}\nCTC loss+grad, batch 1, {CLASSES} classes, labels = frames // 5")
    print(table(rows, ["impl", "frames", "labels", "fwdbwd_ms", "rel_loss_vs_optax",
                       "max_grad_diff_vs_xla", "temp_MiB", "x_faster_than_torch_anchor",
                       "x_faster_than_optax_anchor"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
