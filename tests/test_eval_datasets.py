"""Dataset readers on tiny files in each dataset's on-disk format."""

import json

import numpy as np
import pytest
import soundfile as sf

from lcasr_jax.data.audio import write_sphere
from lcasr_jax.eval.datasets import DatasetError, load_dataset, zero_regions

SR = 16000


def _tone(seconds=2.0, sr=SR, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32)


STM = """AlGore_2009 1 AlGore_2009 0.00 1.20 <o,f0,male> ignore_time_segment_in_scoring
AlGore_2009 1 AlGore_2009 1.20 2.50 <o,f0,male> so it 's a great honor
AlGore_2009 1 AlGore_2009 2.50 3.90 <o,f0,male> we 're here today
AlGore_2009 1 AlGore_2009 3.90 5.00 <o,f0,male> ignore_time_segment_in_scoring
"""


def test_tedlium_stm_sph(tmp_path):
    root = tmp_path / "TEDLIUM_release1" / "test"
    (root / "stm").mkdir(parents=True)
    (root / "sph").mkdir()
    (root / "stm" / "AlGore_2009.stm").write_text(STM)
    write_sphere(root / "sph" / "AlGore_2009.sph", _tone(5.0), SR)
    recs = load_dataset("tedlium", tmp_path / "TEDLIUM_release1", "test")
    assert [r.id for r in recs] == ["AlGore_2009"]
    rec = recs[0]
    assert rec.raw_reference == "so it's a great honor we're here today"
    assert rec.reference == "so it is a great honor we are here today"
    assert rec.ignore == ((0.0, 1.2), (3.9, 5.0))
    spec = rec.features()
    assert spec.shape == (80, 501)
    # the original's zero_out_spectogram with buffer -0.5: frames [50, 70) and [440, 450)
    zero = np.flatnonzero(np.all(spec == 0, axis=0))
    assert zero.tolist() == list(range(50, 70)) + list(range(440, 450))
    # release-3 layout and the split dir itself are accepted too
    assert load_dataset("tedlium", root, "test")[0].id == "AlGore_2009"


def test_tedlium_unpaired_files(tmp_path):
    (tmp_path / "test" / "stm").mkdir(parents=True)
    (tmp_path / "test" / "sph").mkdir()
    write_sphere(tmp_path / "test" / "sph" / "a.sph", _tone(1.0), SR)
    with pytest.raises(DatasetError, match="no matching"):
        load_dataset("tedlium", tmp_path, "test")


def test_zero_regions_matches_original_rounding():
    spec = np.ones((2, 300), np.float32)
    out = zero_regions(spec, [(0.555, 2.013)], buffer=-0.5)
    # start 1.055 s -> frame 105; end 1.513 s -> frame 151 (int truncation)
    assert np.flatnonzero(out[0] == 0).tolist() == list(range(105, 151))
    assert np.all(spec == 1)  # input untouched
    assert np.all(zero_regions(spec, [(1.0, 1.5)]) == 1)  # shorter than 1 s: nothing


def test_earnings22_full(tmp_path):
    (tmp_path / "media").mkdir()
    sf.write(tmp_path / "media" / "4420696.mp3", _tone(1.0), SR, format="MP3")
    (tmp_path / "full_transcripts.json").write_text(json.dumps(
        {"4420696": "Thank you, operator. <crosstalk> Good-bye… now?", "999": "unused"}))
    (rec,) = load_dataset("earnings22_full", tmp_path, "test")
    assert rec.id == "4420696" and rec.audio.suffix == ".mp3"
    assert rec.reference == "thank you operator good bye now"
    assert rec.features().shape == (80, 101)
    (tmp_path / "full_transcripts.json").write_text(json.dumps({"other": "x"}))
    with pytest.raises(DatasetError, match="no transcript for 4420696"):
        load_dataset("earnings22_full", tmp_path, "test")
    with pytest.raises(DatasetError, match="split must be one of test"):
        load_dataset("earnings22_full", tmp_path, "dev")


def test_rev16(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "transcripts").mkdir()
    for rid in ("3", "10"):
        sf.write(tmp_path / "audio" / f"{rid}.mp3", _tone(0.5), SR, format="MP3")
        (tmp_path / "transcripts" / f"{rid}.txt").write_text(f"Episode {rid}: Hello, World!\n")
    (tmp_path / "test.txt").write_text("10 3 \n")
    recs = load_dataset("rev16", tmp_path, "test")
    assert [r.id for r in recs] == ["10", "3"]
    assert recs[0].reference == "episode 10 hello world"


