"""Summarise `device_train_parity.sh seed N` outputs: loss against recordings seen for both
trainers and every seed in one figure, and held-out WER per context (mean ± std over seeds),
with whether the trainers' difference lies within the spread between seeds.

    python scripts/original_replay/parity_report.py OUT_CALL1 OUT_CALL2 ... --out docs/parity

Reads, per call folder, seed<S>/original_steps.npz (run_original.py: logged_loss,
cur_podcast), seed<S>/ours_metrics.jsonl (`lcasr-jax train` with log.every_steps=1: loss;
recordings seen: its own when logged, else the original's at the same step, as both follow
the original's plan) and seed<S>/eval_<who>_<ctx>/*.json (`lcasr-jax eval`: overall.wer).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def curves(seed_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{trainer: (recordings seen, loss)} of one seed's folder."""
    out = {}
    orig = seed_dir / "original_steps.npz"
    if orig.is_file():
        z = np.load(orig)
        out["original"] = (z["cur_podcast"].astype(float), z["logged_loss"].astype(float))
    ours = seed_dir / "ours_metrics.jsonl"
    if ours.is_file():
        rows = [json.loads(x) for x in ours.read_text().splitlines() if x.strip()]
        rows = [r for r in rows if "loss" in r]
        steps = np.array([r["step"] for r in rows], int)
        if all("recordings_seen" in r for r in rows):
            x = np.array([r["recordings_seen"] for r in rows], float)
        elif "original" in out and steps.max() <= len(out["original"][0]):
            x = out["original"][0][steps - 1]  # the same plan: the original's count per step
        else:
            x = steps.astype(float)
        out["ours"] = (x, np.array([float(r["loss"]) for r in rows], float))
    return out


def wers(seed_dir: Path) -> dict[tuple[str, int], float]:
    """{(trainer, context frames): overall WER %} of one seed's folder."""
    out = {}
    for d in seed_dir.glob("eval_*_*"):
        _, who, ctx = d.name.split("_", 2)
        for j in d.glob("*.json"):
            doc = json.loads(j.read_text())
            if "overall" in doc:
                out[(who, int(ctx))] = 100.0 * float(doc["overall"]["wer"])
    return out


def _ms(v: list[float]) -> str:
    """mean ± sample std (0 for one value)."""
    return f"{np.mean(v):.2f} ± {np.std(v, ddof=1) if len(v) > 1 else 0.0:.2f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("calls", nargs="+", help="folders returned by the seed calls ($OUT)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = sorted({d for c in args.calls for d in Path(c).glob("seed*") if d.is_dir()})
    table: dict[tuple[str, int], list[float]] = {}
    all_curves = {}
    for d in seeds:
        all_curves[d.name] = curves(d)
        for key, w in wers(d).items():
            table.setdefault(key, []).append(w)
    lines = ["| context | original WER % | ours WER % | |difference| | seed spread | within |",
             "|---|---|---|---|---|---|"]
    for ctx in sorted({c for _, c in table}):
        o, u = table.get(("original", ctx), []), table.get(("ours", ctx), [])
        if not o or not u:
            continue
        spread = max(np.ptp(o) if len(o) > 1 else 0.0, np.ptp(u) if len(u) > 1 else 0.0)
        diff = abs(np.mean(o) - np.mean(u))
        lines.append(f"| {ctx / 100:g} s | {_ms(o)} | {_ms(u)} | {diff:.2f} | {spread:.2f} | "
                     f"{'yes' if diff <= spread else 'no'} |")
    (out / "parity_wer.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(8, 4))
    for seed, cs in all_curves.items():
        for who, (x, y) in cs.items():
            ok = np.isfinite(y)
            ax.plot(x[ok], y[ok], lw=0.8, ls="-" if who == "original" else "--",
                    label=f"{who} {seed}")
    ax.set_xlabel("recordings seen")
    ax.set_ylabel("training loss (CTC sum / frames x 100)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "parity_loss.png", dpi=120)


if __name__ == "__main__":
    main()
