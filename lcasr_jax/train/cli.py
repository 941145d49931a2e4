"""`lcasr-jax train --config=experiments/x.py --config.optim.lr=1e-3 --workdir DIR`.

Any config field can be overridden with --config.<path>=<value>. Re-running the same command
on the same workdir resumes from its newest complete checkpoint.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from absl import flags
from ml_collections import config_flags


def _flags() -> flags.FlagValues:
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "ml-collections config file (.py)",
                                    flag_values=fv, lock_config=True)
    flags.DEFINE_string("workdir", None, "checkpoints, metrics.jsonl, tensorboard/",
                        flag_values=fv)
    flags.DEFINE_float("time_limit_s", -1.0, "stop (and checkpoint) after this many seconds",
                       flag_values=fv)
    return fv


def main(argv: list[str] | None = None) -> int:
    fv = _flags()
    try:
        fv(["lcasr-jax train", *(sys.argv[1:] if argv is None else argv)])
        if fv.config is not None:
            fv.config.to_dict()  # a config file that failed to load raises only when used
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError, OSError) as e:
        msg = " ".join(str(e).split())  # one line, whatever absl / ml_collections wrote
        print(f"lcasr-jax train: bad arguments: {msg}", file=sys.stderr)
        return 2
    if fv.config is None or not fv.workdir:
        print("lcasr-jax train: --config=FILE.py and --workdir=DIR are required", file=sys.stderr)
        return 2
    cfg = fv.config
    if fv.time_limit_s > 0:
        with cfg.unlocked():
            cfg.train.time_limit_s = fv.time_limit_s
    import jax

    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):  # each schedule stage compiles once
        jax.config.update("jax_compilation_cache_dir",
                          str(Path(fv.workdir).absolute() / "jax_cache"))
    from lcasr_jax.distributed import maybe_initialize_distributed

    maybe_initialize_distributed()
    from lcasr_jax.train.loop import train

    try:
        summary = train(cfg, fv.workdir)
    except (ValueError, OSError) as e:
        print(f"lcasr-jax train: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
