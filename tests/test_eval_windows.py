"""Window plans and merging against a float64 transcription of the original's loops."""

import math

import numpy as np
import pytest

from lcasr_jax.eval import windows


def original_moving_average(outputs_for, n, seq_len, overlap, factor=8):
    """float64 transcription of lcasr.eval.utils.fetch_logits (with its big buffers)."""
    if seq_len > n:
        seq_len, overlap = n, 0
    classes = outputs_for(0, 1).shape[-1]
    total = np.zeros((n // 4 + seq_len, classes))
    count = np.zeros((n // 4 + seq_len, classes))
    pos, last, kill = 0, None, False
    for i in range(0, n, seq_len - overlap):
        u = min(seq_len, n - i)
        if kill:
            break
        if last is not None and u < last:
            kill = True
        last = u
        lp = outputs_for(i, i + u)
        ds = lp.shape[0]
        if i != 0:
            pos -= int(overlap / (u / ds))
        count[pos:pos + ds] += 1
        total[pos:pos + ds] += np.exp(lp)
        pos += ds
    keep = count.sum(-1) != 0
    return np.log(total[keep] / count[keep])


def original_buffered(outputs_for, n, seq_len, overlap):
    if seq_len > n:
        seq_len, overlap = n, 0
    classes = outputs_for(0, 1).shape[-1]
    total = np.zeros((n // 4 + seq_len, classes))
    count = np.zeros((n // 4 + seq_len, classes))
    chunk = seq_len - overlap
    cs, ce, positions = 0, chunk, []
    while True:
        bs, be = cs - overlap // 2, ce + overlap // 2
        if bs < 0:
            bs, be = 0, seq_len
        elif be > n:
            be, bs = n, n - seq_len
        positions.append((bs, be, cs, ce))
        cs, ce = cs + chunk, ce + chunk
        if ce >= n:
            ce = n
        if cs >= n:
            break
    pos = 0
    for bs, be, cs, ce in positions:
        lp = outputs_for(bs, be)
        r = (be - bs) / lp.shape[0]
        a, b = int((cs - bs) / r), int((ce - bs) / r)
        total[pos + a:pos + b] += lp[a:b]
        count[pos + a:pos + b] += 1
        pos += b - a
    assert count.max() == 1
    return total[count.sum(-1) != 0]


def fake_outputs(n_frames, classes=5, seed=0):
    """Deterministic window -> log-probs depending on window start/end (so any misplaced
    window is detected)."""
    def outputs_for(start, end):
        n_out = math.ceil((end - start) / 8)
        rng = np.random.default_rng(seed + 7919 * start + end)
        x = rng.normal(size=(n_out, classes))
        return x - np.log(np.exp(x).sum(-1, keepdims=True))
    return outputs_for


CASES = [(3000, 1000, 504), (3000, 1000, 0), (2999, 1000, 496), (1001, 1000, 0),
         (777, 1000, 0), (4096, 1024, 896), (5000, 1003, 64), (3000, 1000, 500 - 4)]


@pytest.mark.parametrize("n,seq_len,overlap", CASES)
def test_moving_window_matches_original(n, seq_len, overlap):
    if overlap % 8:
        with pytest.raises(ValueError, match="multiple"):
            windows.moving_window_plan(n, seq_len, overlap, 8)
        return
    out = fake_outputs(n)
    plan = windows.moving_window_plan(n, seq_len, overlap, 8)
    ours = windows.merge(plan, [out(w.start, w.end) for w in plan.windows])
    ref = original_moving_average(out, n, seq_len, overlap)
    assert ours.shape == ref.shape == (plan.out_frames, 5)
    np.testing.assert_allclose(ours, ref, atol=2e-6)


@pytest.mark.parametrize("n,seq_len,overlap", [(3000, 1000, 496), (4096, 1024, 512),
                                               (700, 1000, 200), (5003, 2048, 1024)])
def test_buffered_matches_original(n, seq_len, overlap):
    out = fake_outputs(n, seed=3)
    plan = windows.buffered_plan(n, seq_len, overlap, 8)
    ours = windows.merge(plan, [out(w.start, w.end) for w in plan.windows])
    ref = original_buffered(out, n, seq_len, overlap)
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert all(w.length == min(seq_len, n) for w in plan.windows)


def test_moving_window_hand_checked():
    plan = windows.moving_window_plan(3000, 1000, 504, 8)  # step 496
    assert [w.start for w in plan.windows] == [0, 496, 992, 1488, 1984, 2480]
    assert [w.out_pos for w in plan.windows] == [0, 62, 124, 186, 248, 310]
    assert plan.out_frames == 375 and plan.windows[-1].end == 3000
    # 3024 frames, 1008-frame windows every 504: the window at 2520 lies inside the one at
    # 2016 and is still averaged in (the original's stop rule).
    p = windows.moving_window_plan(3024, 1008, 504, 8)
    assert [w.start for w in p.windows] == [0, 504, 1008, 1512, 2016, 2520]
    assert p.windows[-1].end == p.windows[-2].end == 3024


def test_windowed_attention_plan_and_window():
    plan = windows.make_plan("windowed_attention", 12345, 1000, 0, 8)
    assert len(plan.windows) == 1 and plan.windows[0].length == 12345
    assert windows.attention_window(1000, 8) == (62, 62)
    assert windows.attention_window(360000, 8) == (22500, 22500)
    with pytest.raises(ValueError, match="unknown evaluation mode"):
        windows.make_plan("sliding", 10, 10, 0, 8)


def test_merge_rejects_missing_windows():
    plan = windows.moving_window_plan(3000, 1000, 0, 8)
    merger = windows.Merger(plan, 3)
    merger.add(0, np.zeros((125, 3)))
    with pytest.raises(RuntimeError, match="not merged"):
        merger.result()


def test_settings_errors_name_their_fields_and_commands_name_flags():
    """Library code words a bad setting by its field; the eval command by its flag."""
    from lcasr_jax.eval.cli import flagged
    from lcasr_jax.eval.runner import EvalSettings
    from lcasr_jax.validate import SettingError

    with pytest.raises(SettingError) as err:
        EvalSettings("buffered", context=4).validate(8)
    assert str(err.value) == "context must be >= 8 frames, one output frame of this model (got 4)"
    assert flagged(err.value).startswith("--seq-len must be >= 8 frames")
    with pytest.raises(SettingError, match=r"^overlap must be in \[0, context=64\) frames"):
        EvalSettings("buffered", context=64, overlap=64).validate(8)
    with pytest.raises(SettingError, match="^batch_size must be an integer >= 1"):
        EvalSettings(batch_size=0).validate(8)
