"""Test set-up: 8 fake CPU devices for sharding tests; the parity fixtures (tests/fixtures)."""

import os
import shutil
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402
from waits import HANG_S  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PARITY = REPO / "tests" / "fixtures" / "parity"  # in the repository: README.md there


@pytest.fixture(autouse=True, scope="module")
def _drop_compiled_programs():
    """Each module's compiled programs are dropped when it ends. A worker runs ~40 modules,
    and the programs it kept grew it to ~5 GB: two suites side by side (issue 24) on a 2-core,
    23-GB machine ran out of memory and one test's subprocess stalled past HANG_S."""
    yield
    import gc

    import jax

    jax.clear_caches()
    gc.collect()


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """The original's parity fixtures (rotary_ln, nopos_ln), committed with the tests."""
    return PARITY


@pytest.fixture(scope="module")
def released(parity_dir):
    """The tiny random-weight parity model (rotary_ln) as a released checkpoint."""
    return parity_dir / "rotary_ln" / "checkpoint.pt"


@pytest.fixture(scope="module")
def model_dir(released, tmp_path_factory):
    """`released` converted into a model dir (once per module)."""
    from lcasr_jax.checkpoints import convert

    return convert.torch_to_flax(released, tmp_path_factory.mktemp("m") / "model")


@pytest.fixture
def model_copy(model_dir, tmp_path):
    """A copy of `model_dir` that a test may damage."""
    dest = tmp_path / "model"
    shutil.copytree(model_dir, dest)
    return dest


@pytest.fixture
def synth_dir():
    """(root, seconds) -> root holding a `synth` test set: one noise recording per duration
    (test-s0-00000, ...), each with the reference "good morning"."""
    import json

    import numpy as np
    import soundfile as sf

    def make(root: Path, seconds) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for i, sec in enumerate(seconds):
            rid = f"test-s0-{i:05d}"
            audio = (0.1 * rng.normal(size=int(sec * 16000))).astype("f4")
            sf.write(root / f"{rid}.flac", audio, 16000)
            meta = {"id": rid, "audio": f"{rid}.flac", "sample_rate": 16000, "duration": sec,
                    "words": [{"word": "good", "start": 0.2, "end": 0.5},
                              {"word": "morning", "start": 0.6, "end": 1.0}]}
            (root / f"{rid}.json").write_text(json.dumps(meta))
        return root

    return make


class _Exchange:
    """allgather between threads that stand in for processes."""

    def __init__(self, count: int):
        import threading

        self.barrier = threading.Barrier(count, timeout=HANG_S)
        self.slots: list = [None] * count

    def allgather(self, index: int, values):
        import numpy as np

        self.barrier.wait()  # everyone has read the previous round
        self.slots[index] = np.asarray(values)
        self.barrier.wait()
        return np.stack(self.slots)


@pytest.fixture
def simulate():
    """(count, fn) -> [fn(hosts) for each of `count` simulated processes], run in one
    thread per process, whose `Hosts` collectives exchange values between the threads."""
    import dataclasses
    from concurrent.futures import ThreadPoolExecutor
    from typing import Any

    from lcasr_jax.eval.hosts import Hosts

    @dataclasses.dataclass(frozen=True)
    class ThreadHosts(Hosts):
        exchange: Any = None

        def allgather(self, values):
            return self.exchange.allgather(self.index, values)

    def run(count, fn):
        exchange = _Exchange(count)
        with ThreadPoolExecutor(count) as pool:
            futures = [pool.submit(fn, ThreadHosts(p, count, exchange)) for p in range(count)]
            return [f.result() for f in futures]

    return run
