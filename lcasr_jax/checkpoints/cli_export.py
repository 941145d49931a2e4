"""`lcasr-jax export MODEL_DIR DEST.pt`: converted model dir -> released-format checkpoint."""

from __future__ import annotations

import argparse
import sys

from lcasr_jax.checkpoints.torch_format import CheckpointError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lcasr-jax export",
        description="Write a converted (or trained) model dir as a checkpoint in the released "
                    "PyTorch format, loadable by the original code.")
    parser.add_argument("src", help="model directory (config.json + variables/)")
    parser.add_argument("dest", help="output .pt file")
    args = parser.parse_args(argv)
    from lcasr_jax.checkpoints.convert import flax_to_torch

    try:
        dest = flax_to_torch(args.src, args.dest)
    except (CheckpointError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
