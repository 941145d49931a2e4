"""Chunking vs the original's chunk_text_json loop and hand-checked edge cases."""

import numpy as np
import pytest

from lcasr_jax.data import chunking as C


def _original_chunk_text_json(text, chunk_size, chunk_overlap, spectogram_length):
    """The original's loop (re-expressed): dict words with 'startTime'/'endTime' '1.2s'."""
    remaining, out = text, []
    for i in range(0, spectogram_length, chunk_size - chunk_overlap):
        cs, ce = i * 160 / 16000, (i + chunk_size) * 160 / 16000
        ov = chunk_overlap * 160 / 16000
        got, keep_from = [], 0
        for j, el in enumerate(remaining):
            s, e = float(el["startTime"][:-1]), float(el["endTime"][:-1])
            if s >= cs and e <= ce:
                got.append(el["word"])
            if e < ce - ov:
                keep_from = j
            if e > ce:
                break
        remaining = remaining[keep_from:]
        out.append(" ".join(got))
    return out


def _random_words(n, seconds, seed):
    rng = np.random.default_rng(seed)
    edges = np.sort(np.round(rng.uniform(0, seconds, 2 * n), 2))  # 10 ms grid: many ties
    start, end = edges[0::2], edges[1::2]
    words = [f"w{i}" for i in range(n)]
    return words, start, end


@pytest.mark.parametrize("chunk,overlap", [(100, 0), (256, 0), (128, 32), (1000, 999), (7, 3)])
def test_matches_original_loop(chunk, overlap):
    words, start, end = _random_words(300, 60.0, seed=chunk + overlap)
    total = 6000 + 37
    js = [{"word": w, "startTime": f"{s}s", "endTime": f"{e}s"}
          for w, s, e in zip(words, start, end, strict=True)]
    plan = C.plan_chunks(start, end, total, chunk, overlap)
    assert C.chunk_text(words, plan) == _original_chunk_text_json(js, chunk, overlap, total)


def test_hand_checked_edges():
    # chunk 100 frames = 1.0 s, total 250 frames -> chunks [0,100) [100,200) [200,250)
    start = np.array([0.0, 0.50, 0.99, 1.00, 1.50, 2.30, 2.50])
    end = np.array([0.40, 1.00, 1.01, 1.20, 1.90, 2.40, 2.60])
    plan = C.plan_chunks(start, end, 250, 100)
    np.testing.assert_array_equal(plan.starts, [0, 100, 200])
    np.testing.assert_array_equal(plan.lengths, [100, 100, 50])  # last chunk partial
    assert plan.words(0).tolist() == [0, 1]  # word 1 ends exactly on the edge: kept
    assert plan.words(1).tolist() == [3, 4]  # word 2 straddles 1.0 s: in no chunk
    assert plan.words(2).tolist() == [5, 6]  # words past the audio end but inside the chunk
    # overlap 50: chunks start 0, 50, 100, 150, 200
    plan = C.plan_chunks(start, end, 250, 100, overlap=50)
    np.testing.assert_array_equal(plan.starts, [0, 50, 100, 150, 200])
    assert [plan.words(k).tolist() for k in range(5)] == [[0, 1], [1, 2, 3], [3, 4], [4, 5], [5, 6]]
    np.testing.assert_array_equal(plan.lengths, [100, 100, 100, 100, 50])


def test_empty_chunks_and_no_words():
    plan = C.plan_chunks(np.array([3.1]), np.array([3.2]), 500, 100)
    assert [len(plan.words(k)) for k in range(5)] == [0, 0, 0, 1, 0]
    plan = C.plan_chunks(np.zeros(0), np.zeros(0), 150, 100)
    assert len(plan) == 2 and plan.word_index.size == 0
    with pytest.raises(ValueError, match="overlap"):
        C.plan_chunks(np.zeros(0), np.zeros(0), 150, 100, overlap=100)
    with pytest.raises(ValueError, match="sorted"):
        C.plan_chunks(np.array([2.0, 1.0]), np.array([2.5, 1.5]), 300, 100)


def test_overlapping_words_exact_predicate():
    rng = np.random.default_rng(1)
    start = np.sort(rng.uniform(0, 30, 400))
    end = start + rng.uniform(0, 3, 400)  # ends not sorted
    plan = C.plan_chunks(start, end, 3000, 300, overlap=100)
    for k, s in enumerate(plan.starts):
        cs, ce = s * 160 / 16000, (s + 300) * 160 / 16000
        ref = np.flatnonzero((start >= cs) & (end <= ce))
        assert plan.words(k).tolist() == ref.tolist()


def test_tokens_equal_encoding_the_joined_text():
    from lcasr_jax.data.tokenizer import default_tokenizer

    tok = default_tokenizer()
    sentence = ("So today we're talking about long-form speech, it's 10:30 and Dr. O'Neill "
                "isn't here; naïve café ÉCOLE words")
    text = sentence.split()
    start = np.arange(len(text)) * 0.5
    plan = C.plan_chunks(start, start + 0.4, 1 + len(text) * 50, 200, overlap=40)
    off, ids = C.word_tokens(text, tok)
    t_off, t_ids = C.chunk_tokens(plan, off, ids)
    texts = C.chunk_text(text, plan)
    for k in range(len(plan)):
        assert t_ids[t_off[k]:t_off[k + 1]].tolist() == tok.encode(texts[k])


def test_one_hour_all_schedule_lengths_without_python_loops():
    """Planning every schedule length of a one-hour recording runs the same few Python
    lines whatever the number of words or chunks: numpy does the work (counted, not timed,
    so that a loaded machine cannot fail it; the speed: benchmarks/loader.py, ~50 ms)."""
    import sys

    lengths = [512 * 2**i for i in range(10)] + [360_000]

    def lines_run(n_words: int) -> list[int]:
        rng = np.random.default_rng(0)
        start = np.sort(rng.uniform(0, 3600, n_words))
        end = np.maximum.accumulate(np.minimum(start + 0.3, 3600))
        off = np.arange(n_words + 1) * 2
        ids = np.arange(2 * n_words, dtype=np.int32)
        count = [0]

        def trace(frame, event, arg):
            count[0] += event == "line"
            return trace

        counts = []
        for n in lengths:
            count[0] = 0
            sys.settrace(trace)
            try:
                plan = C.plan_chunks(start, end, 360_001, n)
                C.chunk_tokens(plan, off, ids)
            finally:
                sys.settrace(None)
            assert len(plan) == -(-360_001 // n)
            counts.append(count[0])
        return counts

    few, many = lines_run(1_000), lines_run(10_000)
    assert few == many and len(set(few)) == 1 and few[0] < 400, (few, many)
