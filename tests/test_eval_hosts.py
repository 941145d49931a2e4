"""The per-process split of multi-process evaluation, simulated on one machine: every
recording and window handled exactly once, shapes agreed, results reassembled in order."""

import numpy as np
import pytest

from lcasr_jax.eval import hosts


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_owned_and_reassemble_cover_every_item_once(count):
    for n in range(12):
        parts = [list(hosts.owned(n, p, count)) for p in range(count)]
        assert sorted(i for part in parts for i in part) == list(range(n))
        assert hosts.reassemble(parts) == list(range(n))
    with pytest.raises(ValueError, match="process 0 returned 2 items, expected 1"):
        hosts.reassemble([[0, 2], []])
    with pytest.raises(ValueError, match="process index"):
        hosts.owned(3, count, count)


def test_batch_rows_single_process_keeps_the_old_rule():
    for jobs in range(1, 30):
        for batch_size, n_devices in [(8, 1), (8, 8), (5, 4), (16, 8), (3, 8)]:
            rows, steps = hosts.batch_rows([jobs], batch_size, n_devices)
            size = batch_size if jobs >= batch_size else jobs  # one call's windows
            assert rows == -(-size // n_devices) * n_devices
            assert steps == -(-jobs // rows)
    assert hosts.batch_rows([0, 0], 8, 8)[1] == 0  # nothing to run: no calls


@pytest.mark.parametrize("count,n_devices", [(2, 8), (4, 8), (3, 3), (2, 2)])
def test_every_window_once_in_agreed_batches(count, n_devices):
    rng = np.random.default_rng(count * n_devices)
    for _ in range(20):
        jobs = [[(p, j) for j in range(rng.integers(0, 40))] for p in range(count)]
        batch_size = int(rng.integers(1, 20))
        rows, steps = hosts.batch_rows([len(j) for j in jobs], batch_size, n_devices)
        assert (rows * count) % n_devices == 0
        assert rows * count <= -(-batch_size // n_devices) * n_devices
        seen = []
        for p in range(count):
            batches = hosts.local_batches(jobs[p], rows, steps)
            assert len(batches) == steps and all(len(b) <= rows for b in batches)
            seen += [job for b in batches for job in b]
        assert sorted(seen) == sorted(job for j in jobs for job in j)  # each exactly once
    with pytest.raises(ValueError, match="do not split evenly"):
        hosts.batch_rows([1, 2, 3], 8, 8)
    with pytest.raises(ValueError, match="do not fit"):
        hosts.local_batches(list(range(5)), 2, 2)


def test_gather_objects_in_process_order(simulate):
    def fn(h):
        obj = {"process": h.index, "text": "x" * (100 * h.index)}  # different sizes
        return h.gather_objects(obj), h.allgather(np.array([h.index, 7]))

    results = simulate(3, fn)
    for gathered, table in results:
        assert [g["process"] for g in gathered] == [0, 1, 2]
        assert [len(g["text"]) for g in gathered] == [0, 100, 200]
        np.testing.assert_array_equal(table, [[0, 7], [1, 7], [2, 7]])
    single = hosts.Hosts()
    assert single.main and single.gather_objects("a") == ["a"]
    np.testing.assert_array_equal(single.allgather(np.array([4])), [[4]])
