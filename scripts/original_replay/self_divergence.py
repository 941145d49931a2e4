"""How far the original's training drifts from ITSELF under float32 rounding-size changes.

Runs run_original.py again in variants that change nothing but float32 rounding, and compares
each with a reference dump (the fixture) step by step:

- `threads1`: the same weights and batches on 1 torch CPU thread (the reference ran on this
  machine's default, 2): only the order of float32 reductions changes;
- `ulp`: every initial parameter multiplied by 1 + u·2^-23, u uniform in [-1, 1] (about one
  ulp; `--perturb-ulps 2`), default threads.

Writes OUT/self_divergence.npz (format: tests/fixtures/original_replay/README.md):
`variants` (V,), `loss_rel` and `grad_norm_rel` (V, S) (|variant - reference| / |reference|,
0 at skipped steps), `skipped_equal` (V,), `snapshot_steps` (K,), `names` (N,) and
`param_rel` (V, K, N) (||variant - reference|| / ||reference|| per state_dict tensor).

    python scripts/original_replay/self_divergence.py --original /work/original \
        --reference tests/fixtures/original_replay --out tests/fixtures/original_replay
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
VARIANTS = {"threads1": ["--threads", "1"], "ulp": ["--perturb-ulps", "2"]}


def rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def compare(run: Path, ref: Path) -> dict:
    """Per-step loss / grad-norm and per-snapshot per-tensor parameter divergence."""
    a, b = np.load(run / "steps.npz"), np.load(ref / "steps.npz")
    ok = ~b["skipped"].astype(bool)
    out = {"skipped_equal": bool(np.array_equal(a["skipped"], b["skipped"]))}
    for key, name in (("ctc_sum", "loss_rel"), ("grad_norm", "grad_norm_rel")):
        d = np.zeros(len(ok))
        d[ok] = np.abs(a[key][ok] - b[key][ok]) / np.abs(b[key][ok])
        out[name] = d
    sa, sb = np.load(run / "snapshots.npz"), np.load(ref / "snapshots.npz")
    steps = sorted({int(f.split("/")[0][4:]) for f in sb.files})
    names = [f.split("/", 1)[1] for f in sb.files if f.startswith(f"step{steps[0]}/")]
    names = [n for n in names if sb[f"step{steps[0]}/{n}"].dtype.kind == "f"]
    out["snapshot_steps"], out["names"] = np.array(steps), np.array(names)
    out["param_rel"] = np.array([[rel(sa[f"step{k}/{n}"], sb[f"step{k}/{n}"]) for n in names]
                                 for k in steps])
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--original", required=True)
    ap.add_argument("--reference", required=True, help="the run_original.py dump to compare to")
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args(argv)
    ref = Path(args.reference).resolve()
    snaps = json.loads((ref / "meta.json").read_text())["snapshot_steps"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        for name, extra in VARIANTS.items():
            out = work / name
            subprocess.run([sys.executable, str(HERE / "run_original.py"), "--original",
                            args.original, "--out", str(out), "--work", str(work / f"{name}_w"),
                            "--no-init-stats", "--snapshots", ",".join(map(str, snaps)),
                            *extra], check=True)
            results[name] = compare(out, ref)
    first = results[next(iter(results))]
    np.savez_compressed(
        Path(args.out) / "self_divergence.npz", variants=np.array(list(results)),
        skipped_equal=np.array([r["skipped_equal"] for r in results.values()]),
        loss_rel=np.stack([r["loss_rel"] for r in results.values()]),
        grad_norm_rel=np.stack([r["grad_norm_rel"] for r in results.values()]),
        snapshot_steps=first["snapshot_steps"], names=first["names"],
        param_rel=np.stack([r["param_rel"] for r in results.values()]))
    for name, r in results.items():
        print(f"{name}: loss rel max {r['loss_rel'].max():.2e}, grad norm rel max "
              f"{r['grad_norm_rel'].max():.2e}; params (max over tensors) " + ", ".join(
                  f"step {k} {p.max():.2e}" for k, p in zip(r["snapshot_steps"], r["param_rel"],
                                                            strict=True)))


if __name__ == "__main__":
    main()
