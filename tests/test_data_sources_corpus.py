"""The corpus adapter: schedule-driven shapes, recording counts, exact resume from its state."""

import json

import numpy as np

from lcasr_jax.data.sources.chunked import ChunkedSource


def _fake_source(lengths, seed=0):
    """Recordings in the data loader's example format (features (frames, 80), word times)."""
    rng = np.random.default_rng(seed)
    src = []
    for n in lengths:
        st = np.sort(rng.uniform(0, n / 100 - 0.3, max(1, n // 40)))
        off = np.concatenate([[0], np.cumsum(rng.integers(1, 4, len(st)))])
        src.append({"features": rng.standard_normal((n, 80)).astype(np.float16),
                    "num_frames": n, "word_start": st, "word_end": st + 0.2,
                    "token_offsets": off,
                    "token_ids": rng.integers(0, 4095, off[-1]).astype(np.int32)})
    return src


def test_corpus_source_shapes_counts_and_resume():
    src = _fake_source([900, 300, 1200, 450, 800, 200, 650])
    a = ChunkedSource(src, seed=3)
    shapes = [(128, 4)] * 6 + [(256, 2)] * 3  # a schedule step mid-way
    got, started = [], []
    for i, (frames, bs) in enumerate(shapes):
        batch, info = a.next_batch(frames, bs)
        assert batch["spec"].shape == (bs, 80, frames) and set(batch) == {
            "spec", "lengths", "targets", "target_lengths"}
        assert batch["targets"].shape == (bs, frames // 8)
        started.append(info["recordings"])
        assert 0 <= info["recordings"] <= bs
        got.append(batch)
        if i == 5:
            saved = json.loads(json.dumps(a.state_dict()))
    assert started[0] == 4  # the first batch starts one recording in every row
    assert sum(started) > 4  # recordings end and new ones start
    b = ChunkedSource(src, seed=3)
    b.load_state_dict(saved)
    for (frames, bs), want in zip(shapes[6:], got[6:], strict=True):
        batch, _ = b.next_batch(frames, bs)
        for k in want:
            np.testing.assert_array_equal(batch[k], want[k])
    assert a.total_recordings() == len(src)


def test_recordings_source_matches_dataset_encoding(tmp_path):
    import soundfile as sf

    from lcasr_jax.data.alignments import Recording, Words, write_recording
    from lcasr_jax.data.examples import encode_recording
    from lcasr_jax.data.sources.recordings import RecordingsSource

    rng = np.random.default_rng(0)
    (tmp_path / "train").mkdir()
    for i, seconds in enumerate((3.0, 5.5)):
        audio = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
        sf.write(tmp_path / "train" / f"r{i}.flac", audio, 16000, subtype="PCM_24")
        st = np.arange(0.2, seconds - 0.5, 0.6)
        words = Words(tuple(f"hello{j}" for j in range(len(st))), st, st + 0.3)
        write_recording(tmp_path / "train" / f"r{i}.json",
                        Recording(f"r{i}", tmp_path / "train" / f"r{i}.flac", words))
    src = RecordingsSource.from_dir(tmp_path, "train")
    assert len(src) == 2
    for i, path in enumerate(src.paths):
        want, got = encode_recording(path), src[i]
        assert got is src[i]  # cached
        for k in got:
            np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]), err_msg=k)


def test_make_source_builds_each_kind_behind_the_protocol(tmp_path):
    import ml_collections
    import pytest

    from lcasr_jax.data.sources import BatchSource, make_source
    from lcasr_jax.data.sources.recordings import RecordingsSource
    from lcasr_jax.data.sources.synthetic import SyntheticSource
    from lcasr_jax.train.config import base_config

    cfg = base_config(n_layers=1, d_model=32, n_heads=2, head_dim=16)
    cfg.data.kind = "synthetic"
    assert isinstance(make_source(cfg), SyntheticSource)
    assert isinstance(make_source(cfg), BatchSource)
    cfg.data.kind = "recordings"
    with pytest.raises(ValueError, match="data.path is empty"):
        make_source(cfg)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "r0.json").write_text(json.dumps(
        {"audio": "r0.flac", "words": [{"word": "a", "start": 0.1, "end": 0.2}]}))
    cfg.data.path = str(tmp_path)
    source = make_source(cfg)
    assert isinstance(source, ChunkedSource) and isinstance(source, BatchSource)
    assert isinstance(source.source, RecordingsSource) and source.total_recordings() == 1
    cfg.data.kind = "nope"
    with pytest.raises(ValueError, match="data.kind='nope' is not supported"):
        make_source(cfg)
    assert not isinstance(ml_collections.ConfigDict(), BatchSource)


def test_feature_cache_is_read_and_goes_stale_with_its_recording(tmp_path, capsys):
    import os

    import soundfile as sf

    from lcasr_jax.data.alignments import Recording, Words, write_recording
    from lcasr_jax.data.examples import encode_recording
    from lcasr_jax.data.sources import feature_cache
    from lcasr_jax.data.sources.recordings import RecordingsSource

    audio = (0.1 * np.random.default_rng(1).standard_normal(48000)).astype(np.float32)
    sf.write(tmp_path / "r.flac", audio, 16000, subtype="PCM_24")
    st = np.arange(0.2, 2.5, 0.6)
    path = tmp_path / "r.json"
    write_recording(path, Recording("r", tmp_path / "r.flac",
                                    Words(tuple(f"w{j}" for j in range(len(st))), st, st + 0.3)))
    assert feature_cache.load(path) is None
    want = encode_recording(path)
    feature_cache.store(path, want)
    got = feature_cache.load(path)
    assert set(got) == set(want) and got["num_frames"] == want["num_frames"]
    for k in want:
        np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]), err_msg=k)
    # The source reads the cache (a marked copy), not the audio.
    marked = dict(want, features=want["features"] + np.float16(1))
    feature_cache.store(path, marked)
    np.testing.assert_array_equal(RecordingsSource([path])[0]["features"], marked["features"])
    # ... made with soxr: a source that asks for torchaudio's resampling encodes it again.
    np.testing.assert_array_equal(RecordingsSource([path], "torchaudio")[0]["features"],
                                  want["features"])
    assert feature_cache.load(path, "torchaudio") is None
    # A rewritten recording makes its cache stale; the source encodes it again.
    st_ = os.stat(path)
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + 10**9))
    assert feature_cache.load(path) is None
    np.testing.assert_array_equal(RecordingsSource([path])[0]["features"], want["features"])
    # `data cache` encodes what is stale (the source then reads the cache) and names a
    # missing folder.
    from lcasr_jax.data import cli

    assert cli.main(["cache", str(tmp_path), "--workers", "1"]) == 0
    cached = feature_cache.load(path)
    assert cached is not None
    np.testing.assert_array_equal(cached["features"], want["features"])
    assert cli.main(["cache", str(tmp_path / "missing")]) == 1
    assert f"{tmp_path / 'missing'}: no such folder" in capsys.readouterr().err
