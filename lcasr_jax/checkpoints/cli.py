"""`lcasr-jax convert SRC.pt DEST_DIR`: released checkpoint -> converted model dir."""

from __future__ import annotations

import argparse
import sys

from lcasr_jax.checkpoints.torch_format import CheckpointError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lcasr-jax convert",
        description="Convert a released lcasr PyTorch checkpoint into a Flax model dir "
                    "(orbax variables + readable config.json).")
    parser.add_argument("src", help="released checkpoint (.pt)")
    parser.add_argument("dest", help="output directory (must not exist or be empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DEST")
    args = parser.parse_args(argv)
    from lcasr_jax.checkpoints.convert import torch_to_flax

    try:
        dest = torch_to_flax(args.src, args.dest, overwrite=args.overwrite)
    except (CheckpointError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
