"""This project's trainer on the batches of a replay of the original (run_original.py's output).

Starts from the original's initial weights (`init.pt`, converted), builds this project's
config from the original's YAML (`lcasr_jax.train.original.config_from_original`: the
original's batch order and lockstep walk, skip-step), plans the steps over the same
audio_txt_pairs.json (`OriginalPlan` over `OriginalPairs`) and trains
(`train_steps`), writing each step's metrics as JSON lines. Used by
scripts/device_train_parity.sh (issue 21 item 4a); compare with compare_curves.py.

    python scripts/original_replay/run_ours.py --replay DIR [--work DIR/work] \
        [--dtype bfloat16] [--steps N] [--set train.position_dtype=float32 ...] --out FILE

`--set KEY=VALUE` overrides a config field (dotted path; the value is parsed as JSON when it
can be, else kept as a string), on top of the fidelity options config_from_original sets.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any


def apply_overrides(cfg: Any, pairs: list[str]) -> None:
    """Set cfg fields from KEY=VALUE strings (dotted keys, JSON values when parseable)."""
    for item in pairs:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node, *path = key.split(".")
        target = cfg
        for part in [node, *path][:-1]:
            target = target[part]
        target[([node, *path])[-1]] = value


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The scalar entries of a metrics dict as floats."""
    out = {}
    for k, v in metrics.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replay", required=True, help="run_original.py --out folder")
    ap.add_argument("--work", default=None, help="its --work folder (default REPLAY/work)")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--out", required=True, help="JSON-lines file of per-step metrics")
    args = ap.parse_args(argv)

    from omegaconf import OmegaConf

    from lcasr_jax.checkpoints.convert import read_released

    try:
        from lcasr_jax.data.sources.original_pairs import OriginalPairs
        from lcasr_jax.train.original import (
            OriginalPlan,
            config_from_original,
            durations_of,
            initial_state,
            plan_steps,
            train_steps,
        )
    except ImportError as e:  # the trainer side of issue 21 (branch fidtrain) not merged
        raise SystemExit(f"run_ours: no original-order trainer in this checkout ({e})") from None

    replay = Path(args.replay)
    work = Path(args.work) if args.work else replay / "work"
    original_cfg = OmegaConf.to_container(OmegaConf.load(work / "config.yaml"), resolve=True)
    cfg = config_from_original(original_cfg, compute_dtype=args.dtype)
    apply_overrides(cfg, args.overrides)
    from lcasr_jax.train import gpu_compile

    gpu_compile.apply(cfg.train.gpu_compile)  # before the first device is touched
    _, variables, _, _ = read_released(replay / "init.pt")
    source = OriginalPairs.from_json(original_cfg["data"]["path"])
    plan = OriginalPlan(source, durations_of(source), cfg)
    state = initial_state(cfg, variables)
    planned_steps: list[Any] = []

    def planned() -> Any:
        for p in plan_steps(plan):
            planned_steps.append(p)
            yield p

    t0, i = time.time(), 0
    with open(args.out, "w") as f:
        for i, (_, metrics) in enumerate(train_steps(cfg, state, planned()), start=1):
            p = planned_steps.pop(0)
            row = {"step": i, "lr": p.lr, "seq_len": p.seq_len, "batch_size": p.batch_size,
                   "rows": len(p.chunk.rows), "recordings_seen": p.recordings_seen,
                   "epoch": p.epoch, "time_s": round(time.time() - t0, 3), **scalars(metrics)}
            f.write(json.dumps({k: (str(v) if isinstance(v, float) and not math.isfinite(v)
                                    else v) for k, v in row.items()}) + "\n")
            if args.steps is not None and i >= args.steps:
                break
    print(f"{i} steps -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
