"""Test set-up: 8 fake CPU devices for sharding tests; paths to the shared fixtures."""

import os
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LCASR_SHARED", REPO.parent / "shared"))
PARITY = SHARED / "fixtures" / "parity"


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    if not PARITY.is_dir():
        pytest.fail(f"{PARITY}: parity fixtures not found (set LCASR_SHARED)")
    return PARITY
