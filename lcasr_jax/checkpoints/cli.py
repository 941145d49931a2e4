"""`lcasr-jax convert SRC DEST_DIR`, `lcasr-jax export MODEL_DIR DEST.pt` and
`lcasr-jax models` (the paper's released checkpoints)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from lcasr_jax import validate


def _run(argv: list[str] | None, prog: str, description: str, src_help: str, dest_help: str,
         action: Callable[[argparse.Namespace], Path], overwrite: bool = False) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("src", help=src_help)
    parser.add_argument("dest", help=dest_help)
    if overwrite:
        parser.add_argument("--overwrite", action="store_true", help="replace an existing DEST")
    args = parser.parse_args(argv)
    from lcasr_jax.checkpoints.torch_format import CheckpointError

    return validate.report(prog, lambda: action(args), (CheckpointError, OSError, ValueError))


def main(argv: list[str] | None = None) -> int:
    """Released checkpoint -> converted model dir (orbax variables + config.json)."""
    from lcasr_jax.checkpoints import convert

    return _run(argv, "lcasr-jax convert",
                "Convert a released lcasr PyTorch checkpoint into a Flax model dir "
                "(orbax variables + readable config.json).",
                "released checkpoint: a .pt, a folder holding one, or "
                "hf://OWNER/REPO/FOLDER[@REVISION]",
                "output directory (must not exist or be empty)",
                lambda a: convert.torch_to_flax(a.src, a.dest, overwrite=a.overwrite),
                overwrite=True)


def export_main(argv: list[str] | None = None) -> int:
    """Converted (or trained) model dir -> checkpoint in the released PyTorch format."""
    from lcasr_jax.checkpoints import convert

    return _run(argv, "lcasr-jax export",
                "Write a converted (or trained) model dir as a checkpoint in the released "
                "PyTorch format, loadable by the original code.",
                "model directory (config.json + variables/)", "output .pt file",
                lambda a: convert.flax_to_torch(a.src, a.dest))


def models_main(argv: list[str] | None = None) -> int:
    """Print the catalogue of the paper's released models (a table, or JSON)."""
    parser = argparse.ArgumentParser(
        prog="lcasr-jax models",
        description="The paper's released checkpoints (the original README's table) and "
        "their Hugging Face names.")
    parser.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    args = parser.parse_args(argv)
    from lcasr_jax.checkpoints import catalogue

    if args.json:
        import json

        print(json.dumps([m.to_dict() for m in catalogue.MODELS], indent=1))
    else:
        print(catalogue.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
