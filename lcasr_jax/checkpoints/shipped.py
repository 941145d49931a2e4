"""Where the shipped default model lives, and its stand-in when it is absent.

DEFAULT_MODEL is the small model trained on the synthetic corpus (README, "Training"), a
converted model dir. If it is missing (e.g. removed to save space), the random-weight parity
fixture (rotary_ln) under the shared fixtures is used instead, announced on stderr (its WER
is ~100%); the tests use that path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "assets" / "default_model"
STAND_IN = Path("fixtures") / "parity" / "rotary_ln" / "checkpoint.pt"


def shared_dir() -> Path:
    """The shared fixtures: $LCASR_SHARED, else ../shared beside the repository."""
    return Path(os.environ.get("LCASR_SHARED", REPO.parent / "shared"))


def resolve_default_model(announce: bool = True) -> Path:
    """DEFAULT_MODEL if it exists, else the random-weight stand-in (announced on stderr)."""
    if DEFAULT_MODEL.exists():
        return DEFAULT_MODEL
    stand_in = shared_dir() / STAND_IN
    if not stand_in.is_file():
        raise FileNotFoundError(f"{DEFAULT_MODEL}: no shipped model, and the stand-in "
                                f"{stand_in} is missing (set LCASR_SHARED or --checkpoint)")
    if announce:
        print(f"NOTE: no trained model at {DEFAULT_MODEL}; using the RANDOM-WEIGHT stand-in "
              f"{stand_in} (a parity fixture, not a trained model: expect WER near 100%)",
              file=sys.stderr)
    return stand_in
