"""The initial weights a fresh run of this project's trainer starts from, for both trainers.

Writes DEST/model (a float32 model dir: `lcasr-jax train --config.train.init_from=DEST/model`
starts from it with a fresh optimizer, as a fresh run of the same config and seed would) and
DEST/init.pt (the same weights in the released format: `run_original.py --init-weights`), so
that the original's trainer and this project's start from one point. Made for issue 21's
end-to-end seeds: with the original's own init (torch's defaults) a small model stays in
CTC's blank phase far longer than with this project's (lecun normal; benchmarks/RESULTS.md,
2026-12-08).

    python scripts/original_replay/make_init.py --config experiments/paper.py:rb_6l_256d_8h \\
        --set seed=1 model.param_init=lecun --out /tmp/init_seed1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="FILE.py[:ARG], as `lcasr-jax train`")
    ap.add_argument("--set", nargs="*", default=[], metavar="A.B=V", help="config overrides")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from lcasr_jax.checkpoints.cli import export_main
    from lcasr_jax.configs import load_config
    from lcasr_jax.train.resume import export_model
    from lcasr_jax.train.state import build_model, run_init_variables

    cfg = load_config(args.config, args.set)
    variables = run_init_variables(build_model(cfg), int(cfg.seed))
    out = Path(args.out)
    export_model(variables, cfg, out / "model")
    rc = export_main([str(out / "model"), str(out / "init.pt")])
    if rc:
        raise SystemExit(rc)
    print(f"initial weights (seed {cfg.seed}, init {cfg.model.param_init}) -> {out}")


if __name__ == "__main__":
    main()
