"""Summarise `device_train_parity.sh seed N` outputs: loss against recordings seen for both
trainers and every seed in one figure, and held-out WER per context (mean ± std over seeds),
with whether the trainers' difference lies within the spread between seeds.

    python scripts/original_replay/parity_report.py OUT_CALL1 OUT_CALL2 ... --out docs/parity \
        [--self-run SEED1_PERTURBED/steps.npz]

Reads, per call folder, seed<S>/original_steps.npz (run_original.py: logged_loss,
cur_podcast), seed<S>/ours_metrics.jsonl (`lcasr-jax train` with log.every_steps=1: loss;
recordings seen: its own when logged, else the original's at the same step, as both follow
the original's plan) and seed<S>/eval_<who>_<ctx>/*.json (`lcasr-jax eval`: overall.wer).
Writes parity_wer.md, parity_loss.json (mean loss per window of recordings seen: the
trainers' difference against the spread between seeds; per-step differences on the same
batches) and parity_loss.png.
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


def window_means(x: np.ndarray, y: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean of the finite y whose x falls in each [edges[i], edges[i+1]); NaN where none."""
    ok = np.isfinite(y)
    idx = np.digitize(x[ok], edges) - 1
    return np.array([y[ok][idx == i].mean() if np.any(idx == i) else np.nan
                     for i in range(len(edges) - 1)])


def loss_spread(all_curves: dict, width: float) -> dict:
    """Mean loss per window of `width` recordings seen, per trainer and seed, over the
    windows every curve reaches; per window the trainers' difference (their seed means)
    against the spread between seeds (the larger of the two trainers' max - min)."""
    ends = [x.max() for cs in all_curves.values() for x, _ in cs.values() if len(x)]
    if not ends:
        return {}
    edges = np.arange(0.0, min(ends) + 1e-9, width)
    means: dict[str, list[np.ndarray]] = {}
    for cs in all_curves.values():
        for who, (x, y) in cs.items():
            means.setdefault(who, []).append(window_means(x, y, edges))
    if set(means) != {"original", "ours"} or min(len(v) for v in means.values()) < 2:
        return {}
    orig, ours = np.array(means["original"]), np.array(means["ours"])
    diff = np.abs(orig.mean(0) - ours.mean(0))
    spread = np.maximum(np.ptp(orig, 0), np.ptp(ours, 0))
    ok = np.isfinite(diff) & np.isfinite(spread)
    return {"window_recordings": width, "windows": int(ok.sum()),
            "up_to_recordings": float(edges[-1]),
            "within_seed_spread": int((diff[ok] <= spread[ok]).sum()),
            "relative_difference_median": float(np.median(diff[ok] / orig.mean(0)[ok])),
            "relative_seed_spread_median": float(np.median(spread[ok] / orig.mean(0)[ok])),
            "per_window": [{"from": float(edges[i]), "original": orig[:, i].tolist(),
                            "ours": ours[:, i].tolist()} for i in np.flatnonzero(ok)]}


def _ms(v: list[float]) -> str:
    """mean ± sample std (0 for one value)."""
    return f"{np.mean(v):.2f} ± {np.std(v, ddof=1) if len(v) > 1 else 0.0:.2f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("calls", nargs="+", help="folders returned by the seed calls ($OUT)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--window", type=float, default=16.0,
                    help="recordings seen per window of the loss comparison")
    ap.add_argument("--self-run", default=None, metavar="STEPS_NPZ",
                    help="steps.npz of the original's seed-1 run again with its initial "
                         "weights perturbed (run_original.py --perturb-ulps): its per-step "
                         "difference from seed 1 is the original's own float32 sensitivity")
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
    spread = loss_spread(all_curves, args.window)
    same = same_batches(all_curves)
    if args.self_run and "original" in all_curves.get("seed1", {}):
        same["original vs itself, seed1, initial weights perturbed"] = relative_difference(
            all_curves["seed1"]["original"][1],
            np.load(args.self_run)["logged_loss"].astype(float))
    for name, rel in same.items():
        r = rel[np.isfinite(rel)]
        spread.setdefault("per_step_relative_difference", {})[name] = {
            "steps": int(len(r)), "median": float(np.median(r)),
            "p90": float(np.percentile(r, 90)), "max": float(r.max())}
    (out / "parity_loss.json").write_text(json.dumps(spread, indent=1) + "\n")
    for name, d in spread.get("per_step_relative_difference", {}).items():
        print(f"per-step relative loss difference, {name}: median {d['median']:.2%}, "
              f"90th pct {d['p90']:.2%} over {d['steps']} steps")
    if "windows" in spread:  # two seeds or more
        print(f"loss, {spread['windows']} windows of {args.window:g} recordings up to "
              f"{spread['up_to_recordings']:g}: trainers' difference within the seed spread "
              f"in {spread['within_seed_spread']}; median relative difference "
              f"{spread['relative_difference_median']:.1%}, seed spread "
              f"{spread['relative_seed_spread_median']:.1%}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5))
    for seed, cs in all_curves.items():  # window means: a batch's steps share one count
        for who, (x, y) in cs.items():
            edges = np.arange(0.0, x.max() + args.window, args.window / 2)
            ys = window_means(x, y, edges)
            has = np.isfinite(ys)
            top.plot(edges[:-1][has], ys[has], lw=1, marker=".",
                     ls="-" if who == "original" else "--", label=f"{who} {seed}")
    top.set_xlabel(f"recordings seen (mean loss per {args.window / 2:g} recordings)")
    top.set_ylabel("training loss")
    top.legend(fontsize=7)
    for name, rel in same.items():
        bottom.plot(_smooth(rel, 50), lw=1, label=name)
    bottom.set_xlabel("optimizer step")
    bottom.set_ylabel("relative loss difference\n(50-step running mean)")
    bottom.set_yscale("log")
    bottom.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "parity_loss.png", dpi=120)


def _smooth(v: np.ndarray, n: int) -> np.ndarray:
    return np.convolve(v, np.ones(n) / n, mode="valid") if len(v) >= n else v


def relative_difference(ref: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per-step |other - ref| / ref over the steps both have; NaN where not finite."""
    n = min(len(ref), len(other))
    rel = np.abs(other[:n] - ref[:n]) / ref[:n]
    return np.where(np.isfinite(rel), rel, np.nan)


def same_batches(all_curves: dict) -> dict[str, np.ndarray]:
    """Per-step |a - b| / a. Trainers of one seed see the same batches at each step (ours
    follows the original's plan), so their difference is the framework's; the original's
    seeds against each other (other batches, other order) is the spread between seeds."""
    out = {}
    for seed, cs in all_curves.items():
        if {"original", "ours"} <= set(cs):
            out[f"ours vs original, {seed} (same batches)"] = relative_difference(
                cs["original"][1], cs["ours"][1])
    origs = [cs["original"][1] for cs in all_curves.values() if "original" in cs]
    if len(origs) >= 2:
        out["original seed vs seed"] = relative_difference(origs[0], origs[1])
    return out

if __name__ == "__main__":
    main()
