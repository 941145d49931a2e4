"""TFDS build/read round trip and the loader: shapes, content, coverage, resume, sharding."""

import json

import numpy as np
import pytest
import soundfile as sf

from lcasr_jax.data import chunking as C
from lcasr_jax.data.alignments import Recording, Words, write_recording
from lcasr_jax.data.loader import Loader, seen_recordings


def _fake_source(lengths, seed=0):
    rng = np.random.default_rng(seed)
    src = []
    for n in lengths:
        st = np.sort(rng.uniform(0, n / 100 - 0.3, max(1, n // 40)))
        en = st + 0.2
        off = np.concatenate([[0], np.cumsum(rng.integers(1, 4, len(st)))])
        src.append({"features": rng.standard_normal((n, 80)).astype(np.float16),
                    "num_frames": n, "word_start": st, "word_end": en, "token_offsets": off,
                    "token_ids": rng.integers(0, 4095, off[-1]).astype(np.int32)})
    return src


def _take(loader, k):
    return [next(loader) for _ in range(k)]


def _equal(a, b):
    return all(np.array_equal(x[k], y[k]) for x, y in zip(a, b, strict=True) for k in x)


def test_batch_content_and_epoch_coverage():
    src = _fake_source([1000, 130, 2500, 700, 64])
    ld = Loader(src, 256, 3, overlap=32, num_epochs=1, process_index=0, process_count=1)
    seen = []
    for b in ld:
        assert b["spec"].shape == (3, 80, 256) and b["targets"].shape == (3, 32)
        for i in np.flatnonzero(b["valid"]):
            r, f0, n = b["recording"][i], b["frame"][i], b["lengths"][i]
            ex = src[r]
            assert n == min(256, ex["num_frames"] - f0)
            np.testing.assert_array_equal(b["spec"][i, :, :n], ex["features"][f0:f0 + n].T)
            assert not b["spec"][i, :, n:].any()
            _, w = C.words_in_windows(ex["word_start"], ex["word_end"], [f0], [f0 + 256])
            toks = C.gather_tokens(w, ex["token_offsets"], ex["token_ids"])[:32]
            assert b["target_lengths"][i] == len(toks)
            np.testing.assert_array_equal(b["targets"][i, :len(toks)], toks)
            seen.append((int(r), int(f0)))
    expected = [(r, int(f)) for r, ex in enumerate(src)
                for f in C.chunk_starts(ex["num_frames"], 256, 32)]
    assert sorted(seen) == sorted(expected)  # every chunk exactly once


@pytest.mark.parametrize("json_roundtrip", [True, False])
def test_resume_yields_identical_batches(json_roundtrip):
    src = _fake_source([900, 300, 1200, 450, 800, 200])
    kw = dict(seed=7, process_index=0, process_count=1, prefetch=3)
    a = Loader(src, 128, 2, **kw)
    _take(a, 5)
    state = a.state()
    if json_roundtrip:
        state = json.loads(json.dumps(state))
    cont = _take(a, 40)  # crosses epoch boundaries (31 chunks per epoch)
    # read-ahead threads never change the batches: resume once without them
    b = Loader(src, 128, 2, state=state, lookahead=0 if json_roundtrip else 3, **kw)
    assert _equal(cont, _take(b, 40))
    a.close()
    b.close()


def test_shape_change_keeps_position_and_resumes():
    src = _fake_source([1000, 1000, 1000, 1000], seed=1)
    kw = dict(process_index=0, process_count=1, num_epochs=1)
    a = Loader(src, 100, 4, **kw)
    _take(a, 3)
    a.set_shape(200, 2)  # longer sequences, half the batch (the original's schedule)
    state = a.state()
    rest = list(a)
    assert all(b["spec"].shape == (2, 80, 200) for b in rest)
    b = Loader(src, 200, 2, state=state, **kw)
    assert _equal(rest, list(b))
    frames = {r: [] for r in range(4)}
    for batch in rest:
        for i in np.flatnonzero(batch["valid"]):
            frames[int(batch["recording"][i])].append(int(batch["frame"][i]))
    for r in range(4):  # each recording continues from frame 300 in steps of 200
        assert sorted(frames[r]) == [300, 500, 700, 900]


def test_host_sharding_and_seen():
    src = _fake_source([100] * 10)
    recs = []
    for p in range(3):
        ld = Loader(src, 100, 2, num_epochs=1, process_index=p, process_count=3)
        got = [int(r) for b in ld for r in b["recording"][b["valid"]]]
        assert len(got) == len(set(got)) and len(got) in (3, 4)
        recs += got
    assert sorted(recs) == list(range(10))
    ld = Loader(src, 100, 2, process_index=0, process_count=1)
    b1 = next(ld)
    assert seen_recordings(ld.state(), 10) == sorted(b1["recording"].tolist()) or \
        set(seen_recordings(ld.state(), 10)) == set(b1["recording"].tolist())
    with pytest.raises(ValueError, match="process_index"):
        Loader(src, 100, 2, process_index=1, process_count=3, state=ld.state())
    ld.close()


def test_truncated_targets_counted():
    src = _fake_source([400])
    src[0]["token_offsets"] = src[0]["token_offsets"] * 10
    src[0]["token_ids"] = np.zeros(src[0]["token_offsets"][-1], np.int32)
    ld = Loader(src, 400, 1, max_target_len=5, num_epochs=1, process_index=0, process_count=1)
    b = next(ld)
    assert b["target_lengths"][0] == 5 and ld.stats["truncated_targets"] == 1


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    pytest.importorskip("tensorflow_datasets")
    from lcasr_jax.data import tfds_builder as TB

    root = tmp_path_factory.mktemp("ds")
    rng = np.random.default_rng(0)
    for split, secs in [("train", [3, 5, 2]), ("dev", [2])]:
        (root / "src" / split).mkdir(parents=True)
        for i, sec in enumerate(secs):
            d = root / "src" / split
            audio = (0.1 * rng.standard_normal(16000 * sec)).astype(np.float32)
            sf.write(d / f"r{i}.flac", audio, 16000, subtype="PCM_24")
            st = np.arange(0.1, sec - 0.5, 0.45)
            words = Words(tuple(f"hello{j}" for j in range(len(st))), st, st + 0.3)
            write_recording(d / f"r{i}.json", Recording(f"{split}{i}", d / f"r{i}.flac",
                                                        words, float(sec)))
    return root, TB.build(root / "src", root / "data")


def test_tfds_round_trip(built):
    from lcasr_jax.data.alignments import read_recording
    from lcasr_jax.data.features import audio_to_features
    from lcasr_jax.data.sources.tfds import open_split

    root, ds = built
    src = open_split(ds, "train")
    assert len(src) == 3 and len(open_split(ds, "dev")) == 1
    for i in range(3):
        ex = src[i]
        rid = ex["id"].decode() if isinstance(ex["id"], bytes) else ex["id"]
        rec = read_recording(root / "src" / "train" / f"r{rid[-1]}.json")
        feats = audio_to_features(rec.audio)
        assert ex["features"].dtype == np.float16 and int(ex["num_frames"]) == feats.shape[1]
        np.testing.assert_array_equal(ex["features"], feats.T.astype(np.float16))
        np.testing.assert_array_equal(ex["word_start"], rec.words.start)
        off, ids = C.word_tokens(rec.words.text)
        np.testing.assert_array_equal(ex["token_offsets"], off)
        np.testing.assert_array_equal(ex["token_ids"], ids)
    with pytest.raises(ValueError, match="no split 'test'"):
        open_split(ds, "test")
    ld = Loader(src, 128, 2, num_epochs=1, process_index=0, process_count=1)
    n = sum(int(b["valid"].sum()) for b in ld)
    assert n == sum(len(C.chunk_starts(int(src[i]["num_frames"]), 128)) for i in range(3))


def test_float16_spec_is_lossless():
    src = _fake_source([700, 300])
    kw = dict(num_epochs=1, process_index=0, process_count=1)
    a = list(Loader(src, 128, 2, **kw))
    b = list(Loader(src, 128, 2, spec_dtype="float16", **kw))
    assert b[0]["spec"].dtype == np.float16
    assert all(np.array_equal(x["spec"], y["spec"].astype(np.float32))
               for x, y in zip(a, b, strict=True))


def test_close_does_not_hang_when_the_source_fails_with_a_full_queue():
    import threading

    from waits import HANG_S

    failed = threading.Event()

    class FailsAfterTwoReads(list):
        reads = 0

        def __getitem__(self, i):
            FailsAfterTwoReads.reads += 1
            if FailsAfterTwoReads.reads > 2:
                failed.set()
                raise OSError("disk gone")
            return list.__getitem__(self, i)

    src = FailsAfterTwoReads(_fake_source([100] * 6))
    loader = Loader(src, 100, 1, seed=0, process_index=0, process_count=1, prefetch=1,
                    lookahead=0)
    next(loader)
    # batch 2 fills the queue; reading batch 3 fails while it is full
    assert failed.wait(HANG_S)
    assert FailsAfterTwoReads.reads == 3
    closer = threading.Thread(target=loader.close, daemon=True)
    closer.start()
    closer.join(timeout=HANG_S)
    assert not closer.is_alive(), "Loader.close() hung"
