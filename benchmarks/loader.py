"""Loader and chunking throughput on the CPU.

1. Chunking: a 1-hour, 10,000-word recording chunked (words + token ids) at every schedule
   length (target <= 50 ms in total).
2. Loader: batches/s at the original's (sequence length, batch size) schedule from an
   ArrayRecord dataset built here (--minutes of audio per recording) or, with --fake, from
   an in-memory source (pure batch assembly, no I/O).
Compare batches/s with the training step rate of the model at the same shape.
Usage: python benchmarks/loader.py [--recordings 6 --minutes 20] [--fake] [--batches 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# the original's schedule (exp_set_seq_sched_spec_aug.yaml): frames -> batch size
SCHEDULE = [(512, 704), (1024, 352), (2048, 176), (4096, 88), (8192, 44), (16384, 22),
            (32768, 11), (65536, 5), (131072, 2), (360000, 1)]


def bench_chunking() -> dict:
    from lcasr_jax.data import chunking as C

    rng = np.random.default_rng(0)
    start = np.sort(rng.uniform(0, 3599.5, 10_000))
    end = np.maximum.accumulate(start + rng.uniform(0.1, 0.5, 10_000))
    words = [f"word{i % 500}" for i in range(10_000)]
    t0 = time.perf_counter()
    off, ids = C.word_tokens(words)
    t_tok = time.perf_counter() - t0
    best = 1e9
    for _ in range(5):
        t0 = time.perf_counter()
        for n, _ in SCHEDULE:
            plan = C.plan_chunks(start, end, 360_001, n)
            C.chunk_tokens(plan, off, ids)
        best = min(best, time.perf_counter() - t0)
    return {"chunking_all_lengths_ms": round(best * 1000, 2),
            "tokenise_10k_words_ms": round(t_tok * 1000, 1)}


def fake_source(n: int, minutes: float) -> list[dict]:
    rng = np.random.default_rng(0)
    frames = int(minutes * 6000)
    feats = rng.standard_normal((frames, 80)).astype(np.float16)
    words = int(minutes * 160)
    st = np.sort(rng.uniform(0, minutes * 60 - 1, words))
    off = np.arange(words + 1) * 2
    ids = rng.integers(0, 4095, 2 * words).astype(np.int32)
    return [{"features": feats, "num_frames": frames, "word_start": st, "word_end": st + 0.3,
             "token_offsets": off, "token_ids": ids} for _ in range(n)]


def built_source(n: int, minutes: float, tmp: Path):
    import soundfile as sf

    from lcasr_jax.data.alignments import Recording, Words, write_recording
    from lcasr_jax.data.sources.tfds import open_split
    from lcasr_jax.data.tfds_builder import build

    rng = np.random.default_rng(0)
    src = tmp / "src"
    src.mkdir()
    sec = minutes * 60
    for i in range(n):
        audio = (0.1 * rng.standard_normal(int(16000 * sec))).astype(np.float32)
        sf.write(src / f"r{i}.flac", audio, 16000)
        st = np.arange(0.1, sec - 1, 0.37)
        w = Words(tuple(f"word{j % 300}" for j in range(len(st))), st, st + 0.3)
        write_recording(src / f"r{i}.json", Recording(f"r{i}", src / f"r{i}.flac", w, sec))
    t0 = time.perf_counter()
    ds = build(src, tmp / "data", workers=2)
    return open_split(ds, "train"), time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--recordings", type=int, default=8)
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--fake", action="store_true")
    args = p.parse_args(argv)
    from lcasr_jax.data.loader import Loader

    result = bench_chunking()
    with tempfile.TemporaryDirectory() as tmp:
        if args.fake:
            source = fake_source(args.recordings, args.minutes)
        else:
            source, build_s = built_source(args.recordings, args.minutes, Path(tmp))
            result["build_s"] = round(build_s, 2)
        rates = {}
        for (seq, batch), dtype in [(sb, d) for sb in SCHEDULE for d in ("float32", "float16")]:
            ld = Loader(source, seq, batch, process_index=0, process_count=1, prefetch=2,
                        spec_dtype=dtype)
            next(ld)  # start-up: first recordings loaded
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.batches):
                next(ld)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            ld.close()
            # CPU seconds per batch (all loader threads) is robust to a shared machine
            rates[f"{seq}x{batch}:{dtype}"] = {"batches_per_s": round(args.batches / dt, 2),
                                               "frames_per_s": round(args.batches * seq * batch
                                                                     / dt),
                                               "cpu_s_per_batch": round(dc / args.batches, 4)}
        result["loader"] = rates
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
