"""The synthetic training source: one process unchanged, several processes each their own
deterministic rows."""

import numpy as np
import pytest

from lcasr_jax.data.sources.synthetic import SyntheticSource


def _batches(source: SyntheticSource, n: int, frames: int = 64, rows: int = 4):
    return [source.next_batch(frames, rows) for _ in range(n)]


def test_one_process_batches_are_unchanged():
    """The batches of a single-process run (values of the version before processes)."""
    (b0, i0), (b1, i1) = _batches(SyntheticSource(seed=3, recordings_per_epoch=8), 2)
    assert b0["lengths"].tolist() == [64, 44, 54, 42] and b0["targets"][:, 0].tolist() == [
        26, 14, 9, 17]
    assert b1["lengths"].tolist() == [64, 64, 61, 57] and b1["targets"][:, 0].tolist() == [
        26, 9, 10, 6]
    np.testing.assert_allclose([b0["spec"].sum(), b1["spec"].sum()], [482.277, 1470.336],
                               atol=1e-3)
    assert (i0, i1) == ({"recordings": 4, "epoch": 0, "epochs_done": 0},
                        {"recordings": 4, "epoch": 0, "epochs_done": 1})  # 8 rows = 1 epoch
    explicit = SyntheticSource(seed=3, recordings_per_epoch=8, process_index=0, process_count=1)
    np.testing.assert_array_equal(_batches(explicit, 1)[0][0]["spec"], b0["spec"])


def test_each_process_produces_its_own_deterministic_rows():
    """Two simulated processes: different rows, the same token patterns, each reproducible
    from (seed, process index); epochs count the rows of both."""
    def run(index, count=2):
        source = SyntheticSource(seed=3, recordings_per_epoch=16, process_index=index,
                                 process_count=count)
        return source, _batches(source, 3)

    (s0, p0), (s1, p1), (_, again) = run(0), run(1), run(1)
    np.testing.assert_array_equal(s0.patterns, s1.patterns)
    for (b0, _), (b1, _), (b1_again, _) in zip(p0, p1, again, strict=True):
        assert not np.array_equal(b0["spec"], b1["spec"])
        for key in b1:
            np.testing.assert_array_equal(b1[key], b1_again[key])
    single = _batches(SyntheticSource(seed=3), 1)[0][0]
    assert not any(np.array_equal(single["spec"], b["spec"]) for b, _ in p0 + p1)
    assert [info["epoch"] for _, info in p0] == [0, 0, 1]  # 2 x 8 rows = one epoch of 16
    assert [info["recordings"] for _, info in p1] == [4, 4, 4]
    with pytest.raises(ValueError, match="process_index"):
        SyntheticSource(process_index=2, process_count=2)
