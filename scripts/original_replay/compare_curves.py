"""Compare the original's per-step loss (run_original.py's steps.npz) with this project's
(run_ours.py's JSON lines): maximum and median relative deviation, and both curves in one
figure (when matplotlib is importable).

    python scripts/original_replay/compare_curves.py --replay DIR --ours FILE.jsonl \
        [--ours-key loss] --out DIR
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def load_ours(path: Path, key: str) -> np.ndarray:
    """The per-step values of `key` (nan where missing or null)."""
    vals = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if key not in row:
            raise SystemExit(f"{path}: no {key!r} in step {row.get('step')} "
                             f"(has {sorted(row)})")
        vals.append(np.nan if row[key] is None else float(row[key]))
    return np.array(vals)


def deviation(orig: np.ndarray, ours: np.ndarray) -> dict[str, float]:
    """Relative deviation |ours - orig| / |orig| over the steps where both are finite."""
    n = min(len(orig), len(ours))
    a, b = orig[:n], ours[:n]
    ok = np.isfinite(a) & np.isfinite(b)
    rel = np.abs(b[ok] - a[ok]) / np.maximum(np.abs(a[ok]), 1e-12)
    return {"steps": int(n), "compared": int(ok.sum()),
            "max_rel": float(rel.max()) if ok.any() else float("nan"),
            "median_rel": float(np.median(rel)) if ok.any() else float("nan"),
            "first_rel_gt_1pct": int(np.flatnonzero(rel > 0.01)[0] + 1) if (rel > 0.01).any()
            else None}


def plot(orig: np.ndarray, ours: np.ndarray, path: Path, title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(np.arange(1, len(orig) + 1), orig, label="original (torch)", lw=1.2)
    ax.plot(np.arange(1, len(ours) + 1), ours, label="lcasr-jax", lw=1.0, ls="--")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (CTC sum / frames x 100)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replay", required=True)
    ap.add_argument("--ours", required=True)
    ap.add_argument("--ours-key", default="loss")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    orig = np.load(Path(args.replay) / "steps.npz")["logged_loss"].astype(np.float64)
    ours = load_ours(Path(args.ours), args.ours_key)
    meta = json.loads((Path(args.replay) / "meta.json").read_text())
    dev = deviation(orig, ours)
    dev.update(original_dtype=meta["dtype"], device=meta["device"], torch=meta["torch"])
    figure = plot(orig, ours, out / "loss_curves.png",
                  f"replay, {meta['dtype']}: max rel. deviation {dev['max_rel']:.2e}")
    dev["figure"] = "loss_curves.png" if figure else None
    (out / "deviation.json").write_text(json.dumps(dev, indent=1))
    print(json.dumps(dev, indent=1))


if __name__ == "__main__":
    main()
