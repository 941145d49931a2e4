"""`lcasr-jax train --config experiments/paper.py:rb_6l_768d_6h --workdir DIR [--config.a.b=V]`.

Any config field can be overridden with --config.<path>=<value> (`lcasr_jax.configs`).
Re-running the same command on the same workdir resumes from its newest complete checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from lcasr_jax.configs import ConfigError, load_config, split_overrides

PROG = "lcasr-jax train"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, as for a bad config (not the usage)
        self.exit(2, f"{PROG}: bad arguments: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG, description="Train a model from an ml-collections config file.",
        epilog="Any config field can be overridden with --config.FIELD.PATH=VALUE "
               "(parsed as the field's type), e.g. --config.optim.lr=1e-3.")
    p.add_argument("--config", required=True, metavar="FILE.py[:ARG]",
                   help="config file; ARG goes to its get_config(ARG) (a family's variant)")
    p.add_argument("--workdir", required=True,
                   help="checkpoints, metrics.jsonl, tensorboard/, the exported model")
    p.add_argument("--time-limit-s", "--time_limit_s", dest="time_limit_s", type=float,
                   help="stop (and checkpoint) after this many seconds (> 0; default: the "
                   "config's train.time_limit_s, -1 = none)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        rest, overrides = split_overrides(argv)
    except ConfigError as e:
        print(f"{PROG}: bad arguments: {e}", file=sys.stderr)
        return 2
    parser = _parser()
    try:
        args = parser.parse_args(rest)
    except SystemExit as e:  # --help (0) or argparse's usage + one-line error (2)
        return int(e.code or 0)
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as e:
        print(f"{PROG}: bad arguments: {e}", file=sys.stderr)
        return 2
    if args.time_limit_s is not None:
        from lcasr_jax.validate import check, number_above

        try:
            check("--time-limit-s", args.time_limit_s, number_above(0))
        except ValueError as e:
            print(f"{PROG}: bad arguments: {e}", file=sys.stderr)
            return 2
        cfg.train.time_limit_s = args.time_limit_s
    from lcasr_jax.train import gpu_compile

    gpu_compile.apply(cfg.train.gpu_compile)  # before jax starts its backend
    import jax

    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):  # each schedule stage compiles once
        jax.config.update("jax_compilation_cache_dir",
                          str(Path(args.workdir).absolute() / "jax_cache"))
    from lcasr_jax.distributed import maybe_initialize_distributed

    maybe_initialize_distributed()
    from lcasr_jax.train.loop import train

    try:
        summary = train(cfg, args.workdir)
    except (ValueError, OSError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
