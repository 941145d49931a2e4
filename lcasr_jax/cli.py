"""`lcasr-jax` command line: one sub-command per job, each owned by its own module.

Each entry names `module` or `module:function`; the function (default `main`) takes
`argv: list[str]`, parses it itself and returns an exit code.

Around every command: SIGTERM is turned into KeyboardInterrupt (so `kill` cleans up as
Ctrl-C does: temp files removed, training checkpointed); an interrupted command exits 130
with one line; a reader that closed the pipe early (`... | head -1`) ends it quietly.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("lcasr_jax.demo", "the main job: evaluate the shipped model on held-out speech"),
    "convert": ("lcasr_jax.checkpoints.cli", "convert a released PyTorch checkpoint"),
    "export": ("lcasr_jax.checkpoints.cli:export_main", "write a model dir back as a .pt"),
    "models": ("lcasr_jax.checkpoints.cli:models_main", "the paper's released checkpoints"),
    "data": ("lcasr_jax.data.cli", "make and inspect long-form data (synth, build, ...)"),
    "train": ("lcasr_jax.train.cli", "train a model from an ml-collections config"),
    "eval": ("lcasr_jax.eval.cli", "long-form WER evaluation"),
    "transcribe": ("lcasr_jax.eval.cli:transcribe_main", "transcribe audio files with timestamps"),
    "sweep": ("lcasr_jax.sweeps.cli", "run an evaluation grid (resumable) with its figure"),
    "plot": ("lcasr_jax.figures.cli", "the paper's figures from results tables and arrays"),
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
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(entry(rest) or 0)
    except KeyboardInterrupt:
        print(f"lcasr-jax {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout's reader is gone: send further output nowhere so the exit flush is silent
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