def test_this_american_life(tmp_path):
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "123.mp3", _tone(0.5), SR, format="MP3")
    doc = {"ep-123": [{"utterance": "Hi there.", "speaker": "IRA"},
                      {"utterance": "Hello, Ira.", "speaker": "GUEST"}]}
    (tmp_path / "valid-transcripts-aligned.json").write_text(json.dumps(doc))
    (rec,) = load_dataset("this_american_life", tmp_path, "dev")
    assert rec.id == "ep-123" and rec.audio.name == "123.mp3"
    assert rec.reference == "hi there hello ira"
    with pytest.raises(DatasetError, match="test-transcripts-aligned.json: file not found"):
        load_dataset("this_american_life", tmp_path, "test")


def test_manifest_jsonl_and_json(tmp_path):
    sf.write(tmp_path / "a.wav", _tone(0.5), SR)
    sf.write(tmp_path / "b.flac", _tone(0.5, sr=8000), 8000)
    lines = [{"id": "A", "audio": "a.wav", "text": "Hello, World!"},
             {"audio": "b.flac", "words": [{"word": "Mr.", "start": 0.1, "end": 0.2},
                                           {"word": "Smith", "start": 0.2, "end": 0.4}]}]
    (tmp_path / "test.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    recs = load_dataset("manifest", tmp_path, "test")
    assert [r.id for r in recs] == ["A", "b"]
    assert [r.reference for r in recs] == ["hello world", "mister smith"]
    assert recs[1].features().shape == (80, 51)  # resampled 8 kHz -> 16 kHz
    (tmp_path / "bad.json").write_text(json.dumps([{"audio": "missing.wav", "text": "x"}]))
    with pytest.raises(DatasetError, match="missing.wav: audio file not found"):
        load_dataset("manifest", tmp_path / "bad.json", "test")
    (tmp_path / "rate.json").write_text(json.dumps(
        [{"audio": "b.flac", "text": "x", "sample_rate": 16000}]))
    with pytest.raises(DatasetError, match="declares sample_rate 16000 Hz but b.flac is 8000"):
        load_dataset("manifest", tmp_path / "rate.json", "test")
    (tmp_path / "rate2.json").write_text(json.dumps(
        [{"audio": "b.flac", "text": "x", "sample_rate": "sixteen"}]))
    with pytest.raises(DatasetError, match="sample_rate 'sixteen' is not a number"):
        load_dataset("manifest", tmp_path / "rate2.json", "test")
    (tmp_path / "words.json").write_text(json.dumps(
        [{"audio": "a.wav", "words": [{"text": "no word key"}]}]))
    with pytest.raises(DatasetError, match="every word needs a 'word' field"):
        load_dataset("manifest", tmp_path / "words.json", "test")


def test_stm_with_bad_times_names_file_and_line():
    from lcasr_jax.eval.datasets.tedlium import parse_stm

    bad = STM.replace("2.50 3.90", "2.50 abc")
    with pytest.raises(DatasetError, match=r"talk.stm:3: start/end times are not numbers"):
        parse_stm(bad, "talk.stm")


def _synth(root, rid, rate=SR, declared=SR):
    sf.write(root / f"{rid}.flac", _tone(1.0, sr=rate), rate)
    meta = {"format": "lcasr-recording/1", "id": rid, "audio": f"{rid}.flac",
            "sample_rate": declared, "duration": 1.0,
            "words": [{"word": "Hello", "start": 0.1, "end": 0.4, "speaker": "A"},
                      {"word": "there.", "start": 0.5, "end": 0.9, "speaker": "A"}]}
    (root / f"{rid}.json").write_text(json.dumps(meta))


def test_synth_corpus(tmp_path):
    for rid in ("test-s0-00001", "test-s0-00000"):
        _synth(tmp_path, rid)
    manifest = {"split": "test", "recordings": [
        {"id": "test-s0-00001", "audio": "test-s0-00001.flac", "words": "test-s0-00001.json"},
        {"id": "test-s0-00000", "audio": "test-s0-00000.flac", "words": "test-s0-00000.json"}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    recs = load_dataset("synth", tmp_path, "test")
    assert [r.id for r in recs] == ["test-s0-00001", "test-s0-00000"]  # manifest order
    assert recs[0].reference == "hello there" and len(recs[0].words) == 2
    _synth(tmp_path, "test-s0-00001", rate=8000, declared=16000)
    with pytest.raises(DatasetError, match="declares sample_rate 16000 Hz but .* is 8000 Hz"):
        load_dataset("synth", tmp_path, "test")


def test_unknown_dataset_and_missing_dir(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset("librispeech", tmp_path)
    with pytest.raises(DatasetError, match="data directory not found"):
        load_dataset("rev16", tmp_path / "nope")
