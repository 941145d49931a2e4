"""`lcasr-jax` command line: one sub-command per job, each owned by its own module.

Each entry names `module` or `module:function`; the function (default `main`) takes
`argv: list[str]`, parses it itself and returns an exit code.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("lcasr_jax.demo", "the main job: evaluate the shipped model on held-out speech"),
    "convert": ("lcasr_jax.checkpoints.cli", "convert a released PyTorch checkpoint"),
    "export": ("lcasr_jax.checkpoints.cli:export_main", "write a model dir back as a .pt"),
    "models": ("lcasr_jax.checkpoints.cli:models_main", "the paper's released checkpoints"),
    "data": ("lcasr_jax.data.cli", "make and inspect long-form data (synth, build, ...)"),
    "train": ("lcasr_jax.train.cli", "train a model from an ml-collections config"),
    "eval": ("lcasr_jax.eval.cli", "long-form WER evaluation"),
    "transcribe": ("lcasr_jax.eval.transcribe", "transcribe audio files with timestamps"),
    "sweep": ("lcasr_jax.eval.sweep", "run an evaluation grid (resumable) with its figure"),
    "plot": ("lcasr_jax.eval.plot", "figure and summary tables of results tables"),
    "analyze": ("lcasr_jax.analysis.cli", "context use: attention distance, attribution, figures"),
}


def _usage() -> str:
    lines = ["usage: lcasr-jax COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<11} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"lcasr-jax: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, _, function = COMMANDS[name][0].partition(":")
    entry = getattr(importlib.import_module(module_name), function or "main")
    return int(entry(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
