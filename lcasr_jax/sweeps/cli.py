"""`lcasr-jax sweep`: run an evaluation grid from a sweep config (`sweeps.config`), then
its summary tables and figure (`figures.context`)."""

from __future__ import annotations

import sys
from pathlib import Path

from lcasr_jax.eval import report
from lcasr_jax.eval.hosts import Hosts
from lcasr_jax.sweeps.grid import GridError, expand
from lcasr_jax.sweeps.run import prepare_synthetic, run_sweep

PROG = "lcasr-jax sweep"


def main(argv: list[str] | None = None) -> int:
    import argparse

    from lcasr_jax.configs import ConfigError, load_config, split_overrides

    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(
        prog=PROG, description="Run an evaluation grid from an ml-collections config "
        "(resumable: rerun the same command to finish a killed sweep).",
        epilog="Any config field can be overridden with --config.FIELD.PATH=VALUE, e.g. "
               "--config.contexts='(1024,2048)' --config.datasets.tedlium.data_dir=DIR.")
    p.add_argument("--config", required=True, metavar="FILE.py[:ARG]",
                   help="sweep config file (experiments/sweeps/)")
    p.add_argument("--out", required=True, type=Path, help="sweep directory (cells/, "
                   "results.csv: overall rows, results_recordings.csv, checksums.json, "
                   "summary.md, summary.csv, wer_vs_context.png/.pdf/.svg)")
    p.add_argument("--results-table", type=Path, help="also add new rows to this table (a "
                   "cell already there replaces its rows)")
    p.add_argument("--title", default="", help="figure title")
    p.add_argument("--progress", action="store_true", help="per-recording progress bars")
    p.add_argument("--quiet", action="store_true", help="no line per cell")
    try:
        rest, overrides = split_overrides(argv)
        args = p.parse_args(rest)
        cfg = load_config(args.config, overrides)
        cells = expand(cfg)
    except (ConfigError, GridError) as e:
        print(f"{PROG}: bad arguments: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help (0) or argparse's usage + error (2)
        return int(e.code or 0)
    try:
        from lcasr_jax.distributed import maybe_initialize_distributed
        from lcasr_jax.figures.context import write_report

        maybe_initialize_distributed()
        hosts = Hosts.current()
        prepare_synthetic(cfg, hosts)
        result = run_sweep(cells, args.out, batch_size=int(cfg.get("batch_size", 8)),
                           results_table=args.results_table, progress=not args.quiet,
                           inner_progress=args.progress, hosts=hosts,
                           log=lambda line: print(line, flush=True))
        if result.table is None:  # not process 0
            return 0
        report.atomic_write(args.out / "config.json", cfg.to_json(indent=1) + "\n")
        written = write_report(report.read_table(result.table),
                               args.out / "wer_vs_context.png", args.title)
    except (ValueError, FileNotFoundError, ImportError, RuntimeError, OSError) as e:
        print(f"{PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    print(f"sweep: {len(result.computed)} cells evaluated, {len(result.skipped)} finished "
          f"earlier; wrote {result.table}, " + ", ".join(str(w) for w in written), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
